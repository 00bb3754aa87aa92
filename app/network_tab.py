"""The Network tab: every layer of the model at once for the frame shown, one row per layer, as the course
notes draw a network. Only the rows in sight are computed, in the live pass, at most once per frame; a
click on a map selects that layer and channel in the live view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from livevis.widgets.network_overview import NetworkOverview

if TYPE_CHECKING:
    from livevis.app.main_window import MainWindow
    from livevis.app.model_loader import ModelInfo
    from livevis.models import FrameViews


class NetworkTab:
    def __init__(self, window: MainWindow):
        self.window = window
        self.view = NetworkOverview()
        window.tabs.addTab(self.view, "Network")
        self._rows: tuple[str, ...] = ()
        self.view.rows_in_sight.connect(self._on_rows_in_sight)
        self.view.channel_clicked.connect(self._select)
        window.tabs.currentChanged.connect(lambda _index: window.schedule_sync())

    @property
    def shown(self) -> bool:
        return self.window.tabs.currentWidget() is self.view

    def rows(self) -> tuple[str, ...]:
        """The layers to draw now: the rows in sight while the tab is shown, else none."""
        return self._rows if self.shown else ()

    def _on_rows_in_sight(self, paths: list[str]) -> None:
        self._rows = tuple(paths)
        self.window.schedule_sync()

    def set_model(self, info: ModelInfo) -> None:
        self.view.set_layers(info.layers)

    def show(self, views: FrameViews) -> None:
        known = set(self.view.paths())
        for path, (image, layout) in views.values.get("network_rows", {}).items():
            if path in known:
                self.view.set_row(path, image, layout)

    def _select(self, path: str, channel: int) -> None:
        self.window.state.update(layer=path, channel=channel)
        self.window.tabs.setCurrentWidget(self.window.live)
