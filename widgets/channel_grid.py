"""Every channel of a layer as a grid of heatmap tiles: click or hover a tile, see it outlined."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QToolTip, QWidget

from .image_view import ImageView


@dataclass(frozen=True)
class GridGeometry:
    """Where the tiles are in a grid image: tile c at row c // cols, column c % cols, 1 px separators
    (times `scale`). The same numbers the renderer tiled with, as plain data."""

    channels: int
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    scale: int = 1

    def tile_rect(self, channel: int) -> tuple[int, int, int, int]:
        row, col = divmod(channel, self.cols)
        s = self.scale
        return ((1 + col * (self.tile_w + 1)) * s, (1 + row * (self.tile_h + 1)) * s, self.tile_w * s, self.tile_h * s)

    def channel_at(self, x: float, y: float) -> int | None:
        """The channel under grid pixel (x, y); None on a separator, an empty tile or outside."""
        cell_w, cell_h = (self.tile_w + 1) * self.scale, (self.tile_h + 1) * self.scale
        col, dx = divmod(x - self.scale, cell_w)
        row, dy = divmod(y - self.scale, cell_h)
        if not (0 <= col < self.cols and 0 <= row < self.rows):
            return None
        if dx >= cell_w - self.scale or dy >= cell_h - self.scale:
            return None
        channel = int(row) * self.cols + int(col)
        return channel if channel < self.channels else None

    def moved(self, channel: int, d_row: int, d_col: int) -> int:
        """The channel one step away in the grid, clamped to the grid's channels."""
        row, col = divmod(channel, self.cols)
        row = min(max(row + d_row, 0), self.rows - 1)
        col = min(max(col + d_col, 0), self.cols - 1)
        return min(row * self.cols + col, self.channels - 1)


class ChannelGrid(ImageView):
    channel_selected = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, smooth=False, placeholder="Waiting for the first frame...")
        self.geometry_: GridGeometry | None = None
        self._selected = 0
        self._channel_max: np.ndarray | None = None
        self._channel_mean: np.ndarray | None = None
        self.last_paint_ms = 0.0
        self.setMouseTracking(True)
        self.clicked.connect(self._on_click)

    def set_grid(
        self, image: np.ndarray, geometry: GridGeometry, channel_max: np.ndarray, channel_mean: np.ndarray
    ) -> None:
        self.geometry_ = geometry
        self._channel_max, self._channel_mean = channel_max, channel_mean
        self.set_image(image)

    def set_selected(self, channel: int) -> None:
        self._selected = channel
        self.update()

    def selected(self) -> int:
        return self._selected

    def _on_click(self, x: float, y: float) -> None:
        if self.geometry_ is None:
            return
        channel = self.geometry_.channel_at(x, y)
        if channel is not None:
            self.set_selected(channel)
            self.channel_selected.emit(channel)

    def mouseMoveEvent(self, event) -> None:
        position = self.to_image(event.position())
        channel = None if position is None or self.geometry_ is None else self.geometry_.channel_at(*position)
        if channel is None or self._channel_max is None or channel >= len(self._channel_max):
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

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        if self.geometry_ is None or not 0 <= self._selected < self.geometry_.channels:
            return
        x, y, w, h = self.geometry_.tile_rect(self._selected)
        top_left = self.to_widget(x, y)
        bottom_right = self.to_widget(x + w, y + h)
        painter.setPen(QPen(QColor(255, 215, 0), 2))
        painter.drawRect(QRectF(top_left - QPointF(1.5, 1.5), bottom_right + QPointF(1.5, 1.5)))
        painter.setPen(Qt.PenStyle.NoPen)
