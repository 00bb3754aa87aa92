"""Which units fire at a spot: the layer's channels ranked by their activation at one map cell, each with
its tile; clicking one selects it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QPixmap
from PyQt6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from .image_view import array_to_qimage

CHANNEL_ROLE = Qt.ItemDataRole.UserRole


class UnitsAtPoint(QListWidget):
    channel_chosen = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setIconSize(QSize(28, 28))
        self.setMaximumHeight(170)
        self.setToolTip("click the frame: the layer's channels most active under the click; click one to select it")
        self.itemClicked.connect(lambda item: self.channel_chosen.emit(item.data(CHANNEL_ROLE)))

    def set_units(self, cell: tuple[int, int], units: Sequence[tuple[int, float, np.ndarray | None]]) -> None:
        """(channel, value, its tile as uint8 RGB or None), most active first, at map cell (row, col)."""
        self.clear()
        for rank, (channel, value, tile) in enumerate(units, 1):
            item = QListWidgetItem(f"{rank}. channel {channel}: {value:.4g}  (cell {cell[0]}, {cell[1]})")
            item.setData(CHANNEL_ROLE, int(channel))
            if tile is not None and tile.size:
                item.setIcon(QIcon(QPixmap.fromImage(array_to_qimage(np.ascontiguousarray(tile)))))
            self.addItem(item)

    def channels(self) -> list[int]:
        return [self.item(i).data(CHANNEL_ROLE) for i in range(self.count())]
