"""Interactive scatter plots of layer embeddings: a panel per layer, coloured by class, zoom and pan,
hover for the sample's thumbnail and label, and a moving marker for the live frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtGui import QColor, QPixmap
from PyQt6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from .image_view import array_to_qimage

TAB10 = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


@dataclass(frozen=True)
class EmbeddingPanel:
    """One layer's map as plain data."""

    title: str
    coords: np.ndarray
    """N x 2."""
    labels: np.ndarray
    """N class indices."""


def class_color(index: int, count: int) -> tuple[int, int, int]:
    if count <= len(TAB10):
        return TAB10[index]
    color = QColor.fromHsvF((index / count) % 1.0, 0.75, 0.9)
    return color.red(), color.green(), color.blue()


class EmbeddingPlots(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground((24, 24, 24))
        self.hover = QFrame(self)
        self.hover.setStyleSheet("background: rgba(0,0,0,210); color: white;")
        self.hover_image = QLabel()
        self.hover_text = QLabel()
        hover_layout = QVBoxLayout(self.hover)
        hover_layout.setContentsMargins(4, 4, 4, 4)
        hover_layout.addWidget(self.hover_image)
        hover_layout.addWidget(self.hover_text)
        self.hover.hide()
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.legend)
        self._panels: list[EmbeddingPanel] = []
        self._plots: list[pg.PlotItem] = []
        self._markers: list[pg.ScatterPlotItem] = []
        self._classes: tuple[str, ...] = ()
        self._thumbnails: np.ndarray | None = None

    def set_panels(self, panels: Sequence[EmbeddingPanel], classes: Sequence[str], thumbnails: np.ndarray) -> None:
        self.canvas.clear()
        self._panels, self._classes, self._thumbnails = list(panels), tuple(classes), thumbnails
        self._plots, self._markers = [], []
        cols = min(len(panels), 3)
        colors = [pg.mkBrush(*class_color(i, len(classes))) for i in range(len(classes))]
        for index, panel in enumerate(panels):
            plot = self.canvas.addPlot(row=index // cols, col=index % cols, title=panel.title)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            brushes = [colors[label] for label in panel.labels]
            scatter = pg.ScatterPlotItem(
                pos=panel.coords, size=4, pen=None, brush=brushes, data=np.arange(len(panel.coords)), hoverable=True
            )
            scatter.sigHovered.connect(lambda item, points, event, i=index: self._on_hover(i, points, event))
            plot.addItem(scatter)
            marker = pg.ScatterPlotItem(
                size=22, symbol="star", pen=pg.mkPen("w", width=2), brush=pg.mkBrush(255, 215, 0)
            )
            plot.addItem(marker)
            self._plots.append(plot)
            self._markers.append(marker)
        swatches = "  ".join(
            f"<span style='color: rgb{class_color(i, len(classes))}'>&#9679;</span> {name}"
            for i, name in enumerate(classes)
        )
        self.legend.setText(swatches)

    def panel_count(self) -> int:
        return len(self._panels)

    def set_marker(self, panel: int, xy: tuple[float, float] | None) -> None:
        """The live frame's place in one panel's map; None hides it."""
        for index, marker in enumerate(self._markers):
            marker.setData(pos=[xy] if (index == panel and xy is not None) else [])

    def marker_position(self, panel: int) -> tuple[float, float] | None:
        points = self._markers[panel].points()
        return (points[0].pos().x(), points[0].pos().y()) if len(points) else None

    def describe(self, panel: int, sample: int) -> str:
        label = self._classes[self._panels[panel].labels[sample]]
        return f"sample {sample}: {label}"

    def _on_hover(self, panel: int, points, event) -> None:
        if not len(points):
            self.hover.hide()
            return
        sample = int(points[0].data())
        self.hover_text.setText(self.describe(panel, sample))
        if self._thumbnails is not None:
            image = array_to_qimage(np.ascontiguousarray(self._thumbnails[sample]))
            self.hover_image.setPixmap(QPixmap.fromImage(image).scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio))
        position = self.mapFromGlobal(event.screenPos().toPoint()) if hasattr(event, "screenPos") else QPoint(10, 10)
        self.hover.adjustSize()
        self.hover.move(min(position.x() + 14, self.width() - self.hover.width()), max(0, position.y() - 10))
        self.hover.show()
        self.hover.raise_()
