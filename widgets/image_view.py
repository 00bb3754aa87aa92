"""Showing numpy images in Qt without copying them, scaled to fit."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

CRISP_MAGNIFICATION = 4.0
"""From this enlargement on, image pixels are drawn as sharp squares (nearest neighbour), not blurred."""
FILL_TOLERANCE_PX = 2
"""A frame that comes within this many device pixels of filling the view was rendered to fit it: it is
blitted 1:1, not enlarged by a pixel or two (which would cost a resampling and blur it)."""


def array_to_qimage(array: np.ndarray) -> QImage:
    """An HxWx3 uint8 RGB array as a QImage over the same memory (the array must outlive it)."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {array.dtype} {array.shape}")
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    image = QImage(array.data, width, height, array.strides[0], QImage.Format.Format_RGB888)
    image._array = array  # keep the buffer alive as long as the image
    return image


class ImageView(QWidget):
    """Paints one image aspect-fit and centred; optional rectangle and point in image coordinates.

    A frame rendered to fit the view (`logical_size` given) is blitted 1:1; one smaller than the view (a
    28x28 digit, a thumbnail) is enlarged here to fill it, with the rectangle and overlays along, crisp
    from CRISP_MAGNIFICATION on.

    `set_image` only stores the array; the conversion happens at paint time, so several updates
    between two paints cost one conversion.
    """

    clicked = pyqtSignal(float, float)
    """Image coordinates of a left click inside the image."""
    right_clicked = pyqtSignal(float, float)
    """Image coordinates of a right click inside the image."""
    hovered = pyqtSignal(float, float, QPointF)
    """Image coordinates under the mouse, and where it is on the screen (with mouse tracking on)."""
    resized = pyqtSignal(int, int)
    """The view's new width and height: what to render the next images at."""

    def __init__(self, parent: QWidget | None = None, *, smooth: bool = True, placeholder: str = ""):
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._logical: tuple[int, int] | None = None
        self._image: QImage | None = None
        self._smooth = smooth
        self._placeholder = placeholder
        self._rect: tuple[int, int, int, int] | None = None
        self._rect_color = QColor(255, 215, 0)
        self._stale = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 90)
        # paintEvent covers every pixel: Qt need not repaint the parents below on each frame
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(480, 360)

    def set_image(self, array: np.ndarray | None, logical_size: tuple[int, int] | None = None) -> None:
        """`logical_size` (width, height): the image stands for a picture of that size (a frame the
        renderer already shrank to fit this view, in device pixels: see `render_size`); rectangles
        and clicks stay in its coordinates. An empty array (a view not computed for this frame) shows the
        placeholder."""
        self._array = array if array is None or array.size else None
        self._logical = logical_size
        self._image = None
        self.update()

    def _logical_size(self) -> tuple[int, int]:
        if self._logical is not None:
            return self._logical
        h, w = self._array.shape[:2]
        return w, h

    def image_array(self) -> np.ndarray | None:
        return self._array

    def set_stale(self, reason: str) -> None:
        """Marks the image shown as old (its camera is reconnecting): dimmed, with the reason across its top;
        '' when frames flow again."""
        self._stale = reason
        self.update()

    def stale_reason(self) -> str:
        return self._stale

    def set_rect(self, rect: tuple[int, int, int, int] | None) -> None:
        """A rectangle (x, y, w, h) in image pixels, drawn over the image (the network's crop)."""
        self._rect = rect
        self.update()

    def render_size(self) -> tuple[int, int]:
        """(width, height) in device pixels: the size to render images for this view at, so that on a
        high-density screen they are drawn 1:1, sharp, not enlarged from the view's logical size."""
        ratio = self.devicePixelRatioF()
        return round(self.width() * ratio), round(self.height() * ratio)

    def _placement(self) -> tuple[QRectF, float]:
        """Where the image lands in widget coordinates, and how many device pixels one of its pixels covers."""
        h, w = self._array.shape[:2]
        ratio = self.devicePixelRatioF()
        fitted_w, fitted_h = w / ratio, h / ratio
        if self._logical is not None and fitted_w <= self.width() and fitted_h <= self.height():
            fill = min(self.width() / fitted_w, self.height() / fitted_h)
            limiting_side = w if self.width() / fitted_w <= self.height() / fitted_h else h
            if (fill - 1) * limiting_side <= FILL_TOLERANCE_PX:
                # rendered to fit: blit it 1:1 in device pixels, no scaling while paintEvent holds the GIL
                left, top = (self.width() - fitted_w) // 2, (self.height() - fitted_h) // 2
                return QRectF(left, top, fitted_w, fitted_h), 1.0
            # smaller than the view (a digit, a thumbnail): enlarged here, cheap for a small image
            scaled_w, scaled_h = fitted_w * fill, fitted_h * fill
            return QRectF((self.width() - scaled_w) / 2, (self.height() - scaled_h) / 2, scaled_w, scaled_h), fill
        scale = min(self.width() / w, self.height() / h)
        if not self._smooth and scale >= 1:
            scale = float(int(scale))  # whole pixels keep nearest-neighbour cells even
        target = QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)
        return target, scale * ratio

    def image_rect(self) -> QRectF:
        """Where the image lands in widget coordinates."""
        if self._array is None:
            return QRectF()
        return self._placement()[0]

    def magnification(self) -> float:
        """Device pixels per image pixel along each side (1.0: blitted 1:1); 0.0 without an image."""
        if self._array is None:
            return 0.0
        return self._placement()[1]

    def is_crisp(self) -> bool:
        """Whether the image is drawn nearest-neighbour: always for a view made not smooth, and for any
        image enlarged so much that its pixels are the data (a 28x28 digit, a 13x13 map)."""
        return not self._smooth or self.magnification() >= CRISP_MAGNIFICATION

    def to_image(self, point: QPointF) -> tuple[float, float] | None:
        target = self.image_rect()
        if self._array is None or not target.contains(point):
            return None
        w, h = self._logical_size()
        return ((point.x() - target.x()) * w / target.width(), (point.y() - target.y()) * h / target.height())

    def to_widget(self, x: float, y: float) -> QPointF:
        target = self.image_rect()
        w, h = self._logical_size()
        return QPointF(target.x() + x * target.width() / w, target.y() + y * target.height() / h)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit(self.width(), self.height())

    def mousePressEvent(self, event) -> None:
        position = self.to_image(event.position())
        if position is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(*position)
        elif position is not None and event.button() == Qt.MouseButton.RightButton:
            self.right_clicked.emit(*position)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        position = self.to_image(event.position())
        if position is not None:
            self.hovered.emit(*position, event.globalPosition())
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._array is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._stale or self._placeholder
            )
            return
        if self._image is None:
            self._image = array_to_qimage(self._array)
            if self._logical is not None:
                self._image.setDevicePixelRatio(self.devicePixelRatioF())
        target = self.image_rect()
        if target.size() == self._image.deviceIndependentSize():
            painter.drawImage(target.topLeft(), self._image)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not self.is_crisp())
            painter.drawImage(target, self._image)
        if self._rect is not None:
            x, y, w, h = self._rect
            top_left, bottom_right = self.to_widget(x, y), self.to_widget(x + w, y + h)
            painter.setPen(QPen(self._rect_color, 2, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(top_left, bottom_right))
        if self._stale:
            self._paint_stale(painter, target)
        self.paint_over(painter, target)

    def _paint_stale(self, painter: QPainter, target: QRectF) -> None:
        """The old frame dimmed, an amber frame around it and 'STALE: reason' in a band across its top."""
        painter.fillRect(target, QColor(0, 0, 0, 120))
        amber = QColor(255, 176, 0)
        painter.setPen(QPen(amber, 3))
        painter.drawRect(target.adjusted(1.5, 1.5, -1.5, -1.5))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        band = QRectF(target.left(), target.top(), target.width(), painter.fontMetrics().height() * 1.8)
        painter.fillRect(band, QColor(0, 0, 0, 190))
        painter.setPen(amber)
        painter.drawText(band, Qt.AlignmentFlag.AlignCenter, f"STALE \u2014 {self._stale}")

    def paint_over(self, painter: QPainter, target: QRectF) -> None:
        """For subclasses: draw on top of the image."""
