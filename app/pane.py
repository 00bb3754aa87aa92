"""A pane of the Live tab: a part of the window fed by named views (see `models.views`)."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from livevis.app.model_loader import ModelInfo
from livevis.app.worker import LiveResult


def titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(QLabel(title))
    layout.addWidget(widget, 1)
    return box


class Pane(QWidget):
    """A part of the window fed by named views."""

    views: tuple[str, ...] = ()

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        raise NotImplementedError
