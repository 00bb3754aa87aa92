"""The selected-channel pane: the channel on the frame, or zoomed, with its numbers."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QStackedWidget, QToolTip, QWidget

from livevis.app.live.worker import LiveResult
from livevis.app.panes.base import Pane, PaneServices, column
from livevis.app.window.action_spec import ActionSpec
from livevis.models.attribution import map_cell
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView


class SelectedPane(Pane):
    """The selected channel on the frame or zoomed (the state's `zoomed` swaps them), and its numbers; the
    channel's value under the mouse wherever the frame is shown."""

    ACTIONS = (
        ActionSpec(
            "zoom",
            "Swap overlay and zoom",
            ("Z",),
            "swap the overlay and the zoomed channel in the selected-channel pane",
            "toggle_zoom",
            "View",
            checkable=True,
        ),
    )

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.overlay = ImageView(placeholder="selected channel")
        self.probe(self.overlay)
        self.tile = ImageView(smooth=False, placeholder="zoomed channel")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.overlay)
        self.stack.addWidget(self.tile)
        self.small = ImageView(smooth=False)
        self.small.setMinimumSize(100, 100)
        self.small.setMaximumHeight(110)
        self.info = QLabel("-")
        # a fixed size: new numbers every frame must not re-lay out (and repaint) the whole window
        self.info.setFixedSize(240, 90)
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout()
        row.addWidget(self.small, 1)
        row.addWidget(self.info, 1)
        layout = column(self.stack)
        layout.addLayout(row)
        self.setLayout(layout)
        self.set_title("selected channel on the frame (z swaps)")
        self._last: LiveResult | None = None
        state.events.zoomed.connect(self._on_zoomed)

    def request(self) -> dict:
        size = self.overlay.render_size()
        return {"display_size": size} if min(size) > 16 else {}

    def keep_useful(self, size: QSize) -> None:
        """The frame with the channel never gets smaller than `size`: panes opened beside it take their room
        from elsewhere."""
        self.stack.setMinimumSize(size)

    def toggle_zoom(self) -> None:
        self.state.zoomed = not self.state.zoomed

    def _on_zoomed(self, zoomed: bool) -> None:
        self.stack.setCurrentIndex(1 if zoomed else 0)
        if self._last is not None:
            self.show_result(self._last, None)

    def show_value_at(self, x, y, where, views) -> None:
        values = None if views is None else views.values.get("channel_map")
        cell = None if values is None else map_cell((x, y), views.crop, values.shape)
        if cell is None:
            QToolTip.hideText()
            return
        text = f"channel {views.channel} at cell {cell}: {values[cell]:.4g}\nframe x={x:.0f}, y={y:.0f}"
        QToolTip.showText(where.toPoint(), text, self)

    def show_result(self, result, model):
        self._last = result
        views = result.views
        overlay, tile = views.image("overlay"), views.image("channel_tile")
        self.overlay.set_image(overlay, views.frame_size)
        self.tile.set_image(tile)
        self.small.set_image(overlay if self.state.zoomed else tile)
        peak = views.values.get("peak")
        if peak is not None:
            self.info.setText(
                f"channel {views.channel} of {views.layer.name}\nmax {peak.value:.4g} at cell {peak.cell}\n"
                f"frame x={peak.frame_xy[0]}, y={peak.frame_xy[1]}\nmean {views.values['selected_mean']:.4g}"
            )
