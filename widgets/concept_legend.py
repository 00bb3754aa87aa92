"""The legend of a layer's concepts: one row per concept with its colour, how much of the map it takes, its
top channels' tiles (click one to select that channel), what names it (classes or channels) and, for
concepts fitted on a folder, its top crops. Clicking a concept's colour picks the concept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QSizePolicy, QToolTip, QWidget

from .image_view import array_to_qimage


@dataclass(frozen=True)
class LegendRow:
    rgb: tuple[int, int, int]
    share: float
    """The fraction of the map the concept takes."""
    tiles: Sequence[tuple[int, float, np.ndarray]]
    """(channel, its part of the concept, its tile h x w x 3 uint8), strongest first."""
    text: str
    """What names the concept: its top classes, or its channels."""
    crops: np.ndarray | None = None
    """A strip of its top crops in a folder (uint8 RGB), for concepts fitted on one."""


class ConceptLegend(QWidget):
    channel_clicked = pyqtSignal(int)
    concept_clicked = pyqtSignal(int)
    """The row (0 = first concept listed) whose colour or text was clicked."""

    ROW = 40
    TILE = 30

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: list[LegendRow] = []
        self._chosen: int | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip("click a tile to select its channel, a colour to pick the concept")

    def sizeHint(self) -> QSize:
        return QSize(360, max(1, len(self._rows)) * self.ROW)

    def set_rows(self, rows: Sequence[LegendRow], chosen: int | None = None) -> None:
        self._rows, self._chosen = list(rows), chosen
        height = max(1, len(self._rows)) * self.ROW
        if self.height() != height:
            self.setFixedHeight(height)
        self.update()

    def rows(self) -> list[LegendRow]:
        return list(self._rows)

    def tile_rect(self, row: int, index: int) -> QRectF:
        return QRectF(84 + index * (self.TILE + 3), row * self.ROW + 5, self.TILE, self.TILE)

    def hit(self, x: float, y: float) -> tuple[str, int, int] | None:
        """What is under a point: ("tile", row, channel), ("concept", row, 0), or None."""
        row = int(y // self.ROW)
        if y < 0 or row >= len(self._rows):
            return None
        for index, (channel, _, _) in enumerate(self._rows[row].tiles):
            if self.tile_rect(row, index).contains(x, y):
                return "tile", row, channel
        return "concept", row, 0

    def mousePressEvent(self, event) -> None:
        found = self.hit(event.position().x(), event.position().y())
        if found is not None and event.button() == Qt.MouseButton.LeftButton:
            kind, row, channel = found
            if kind == "tile":
                self.channel_clicked.emit(channel)
            else:
                self.concept_clicked.emit(row)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        found = self.hit(event.position().x(), event.position().y())
        if found is not None and found[0] == "tile":
            part = next(p for c, p, _ in self._rows[found[1]].tiles if c == found[2])
            QToolTip.showText(event.globalPosition().toPoint(), f"channel {found[2]}: {part:.1%} of the concept", self)
        elif found is not None:  # the whole text, which the row may elide
            QToolTip.showText(event.globalPosition().toPoint(), self._rows[found[1]].text, self)
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 32))
        if not self._rows:
            painter.setPen(QColor(160, 160, 160))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no concepts yet")
            return
        for i, row in enumerate(self._rows):
            top = i * self.ROW
            if i == self._chosen:
                painter.fillRect(QRectF(0, top, self.width(), self.ROW), QColor(58, 58, 70))
            painter.fillRect(QRectF(6, top + 5, self.TILE, self.TILE), QColor(*row.rgb))
            painter.setPen(QColor(0, 0, 0))
            painter.drawText(QRectF(6, top + 5, self.TILE, self.TILE), Qt.AlignmentFlag.AlignCenter, str(i + 1))
            painter.setPen(QColor(225, 225, 225))
            painter.drawText(QRectF(40, top, 42, self.ROW), Qt.AlignmentFlag.AlignVCenter, f"{row.share:.0%}")
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            for index, (_, _, tile) in enumerate(row.tiles):
                painter.drawImage(self.tile_rect(i, index), array_to_qimage(np.ascontiguousarray(tile)))
            left = self.tile_rect(i, len(row.tiles)).left() + 6
            if row.crops is not None and row.crops.size:
                height = self.ROW - 6
                width = height * row.crops.shape[1] / row.crops.shape[0]
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                painter.drawImage(QRectF(left, top + 3, width, height), array_to_qimage(row.crops))
                left += width + 6
            painter.setPen(QColor(*row.rgb).lighter(130))
            room = self.width() - 6 - round(left)
            if room >= 60:  # else the tiles' tooltips and the crops say it
                text = painter.fontMetrics().elidedText(row.text, Qt.TextElideMode.ElideRight, room)
                painter.drawText(QRectF(left, top, room, self.ROW), Qt.AlignmentFlag.AlignVCenter, text)
