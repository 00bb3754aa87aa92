"""Probing units with the mouse: which units fire under a click, the selected channel's value under the
cursor, and the class Grad-CAM explains (a click on a prediction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PyQt6.QtWidgets import QToolTip

from livevis.models.attribution import map_cell
from livevis.state import LiveState

if TYPE_CHECKING:
    from livevis.app.live.worker import InferenceWorker
    from livevis.app.tabs.live import LiveTab
    from livevis.app.window.status_line import StatusLine
    from livevis.models import FrameViews


class UnitProbe:
    """`last_views` gives the views shown now (None before the first result): the probe reads values and
    tiles from them, never from the model."""

    def __init__(
        self,
        live: LiveTab,
        worker: InferenceWorker,
        state: LiveState,
        status: StatusLine,
        last_views: Callable[[], FrameViews | None],
    ):
        self.live, self.state, self.status, self.last_views = live, state, status, last_views
        for view in (live.input.image, live.selected.overlay, live.backprop.image):
            view.clicked.connect(lambda x, y: worker.request_ranking((x, y)))
            view.hovered.connect(self._show_value_under_mouse)
            view.setMouseTracking(True)
        worker.units_ranked.connect(self._show_units)
        live.input.units.channel_chosen.connect(lambda channel: setattr(state, "channel", channel))
        live.predictions.view.row_clicked.connect(self._pick_class)

    def _show_units(self, ranked) -> None:
        """The channels most active under a click, each with its tile cut from the grid shown."""
        cell, units = ranked
        views = self.last_views()
        layout = views.grid_layout if views else None

        def tile(channel: int):
            if layout is None or channel >= layout.channels:
                return None
            x, y, w, h = layout.tile_rect(channel)
            return views.grid[y : y + h, x : x + w]

        self.live.input.units.set_units(cell, [(c, v, tile(c)) for c, v in units])
        self.live.input.units.show()

    def _show_value_under_mouse(self, x: float, y: float, where) -> None:
        views = self.last_views()
        values = None if views is None else views.values.get("channel_map")
        cell = None if values is None else map_cell((x, y), views.crop, values.shape)
        if cell is None:
            QToolTip.hideText()
            return
        text = f"channel {views.channel} at cell {cell}: {values[cell]:.4g}\nframe x={x:.0f}, y={y:.0f}"
        QToolTip.showText(where.toPoint(), text, self.live)

    def _pick_class(self, row: int) -> None:
        views = self.last_views()
        top5 = views.top5 if views is not None else []
        if row < len(top5):
            self.state.class_index = top5[row].index
            hint = "" if self.state.backprop == "gradcam" else " (press b until gradcam to see it)"
            self.status.message(f"Grad-CAM explains {top5[row].label}{hint}", 6000)
