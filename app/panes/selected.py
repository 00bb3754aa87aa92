"""The selected-channel pane: the channel on the frame, or zoomed, with its numbers."""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QWidget,
)

from livevis.app.live.worker import LiveResult
from livevis.app.panes.base import Pane, column
from livevis.state import LiveState
from livevis.widgets.image_view import ImageView


class SelectedPane(Pane):
    """The selected channel on the frame or zoomed (the state's `zoomed` swaps them), and its numbers."""

    views = ("overlay", "channel_tile", "peak")

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.overlay = ImageView(placeholder="selected channel")
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

    def keep_useful(self, size: QSize) -> None:
        """The frame with the channel never gets smaller than `size`: panes opened beside it take their room
        from elsewhere."""
        self.stack.setMinimumSize(size)

    def _on_zoomed(self, zoomed: bool) -> None:
        self.stack.setCurrentIndex(1 if zoomed else 0)
        if self._last is not None:
            self.show_result(self._last, None)

    def show_result(self, result, model):
        self._last = result
        views = result.views
        self.overlay.set_image(views.overlay, views.frame_size)
        self.tile.set_image(views.channel_tile)
        self.small.set_image(views.overlay if self.state.zoomed else views.channel_tile)
        peak = views.peak
        if peak is not None:
            self.info.setText(
                f"channel {views.channel} of {views.layer.name}\nmax {peak.value:.4g} at cell {peak.cell}\n"
                f"frame x={peak.frame_xy[0]}, y={peak.frame_xy[1]}\nmean {views.channel_mean[views.channel]:.4g}"
            )
