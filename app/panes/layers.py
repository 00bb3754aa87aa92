"""The layers pane: the model's layers as a tree."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QWidget,
)

from livevis.app.panes.base import Pane, column
from livevis.state import LiveState
from livevis.widgets.layer_tree import LayerTree


class LayersPane(Pane):
    """The model's layers as a tree; the state's layer selected."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.tree = LayerTree(state)
        self.tree.setMinimumWidth(200)
        self.setLayout(column(self.tree))
        self.set_title("layers (u / o step through them)")

    def show_result(self, result, model):
        pass
