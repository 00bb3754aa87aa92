"""The whole network in one scrolling column: a row per layer, its name and shape, then its channel tiles.

The widget only shows what it is given: a uint8 RGB grid image and its GridLayout per row. It says which
rows are in sight, so that only those need rendering, and paints only rows that intersect the viewport;
rows scrolled away keep their last image (or a placeholder until one comes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QEvent, QRect, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFontMetrics, QImage, QPainter
from PyQt6.QtWidgets import QScrollArea, QWidget

from livevis.geometry import ROW_CHANNELS, ROW_UNITS, GridLayout, tile_of, wrapped_layout

from .image_view import array_to_qimage

PER_LINE = ROW_CHANNELS
"""The placeholder layout's channels per line, as the figure's rows wrap."""
UNITS_PER_LINE = ROW_UNITS
"""A vector layer's units per line: 1000 classes as one strip would be a pixel tall once fitted to the width."""
MARGIN = 8
ROW_GAP = 10
LABEL_GAP = 4
BACKGROUND = QColor(24, 24, 24)
PLACEHOLDER = QColor(48, 48, 48)
TEXT = QColor(220, 220, 220)


def shape_label(name: str, path: str, shape: Sequence[int]) -> str:
    """As the layer tree writes a layer: name (path where it differs) and shape."""
    named = name if name == path else f"{name} ({path})"
    return f"{named}  {' x '.join(str(s) for s in shape)}"


def default_layout(shape: Sequence[int], per_line: int = PER_LINE) -> GridLayout:
    """The layout a row has before its first image: channels side by side, wrapped evenly, at most `per_line`
    a line (UNITS_PER_LINE for a vector layer's units)."""
    shape = tuple(int(s) for s in shape)
    return wrapped_layout(shape[0], *tile_of(shape), per_line if len(shape) == 3 else UNITS_PER_LINE)


@dataclass
class _Row:
    path: str
    label: str
    layout: GridLayout
    image: np.ndarray | None = None
    qimage: QImage | None = None
    top: int = 0
    """Of the row's label, in canvas coordinates."""
    image_rect: QRect = field(default_factory=QRect)


class _Canvas(QWidget):
    """The scrolled surface: paints the rows its paint event's rectangle touches, nothing else."""

    def __init__(self, overview: NetworkOverview):
        super().__init__()
        self._overview = overview
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(False)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        exposed = event.rect()
        painter.fillRect(exposed, BACKGROUND)
        self._overview._paint_rows(painter, exposed)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._overview._click(event.position().x(), event.position().y())
        super().mousePressEvent(event)


