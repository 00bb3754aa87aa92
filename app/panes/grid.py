"""The grid pane: every channel of the selected layer; the arrow keys move the selection in it."""

from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.app.window.action_spec import ActionSpec
from livevis.models.interventions import UnitEdit
from livevis.views import ViewSpec
from livevis.widgets.channel_grid import ChannelGrid


class GridPane(Pane):
    """Every channel of the selected layer; the state's channel outlined. Its layout follows the pane's shape,
    so the tiles come out as large as the pane allows."""

    ACTIONS = (
        ActionSpec("left", "Channel left", ("Left", "J"), "select the channel to the left", "move_left"),
        ActionSpec("right", "Channel right", ("Right", "L"), "select the channel to the right", "move_right"),
        ActionSpec("up", "Channel above", ("Up", "I"), "select the channel above", "move_up"),
        ActionSpec("down", "Channel below", ("Down", "K"), "select the channel below", "move_down"),
    )
    computed_while_closed = True

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.grid = ChannelGrid(state)
        self.grid.resized.connect(lambda *_: self.display_changed.emit())
        self.setLayout(column(self.grid))
        self.set_title("layer")

    def request(self) -> dict:
        """The grid drawn at the size it is shown at, its tiles as large as the pane allows."""
        size = self.grid.render_size()
        return {"grid_size": size} if min(size) > 16 else {}

    def _move(self, rows: int, cols: int) -> None:
        geometry = self.grid.geometry_
        if geometry is not None:
            self.state.channel = geometry.moved(self.state.channel, rows, cols)

    def move_left(self) -> None:
        self._move(0, -1)

    def move_right(self) -> None:
        self._move(0, 1)

    def move_up(self) -> None:
        self._move(-1, 0)

    def move_down(self) -> None:
        self._move(1, 0)

    @property
    def paint_ms(self) -> float:
        return self.grid.last_paint_ms

    def show_result(self, result, model):
        views = result.views
        values = views.values
        self.grid.set_grid(views.images["grid"], values["grid_layout"], values["channel_max"], values["channel_mean"])
        # the channels an edit changes at this layer, crossed out: the tiles still show them as measured
        edited = [e for e in result.options.edits if isinstance(e, UnitEdit) and e.layer == views.layer.path]
        self.grid.set_marked({c for e in edited if e.cells is None for c in e.channels})
        self.set_title(f"{views.layer.label}  ({views.layer.channels} channels; click or arrows to pick)")
