"""A square canvas to write a digit on with the mouse, handed on as an RGB image after every stroke step.

The ink is kept as its own coverage layer, so that switching between light-on-dark (MNIST's white
strokes on black) and dark-on-light (a black pen on a white page, for RGB models) recolours what is
already drawn instead of losing it.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from .image_view import array_to_qimage

CANVAS_SIDE = 280
"""Ten canvas pixels per MNIST pixel."""
BRUSH_FRACTION = 0.1
"""The brush's width as a fraction of the canvas side: a digit drawn across most of the canvas comes
out with MNIST's 2-3 px strokes once scaled to 28x28."""


def ink_segment(ink: np.ndarray, start: tuple[float, float], end: tuple[float, float], width: float) -> None:
    """Inks a round-capped segment into an H x W uint8 coverage layer (255: full ink), antialiased over one
    pixel at its edge; (x, y) points in pixel coordinates, pixel centres at i + 0.5. Only the segment's
    bounding box is computed, so a stroke step costs little."""
    radius = width / 2
    (x0, y0), (x1, y1) = start, end
    height, side = ink.shape
    left, right = max(0, int(np.floor(min(x0, x1) - radius - 1))), min(side, int(np.ceil(max(x0, x1) + radius + 1)))
    top, bottom = max(0, int(np.floor(min(y0, y1) - radius - 1))), min(height, int(np.ceil(max(y0, y1) + radius + 1)))
    if left >= right or top >= bottom:
        return
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    along = np.zeros_like(xs) if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1)
    distance = np.hypot(xs - (x0 + along * dx), ys - (y0 + along * dy))
    coverage = np.rint(np.clip(radius + 0.5 - distance, 0, 1) * 255).astype(np.uint8)
    region = ink[top:bottom, left:right]
    np.maximum(region, coverage, out=region)


class DrawPad(QWidget):
    """Write with the left mouse button; right-click or Backspace clears.

    `drawn` carries the whole canvas (H x W x 3 uint8, a fresh array the receiver may keep) once per
    mouse move while drawing, on release, on a clear and when the ink changes.
    """

    drawn = pyqtSignal(np.ndarray)

    def __init__(self, parent: QWidget | None = None, *, side: int = CANVAS_SIDE, brush: float | None = None):
        super().__init__(parent)
        self._ink = np.zeros((side, side), np.uint8)
        self._canvas = np.zeros((side, side, 3), np.uint8)
        self._image = array_to_qimage(self._canvas)  # over the canvas's memory: paints what is drawn
        self._dark_on_light = False
        self.brush = brush if brush is not None else side * BRUSH_FRACTION
        self._last: tuple[float, float] | None = None
        """Where the stroke in progress is; None between strokes."""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(140, 140)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Write a digit with the mouse; right-click or Backspace clears.")

    def sizeHint(self) -> QSize:
        return QSize(CANVAS_SIDE + 20, CANVAS_SIDE + 20)

    @property
    def dark_on_light(self) -> bool:
        return self._dark_on_light

    def canvas(self) -> np.ndarray:
        """A copy of the canvas, H x W x 3 uint8."""
        return self._canvas.copy()

    def is_blank(self) -> bool:
        return not self._ink.any()

    def set_ink(self, dark_on_light: bool) -> None:
        """Black ink on a white canvas (True: as RGB models see a pen on paper) or white on black (False:
        as MNIST's digits are); what is drawn stays and is recoloured."""
        if dark_on_light == self._dark_on_light:
            return
        self._dark_on_light = dark_on_light
        self._compose(slice(None), slice(None))
        self._emit()

    def clear(self) -> None:
        self._ink[:] = 0
        self._last = None
        self._compose(slice(None), slice(None))
        self._emit()

    def canvas_rect(self) -> QRectF:
        """Where the canvas is drawn: the largest centred square that fits."""
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_canvas(self, point: QPointF) -> tuple[float, float]:
        target = self.canvas_rect()
        scale = self._ink.shape[1] / max(target.width(), 1.0)
        return (point.x() - target.x()) * scale, (point.y() - target.y()) * scale

    def _compose(self, rows: slice, cols: slice) -> None:
        ink = self._ink[rows, cols]
        self._canvas[rows, cols] = (255 - ink if self._dark_on_light else ink)[..., None]

    def _stroke_to(self, point: tuple[float, float]) -> None:
        start = self._last if self._last is not None else point
        ink_segment(self._ink, start, point, self.brush)
        margin = self.brush / 2 + 2
        (x0, y0), (x1, y1) = start, point
        rows = slice(max(0, int(min(y0, y1) - margin)), max(0, int(max(y0, y1) + margin) + 1))
        cols = slice(max(0, int(min(x0, x1) - margin)), max(0, int(max(x0, x1) + margin) + 1))
        self._compose(rows, cols)
        self._last = point
        self.update()

    def _emit(self) -> None:
        self.update()
        self.drawn.emit(self._canvas.copy())

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self.clear()
        elif event.button() == Qt.MouseButton.LeftButton:
            self._last = None
            self._stroke_to(self.to_canvas(event.position()))  # a dot where the pen touches down
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._last is not None:
            self._stroke_to(self.to_canvas(event.position()))
            self.drawn.emit(self._canvas.copy())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._stroke_to(self.to_canvas(event.position()))
            self._last = None
            self._emit()
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Backspace:
            self.clear()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        target = self.canvas_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(target, self._image)
        painter.setPen(QPen(QColor(110, 110, 110), 1))
        painter.drawRect(target.adjusted(0, 0, -1, -1))
        if self.is_blank():
            painter.setPen(QColor(150, 150, 150) if not self._dark_on_light else QColor(90, 90, 90))
            painter.drawText(
                target,
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "write a digit here\n(right-click or Backspace clears)",
            )
