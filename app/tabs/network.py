"""The Network tab: every layer of the model at once for the frame shown, one row per layer, as the course
notes draw a network. Only the rows in sight are computed, in the live pass, at most once per frame; a
click on a map selects that layer and channel in the live view."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PyQt6.QtWidgets import QTabWidget, QWidget

from livevis.widgets.network_overview import NetworkOverview

if TYPE_CHECKING:
    from livevis.app.live.model_loader import ModelInfo
    from livevis.app.live.worker import LiveResult


class NetworkTab:
    """The network view's tab (see `livevis.views.network`), added to `tabs`. `rows_changed` hears when the
    rows to compute change; a click selects a layer and channel in `state` and brings `live_page` to the
    front.

    What the window asks of a view's tab: `request()` (the options its view needs now, None while it needs
    none), `set_model(info)` and `show_result(result)`."""

    def __init__(self, tabs: QTabWidget, state, live_page: QWidget, rows_changed: Callable[[], None]):
        self.tabs, self.state, self.live_page, self.rows_changed = tabs, state, live_page, rows_changed
        self.view = NetworkOverview()
        tabs.addTab(self.view, "Network")
        self._rows: tuple[str, ...] = ()
        self.view.rows_in_sight.connect(self._on_rows_in_sight)
        self.view.channel_clicked.connect(self._select)
        tabs.currentChanged.connect(lambda _index: rows_changed())

    @property
    def shown(self) -> bool:
        return self.tabs.currentWidget() is self.view

    def request(self) -> dict | None:
        """The layers to draw now: the rows in sight while the tab is shown; None (nothing to draw) else."""
        return {"network_rows": self._rows} if self.shown and self._rows else None

    def _on_rows_in_sight(self, paths: list[str]) -> None:
        self._rows = tuple(paths)
        self.rows_changed()

    def set_model(self, info: ModelInfo) -> None:
        self.view.set_layers(info.layers)

    def show_result(self, result: LiveResult) -> None:
        known = set(self.view.paths())
        for path, (image, layout) in result.views.values.get("network_rows", {}).items():
            if path in known:
                self.view.set_row(path, image, layout)

    def _select(self, path: str, channel: int) -> None:
        self.state.update(layer=path, channel=channel)
        self.tabs.setCurrentWidget(self.live_page)
