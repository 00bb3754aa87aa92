"""A message that stays at the top of the window until clicked away, without blocking anything (never a
modal dialog); messages that arrive while it shows are added below."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QWidget


class NoticeBanner(QLabel):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("background: #fff4c2; color: #222; padding: 6px;")
        self.setToolTip("click to dismiss")
        self.hide()

    def add(self, message: str) -> None:
        self.setText(f"{self.text()}\n{message}" if self.isVisible() else message)
        self.show()

    def mousePressEvent(self, event) -> None:
        self.hide()
