"""The predictions pane: the top-5 classes; a click picks the class the explanations explain."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.views import ViewSpec
from livevis.widgets.predictions import PredictionsView


class PredictionsPane(Pane):
    """The top-5 classes (click one: the explanations, Grad-CAM among them, explain it); a network that does
    not classify has none."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.view = PredictionsView()
        self.none = QLabel("this network does not output classes")
        self.none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.none.hide()
        self.setLayout(column(self.view, self.none))
        self.set_title("predictions (click one: Grad-CAM explains it)")
        self.view.row_clicked.connect(self._pick_class)
        self._top5: list = []

    def _pick_class(self, row: int) -> None:
        if row < len(self._top5):
            self.state.class_index = self._top5[row].index
            self.services.message(f"the explanations explain {self._top5[row].label} (Grad-CAM: b until gradcam)", 6000)

    def show_result(self, result, model):
        classifier = model is None or bool(model.categories)
        self.view.setVisible(classifier)
        self.none.setVisible(not classifier)
        note = "" if model is None or model.trained else "UNTRAINED (random weights)"
        values = result.views.values
        self._top5 = values.get("top5", [])
        before = values.get("top5_before", ())
        if before:
            note = note or "with the edits; ticks: without them"
        self.view.set_predictions([(p.label, p.probability) for p in self._top5], note, before)
