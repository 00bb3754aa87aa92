"""A translucent panel over the window listing every keyboard shortcut; any key or click hides it."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QEvent, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter
from PyQt6.QtWidgets import QWidget


class HelpOverlay(QWidget):
    """Covers its parent and follows its size. The parent must not lay out its children itself:
    a QSplitter, for one, would take the overlay for one more pane."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self._rows: list[tuple[str, str]] = []
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)
        parent.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.setGeometry(watched.rect())
        return False

    def set_shortcuts(self, rows: Sequence[tuple[str, str]]) -> None:
        """(keys, what they do) rows, e.g. ("Space, F", "freeze / unfreeze")."""
        self._rows = list(rows)
        self.update()

    def shortcuts(self) -> list[tuple[str, str]]:
        return list(self._rows)

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        self.show()

    def mousePressEvent(self, event) -> None:
        self.hide()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 215))
        font = QFont(painter.font())
        font.setPointSize(font.pointSize() + 1)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        line = metrics.height() + 6
        keys_width = max((metrics.horizontalAdvance(keys) for keys, _ in self._rows), default=0) + 30
        text_width = max((metrics.horizontalAdvance(text) for _, text in self._rows), default=0) + 10
        width = keys_width + text_width
        height = line * (len(self._rows) + 2)
        left = (self.width() - width) / 2
        top = max(10.0, (self.height() - height) / 2)
        painter.setPen(QColor(255, 215, 0))
        painter.drawText(QRectF(left, top, width, line), Qt.AlignmentFlag.AlignLeft, "Keyboard shortcuts  (h to close)")
        for i, (keys, description) in enumerate(self._rows, start=1):
            y = top + i * line + 6
            painter.setPen(QColor(255, 215, 0))
            painter.drawText(QRectF(left, y, keys_width, line), Qt.AlignmentFlag.AlignLeft, keys)
            painter.setPen(QColor(235, 235, 235))
            painter.drawText(QRectF(left + keys_width, y, text_width, line), Qt.AlignmentFlag.AlignLeft, description)
