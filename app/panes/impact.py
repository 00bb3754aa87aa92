"""The impact pane: which units of the selected layer matter for the class (the frame's top one, or the one
clicked in the predictions), each channel's first-order estimate beside its measured change; a click on a row
switches that channel off."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from livevis.app.panes.base import Pane, PaneServices
from livevis.models.interventions import UnitEdit
from livevis.views import ViewSpec

SHOWN = 40
"""Rows listed: the strongest channels by the estimate (the first 20 measured too)."""


class ImpactPane(Pane):
    """The channels by their estimated support of the class, strongest first: the estimate (activation x
    gradient, summed over the map) and, for the first 20, the change measured with the channel off, side by side
    so that one sees where the estimate lies."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.caption = QLabel("which units matter for the class (click a prediction to pick one)")
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["channel", "estimate", "measured"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip("the change of the class's score with the channel off; click a row to switch it off")
        self.table.cellClicked.connect(self._switch_off)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        self.set_title("which units matter")
        self._layer = ""
        self._channels: list[int] = []

    def show_result(self, result, model):
        values = result.views.values
        impact = values.get("impact")
        if impact is None:
            self.caption.setText(values.get("impact_note", "no ranking for this layer"))
            self.table.setRowCount(0)
            return
        label = values.get("impact_label", str(impact.class_index))
        edited = " with the edits" if result.options.edits else ""
        self.caption.setText(
            f"channels of {result.views.layer.name} by their effect on {label} (score "
            f"{impact.score:.3g}{edited}); click one to switch it off"
        )
        self.set_title(f"which units matter for {label}")
        self._layer = impact.layer
        self._channels = impact.ranked()[:SHOWN]
        self.table.setRowCount(len(self._channels))
        for row, channel in enumerate(self._channels):
            measured = impact.measured.get(channel)
            cells = (str(channel), f"{impact.estimates[channel]:+.4g}", "" if measured is None else f"{measured:+.4g}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)

    def _switch_off(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._channels):
            channel = self._channels[row]
            self.state.edits = (*self.state.edits, UnitEdit(self._layer, (channel,), "zero"))
            self.services.message(f"channel {channel} of {self._layer} switched off (Ctrl+Z undoes it)", 6000)
