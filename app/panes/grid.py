"""The grid pane: every channel of the selected layer."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QWidget,
)

from livevis.app.panes.base import Pane, column
from livevis.state import LiveState
from livevis.widgets.channel_grid import ChannelGrid


class GridPane(Pane):
    """Every channel of the selected layer; the state's channel outlined."""

    views = ("grid",)
    computed_while_closed = True

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.grid = ChannelGrid(state)
        self.setLayout(column(self.grid))
        self.set_title("layer")

    def show_result(self, result, model):
        views = result.views
        self.grid.set_grid(views.grid, views.grid_layout, views.channel_max, views.channel_mean)
        self.set_title(f"{views.layer.label}  ({views.layer.channels} channels; click or arrows to pick)")