class NetworkOverview(QScrollArea):
    """Rows per layer, each channel grid scaled to the width (never above `max_row_height` pixels)."""

    rows_in_sight = pyqtSignal(list)
    """The paths of the rows now visible in the viewport, top to bottom: after a scroll, a resize or new
    layers (coalesced to one emission per event-loop turn, and only when the list changed)."""
    channel_clicked = pyqtSignal(str, int)
    """A left click on a channel's tile: the row's path and the channel."""

    def __init__(self, parent: QWidget | None = None, *, max_row_height: int = 360):
        super().__init__(parent)
        self.max_row_height = max_row_height
        self._rows: list[_Row] = []
        self._by_path: dict[str, _Row] = {}
        self._in_sight: list[str] = []
        self._canvas = _Canvas(self)
        self.setWidget(self._canvas)
        self.setWidgetResizable(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # rows scale with the width: a scroll bar that came and went would change the height it depends on
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.viewport().setStyleSheet("background: rgb(24, 24, 24);")
        self._sight_timer = QTimer(self)
        self._sight_timer.setSingleShot(True)
        self._sight_timer.setInterval(0)
        self._sight_timer.timeout.connect(self._emit_in_sight)
        self.verticalScrollBar().valueChanged.connect(self._sight_timer.start)

    # --- what it is given

    def set_layers(self, layers: Sequence[tuple[str, str, Sequence[int]]]) -> None:
        """(path, name, shape) per row, in the order to show them; forgets the images of the previous rows."""
        self._rows = [_Row(path, shape_label(name, path, shape), default_layout(shape)) for path, name, shape in layers]
        self._by_path = {row.path: row for row in self._rows}
        self._in_sight = []
        self._relayout()

    def set_row(self, path: str, image: np.ndarray, layout: GridLayout) -> None:
        """A row's grid image (HxWx3 uint8, `layout.height` x `layout.width`); kept without copying."""
        row = self._by_path.get(path)
        if row is None:
            raise KeyError(f"no row {path!r}; set_layers names the rows")
        if image.dtype != np.uint8 or image.shape != (layout.height, layout.width, 3):
            raise ValueError(
                f"row {path!r}: expected a {layout.height}x{layout.width}x3 uint8 image for its layout, "
                f"got {image.dtype} {image.shape}"
            )
        same_size = (row.layout.width, row.layout.height) == (layout.width, layout.height)
        row.image, row.qimage, row.layout = image, None, layout
        if same_size:
            self._canvas.update(row.image_rect)
        else:
            self._relayout()

    # --- what it tells

    def paths(self) -> list[str]:
        return [row.path for row in self._rows]

    def row_image(self, path: str) -> np.ndarray | None:
        """The last image given for a row (None: a placeholder is shown)."""
        return self._by_path[path].image

    def row_image_rect(self, path: str) -> QRect:
        """Where a row's tiles are drawn, in the coordinates of the scrolled canvas (`widget()`)."""
        return QRect(self._by_path[path].image_rect)

    def visible_paths(self) -> list[str]:
        """The rows that intersect the viewport now."""
        top = self.verticalScrollBar().value()
        sight = QRect(0, top, self._canvas.width(), self.viewport().height())
        return [row.path for row in self._rows if sight.intersects(self._row_rect(row))]

    def tile_rect(self, path: str, channel: int) -> QRectF:
        """A channel's tile in canvas coordinates."""
        row = self._by_path[path]
        x, y, w, h = row.layout.tile_rect(channel)
        sx, sy = row.image_rect.width() / row.layout.width, row.image_rect.height() / row.layout.height
        return QRectF(row.image_rect.x() + x * sx, row.image_rect.y() + y * sy, w * sx, h * sy)

    # --- geometry

    def _label_height(self) -> int:
        return QFontMetrics(self.font()).height()

    def _row_rect(self, row: _Row) -> QRect:
        bottom = row.image_rect.bottom()
        return QRect(0, row.top, self._canvas.width(), bottom - row.top + 1)

    def _relayout(self) -> None:
        width = max(1, self.viewport().width())
        available = max(1, width - 2 * MARGIN)
        label = self._label_height()
        top = MARGIN
        for row in self._rows:
            scale = min(available / row.layout.width, self.max_row_height / row.layout.height)
            row.top = top
            row.image_rect = QRect(
                MARGIN,
                top + label + LABEL_GAP,
                max(1, round(row.layout.width * scale)),
                max(1, round(row.layout.height * scale)),
            )
            top = row.image_rect.bottom() + 1 + ROW_GAP
        self._canvas.resize(width, top + MARGIN - ROW_GAP)
        self._canvas.update()
        self._sight_timer.start()

    def viewportEvent(self, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._relayout()
        return super().viewportEvent(event)

    def _emit_in_sight(self) -> None:
        paths = self.visible_paths()
        if paths != self._in_sight:
            self._in_sight = paths
            self.rows_in_sight.emit(paths)

    # --- painting and clicks (called by the canvas)

    def _paint_rows(self, painter: QPainter, exposed: QRect) -> None:
        label = self._label_height()
        for row in self._rows:
            if not exposed.intersects(self._row_rect(row)):
                continue
            painter.setPen(TEXT)
            painter.drawText(
                QRect(MARGIN, row.top, self._canvas.width() - 2 * MARGIN, label),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                row.label,
            )
            if row.image is None:
                painter.fillRect(row.image_rect, PLACEHOLDER)
                continue
            if row.qimage is None:
                row.qimage = array_to_qimage(row.image)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp cells
            painter.drawImage(QRectF(row.image_rect), row.qimage)

    def _click(self, x: float, y: float) -> None:
        for row in self._rows:
            rect = QRectF(row.image_rect)
            if rect.contains(x, y):
                gx = (x - rect.x()) * row.layout.width / rect.width()
                gy = (y - rect.y()) * row.layout.height / rect.height()
                channel = row.layout.channel_at(gx, gy)
                if channel is not None:
                    self.channel_clicked.emit(row.path, channel)
                return
