"""Top-k classes with probability bars."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget


class PredictionsView(QWidget):
    """Top-k classes with probability bars; clicking a row picks that class (for Grad-CAM)."""

    ROW_HEIGHT = 22
    row_clicked = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._rows: list[tuple[str, float]] = []
        self._before: list[float | None] = []
        self._note = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFixedHeight(self.ROW_HEIGHT * 5 + 28)

    def sizeHint(self) -> QSize:
        return QSize(320, self.ROW_HEIGHT * 5 + 28)

    def set_predictions(
        self, rows: Sequence[tuple[str, float]], note: str = "", before: Sequence[float | None] = ()
    ) -> None:
        """(label, probability) pairs, most probable first; `note` (e.g. UNTRAINED) shows above. `before`: each
        class's probability without the edits (a tick on its bar and the change), where they are compared."""
        self._rows = list(rows)
        self._note = note
        self._before = list(before)
        self.update()

    def before(self) -> list[float | None]:
        return list(self._before)

    def rows(self) -> list[tuple[str, float]]:
        return list(self._rows)

    def row_at(self, y: float) -> int | None:
        row = int((y - 26) // self.ROW_HEIGHT)
        return row if y >= 26 and row < len(self._rows) else None

    def mousePressEvent(self, event) -> None:
        row = self.row_at(event.position().y())
        if row is not None and event.button() == Qt.MouseButton.LeftButton:
            self.row_clicked.emit(row)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 32))
        painter.setPen(QColor(230, 120, 80) if self._note else QColor(160, 160, 160))
        painter.drawText(
            QRectF(8, 2, self.width() - 16, 22), Qt.AlignmentFlag.AlignVCenter, self._note or "predictions"
        )
        label_width = min(190, self.width() * 0.55)
        span = self.width() - label_width - (104 if self._before else 60)
        for i, (label, probability) in enumerate(self._rows):
            top = 26 + i * self.ROW_HEIGHT
            bar = QRectF(label_width + 12, top + 4, span * probability, 14)
            painter.fillRect(bar, QColor(70, 140, 220))
            was = self._before[i] if i < len(self._before) else None
            if was is not None:  # where the bar stood without the edits, and the change
                x = label_width + 12 + span * was
                painter.setPen(QPen(QColor(245, 200, 60), 2))
                painter.drawLine(QPointF(x, top + 2), QPointF(x, top + 20))
                change = probability - was
                painter.setPen(QColor(120, 220, 120) if change >= 0 else QColor(240, 110, 110))
                painter.drawText(
                    QRectF(self.width() - 100, top, 46, self.ROW_HEIGHT),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                    f"{change:+.0%}",
                )
            painter.setPen(QColor(235, 235, 235))
            text_rect = QRectF(8, top, label_width, self.ROW_HEIGHT)
            elided = painter.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, int(label_width))
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, elided)
            painter.drawText(
                QRectF(self.width() - 52, top, 48, self.ROW_HEIGHT),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                f"{probability:.0%}",
            )
