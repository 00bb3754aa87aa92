"""The predictions pane: the top-5 classes; a click picks the class the explanations explain."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QLabel,
    QWidget,
)

from livevis.app.panes.base import Pane, column
from livevis.state import LiveState
from livevis.widgets.predictions import PredictionsView


class PredictionsPane(Pane):
    """The top-5 classes (click one: Grad-CAM explains it); a network that does not classify has none."""

    views = ("predictions",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.view = PredictionsView()
        self.none = QLabel("this network does not output classes")
        self.none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.none.hide()
        self.setLayout(column(self.view, self.none))
        self.set_title("predictions (click one: Grad-CAM explains it)")

    def show_result(self, result, model):
        classifier = model is None or bool(model.categories)
        self.view.setVisible(classifier)
        self.none.setVisible(not classifier)
        note = "" if model is None or model.trained else "UNTRAINED (random weights)"
        self.view.set_predictions([(p.label, p.probability) for p in result.views.top5], note)
