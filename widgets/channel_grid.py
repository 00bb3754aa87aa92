"""Every channel of a layer as a grid of heatmap tiles: click or hover a tile, see it outlined.

The selected channel is the live state's: the grid outlines `state.channel` and a click sets it. The same
grid shows a transformer's attention heads, selecting `state.attention_head` (`field`).
"""

from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QToolTip, QWidget

from livevis.geometry import GridLayout
from livevis.state import LiveState

from .image_view import ImageView


class ChannelGrid(ImageView):
    channel_selected = pyqtSignal(int)

    def __init__(
        self,
        state: LiveState,
        parent: QWidget | None = None,
        *,
        field: str = "channel",
        again: int | None = None,
        placeholder: str = "Waiting for the first frame...",
    ):
        """`field`: the state's attribute a tile stands for; `again`: what a click on the tile already
        selected sets instead (None: it stays selected)."""
        super().__init__(parent, smooth=False, placeholder=placeholder)
        self.state = state
        self.field, self.again = field, again
        getattr(state.events, field).connect(lambda _value: self.update())
        self.geometry_: GridLayout | None = None
        self._channel_max: np.ndarray | None = None
        self._channel_mean: np.ndarray | None = None
        self._titles: list[str] | None = None
        self.last_paint_ms = 0.0
        self.setMouseTracking(True)
        self.clicked.connect(self._on_click)
        self._marked: frozenset[int] = frozenset()

    def set_grid(
        self,
        image: np.ndarray,
        geometry: GridLayout,
        channel_max: np.ndarray | None = None,
        channel_mean: np.ndarray | None = None,
        titles: list[str] | None = None,
    ) -> None:
        """`titles`: what each tile is, for its tooltip (default: channel N with its max and mean)."""
        self.geometry_ = geometry
        self._channel_max, self._channel_mean, self._titles = channel_max, channel_mean, titles
        self.set_image(image)

    def _on_click(self, x: float, y: float) -> None:
        if self.geometry_ is None:
            return
        channel = self.geometry_.channel_at(x, y)
        if channel is not None:
            if self.again is not None and channel == getattr(self.state, self.field):
                channel = self.again
            setattr(self.state, self.field, channel)
            self.channel_selected.emit(channel)

    def mouseMoveEvent(self, event) -> None:
        position = self.to_image(event.position())
        channel = None if position is None or self.geometry_ is None else self.geometry_.channel_at(*position)
        if channel is not None and self._titles is not None and channel < len(self._titles):
            QToolTip.showText(event.globalPosition().toPoint(), self._titles[channel], self)
        elif channel is None or self._channel_max is None or channel >= len(self._channel_max):
            QToolTip.hideText()
        else:
            QToolTip.showText(
                event.globalPosition().toPoint(),
                f"channel {channel}\nmax {self._channel_max[channel]:.3g}\nmean {self._channel_mean[channel]:.3g}",
                self,
            )
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:
        start = time.perf_counter()
        super().paintEvent(event)
        self.last_paint_ms = (time.perf_counter() - start) * 1000.0

    def set_marked(self, channels) -> None:
        """Channels drawn crossed out (switched off or changed by an edit): the tiles still show them as measured."""
        self._marked = frozenset(channels)
        self.update()

    def marked(self) -> frozenset[int]:
        return self._marked

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        if self.geometry_ is not None and self.marked():
            painter.setPen(QPen(QColor(240, 70, 70), 2))
            for channel in self.marked():
                if channel < self.geometry_.channels:
                    x, y, w, h = self.geometry_.tile_rect(channel)
                    top_left, bottom_right = self.to_widget(x, y), self.to_widget(x + w, y + h)
                    painter.drawLine(top_left, bottom_right)
                    painter.drawLine(QPointF(bottom_right.x(), top_left.y()), QPointF(top_left.x(), bottom_right.y()))
        selected = getattr(self.state, self.field)
        if self.geometry_ is None or not 0 <= selected < self.geometry_.channels:
            return
        x, y, w, h = self.geometry_.tile_rect(selected)
        top_left = self.to_widget(x, y)
        bottom_right = self.to_widget(x + w, y + h)
        painter.setPen(QPen(QColor(255, 215, 0), 2))
        painter.drawRect(QRectF(top_left - QPointF(1.5, 1.5), bottom_right + QPointF(1.5, 1.5)))
        painter.setPen(Qt.PenStyle.NoPen)
