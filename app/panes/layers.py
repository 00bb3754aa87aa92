"""The layers pane: the model's layers as a tree."""

from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.widgets.layer_tree import LayerTree


class LayersPane(Pane):
    """The model's layers as a tree; the state's layer selected. It shows no view: it chooses the layer."""

    def __init__(self, state, spec: None, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, None, services, parent)
        self.tree = LayerTree(state)
        self.tree.setMinimumWidth(200)
        self.setLayout(column(self.tree))
        self.set_title("layers (u / o step through them)")

    def set_model(self, model) -> None:
        self.tree.set_layers(model.layers)
