"""The edits pane: units switched off, set to their means or scaled in the forward pass, listed with undo; every
view after an edited layer shows the network with them, and the predictions compare it with the network
without them."""

from __future__ import annotations

from dataclasses import replace

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from livevis.app.panes.base import Pane, PaneServices
from livevis.app.window.action_spec import ActionSpec
from livevis.models.atlas.mining import mined_means
from livevis.models.attribution import map_cell
from livevis.models.errors import LivevisError
from livevis.models.interventions import UnitEdit, parse_channels

MODES = {"switch off": ("zero", 0.0), "set to their means": ("mean", 0.0), "scale by": ("scale", 1.0)}
"""What a new edit does, as the mode box says it: (mode, factor)."""
STEP = 1.5
"""How much `+` and `-` scale the selected channel each time."""


def means_of(engine, layer: str, channels: tuple[int, ...], *, progress) -> tuple[float, ...] | None:
    """Runs as a job (it reads the atlas files): the channels' means over the latest folder mined for the layer,
    None where there is none (the edit then takes them over the frames seen)."""
    return mined_means(engine, layer, channels)


def edits_for(model, edits: tuple) -> tuple[tuple, list]:
    """The edits that fit a model just loaded (its layer is there, with the channels and cells they name), and
    those that do not, described: a model loaded again keeps its edits."""
    kept, dropped = [], []
    for edit in edits:
        row = model.find(edit.layer)
        maps = None if row is None or len(row.shape) != 3 else tuple(row.shape[1:])
        try:
            if row is None:
                raise LivevisError(f"{model.name} has no layer {edit.layer}")
            edit.check(row.shape[0], maps)
        except LivevisError as exc:
            dropped.append(f"{edit.describe()} ({exc})")
            continue
        kept.append(edit)
    return tuple(kept), dropped


class EditsPane(Pane):
    """The edits in force, newest last: remove one, undo the last, clear them; a switch to compare with the
    network without them; and new edits: the selected channel by its keys, a list of the layer's channels, or
    a rectangle of the map's cells (every channel there) by two clicks on the frame."""

    ACTIONS = (
        ActionSpec(
            "unit_off",
            "Switch the channel off",
            ("0",),
            "switch the selected channel off (again: back on)",
            "toggle_selected",
            "View",
        ),
        ActionSpec(
            "unit_up", "Scale the channel up", ("+", "="), f"scale the selected channel by {STEP:g}", "scale_up", "View"
        ),
        ActionSpec(
            "unit_down",
            "Scale the channel down",
            ("-",),
            f"scale the selected channel by 1/{STEP:g}",
            "scale_down",
            "View",
        ),
        ActionSpec("undo_edit", "Undo the last edit", ("Ctrl+Z",), "undo the last edit", "undo", "View"),
    )

    def __init__(self, state, spec: None, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, None, services, parent)
        self.listed = QListWidget()
        self.listed.setToolTip("the edits in force, applied in this order in the forward pass")
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self._remove_chosen)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.clear = QPushButton("Clear")
        self.clear.clicked.connect(lambda: setattr(state, "edits", ()))
        self.compare = QCheckBox("compare with the network without them")
        self.compare.setChecked(state.compare)
        self.compare.toggled.connect(lambda on: setattr(state, "compare", on))
        state.events.compare.connect(lambda on, *_: self.compare.setChecked(bool(on)))
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.factor = QDoubleSpinBox()
        self.factor.setRange(0.0, 10.0)
        self.factor.setSingleStep(0.25)
        self.factor.setValue(0.5)
        self.factor.setPrefix("x ")
        self.channels = QLineEdit()
        self.channels.setPlaceholderText("channels of the layer: 3,17,40-63")
        self.channels.returnPressed.connect(self._add_listed)
        self.add = QPushButton("Add")
        self.add.clicked.connect(self._add_listed)
        self.rectangle = QPushButton("Cells...")
        self.rectangle.setCheckable(True)
        self.rectangle.setToolTip(
            "every channel of the layer in a rectangle of its map: click two corners on the frame"
        )
        self.rectangle.toggled.connect(self._start_rectangle)
        self.said = QLabel("0 switches the selected channel off; + and - scale it")
        self.said.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.remove, self.undo_button, self.clear):
            buttons.addWidget(button)
        new = QHBoxLayout()
        for widget, stretch in (
            (self.mode, 0),
            (self.factor, 0),
            (self.channels, 1),
            (self.add, 0),
            (self.rectangle, 0),
        ):
            new.addWidget(widget, stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.listed, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.compare)
        layout.addLayout(new)
        layout.addWidget(self.said)
        self.set_title("edits (0 switches the selected channel off)")
        self._corner: tuple[float, float] | None = None
        self._last = None
        self._model = None
        state.events.edits.connect(self._show)
        self._show(state.edits)

    # ------------------------------------------------------------------ the list
    def _show(self, edits, *_) -> None:
        self.listed.clear()
        self.listed.addItems([edit.describe() for edit in edits])
        self.set_title(f"edits ({len(edits)} in force)" if edits else "edits (0 switches the selected channel off)")
        if edits:
            self.wanted.emit(True)

    def _set(self, edits: tuple) -> None:
        try:
            self.state.edits = tuple(edits)
        except ValueError as exc:
            self._say(str(exc))

    def _remove_chosen(self) -> None:
        row = self.listed.currentRow()
        if 0 <= row < len(self.state.edits):
            self._set(self.state.edits[:row] + self.state.edits[row + 1 :])

    def undo(self) -> None:
        if self.state.edits:
            self._set(self.state.edits[:-1])

    def _say(self, text: str) -> None:
        self.said.setText(text)
        self.services.message(text, 6000)

    # ------------------------------------------------------------------ new edits
    def _new(self, channels: tuple[int, ...], cells=None) -> None:
        """An edit of the state's layer in the mode the box says (the mean mode looks up a mined folder's means
        in the background first)."""
        mode, factor = MODES[self.mode.currentText()]
        factor = self.factor.value() if mode == "scale" else factor
        layer = self.state.layer
        if not self._fits(layer, channels, cells):
            return
        if mode != "mean" or self.services.engine() is None:
            self._set((*self.state.edits, UnitEdit(layer, channels, mode, factor, cells)))
            return
        job = self.services.runner.submit(
            "the channels' means over a mined folder", means_of, self.services.engine(), layer, channels
        )
        job.succeeded.connect(
            lambda means: self._set((*self.state.edits, UnitEdit(layer, channels, "mean", 0.0, cells, means)))
        )
        job.failed.connect(self._say)

    def _fits(self, layer: str, channels: tuple[int, ...], cells) -> bool:
        row = self._model.find(layer) if self._model is not None else None
        if row is None:
            self._say("no layer to edit yet: load a model and pick a layer")
            return False
        try:
            UnitEdit(layer, channels, cells=cells).check(
                row.shape[0], tuple(row.shape[1:]) if len(row.shape) == 3 else None
            )
        except LivevisError as exc:
            self._say(str(exc))
            return False
        return True

    def _add_listed(self) -> None:
        try:
            channels = parse_channels(self.channels.text())
        except LivevisError as exc:
            self._say(str(exc))
            return
        self._new(channels)

    def _selected_edit(self) -> int | None:
        """Where the edit of the selected channel alone, on every cell, stands in the list."""
        for index, edit in enumerate(self.state.edits):
            if isinstance(edit, UnitEdit) and edit.layer == self.state.layer and edit.channels == (self.state.channel,):
                if edit.cells is None:
                    return index
        return None

    def toggle_selected(self) -> None:
        index = self._selected_edit()
        if index is not None and self.state.edits[index].mode == "zero":
            self._set(self.state.edits[:index] + self.state.edits[index + 1 :])
        elif self._fits(self.state.layer, (self.state.channel,), None):
            self._set((*self.state.edits, UnitEdit(self.state.layer, (self.state.channel,), "zero")))

    def _scale(self, by: float) -> None:
        index = self._selected_edit()
        edits = list(self.state.edits)
        if index is not None and edits[index].mode == "scale":
            factor = edits[index].factor * by
            if abs(factor - 1.0) < 1e-6:
                del edits[index]
            else:
                edits[index] = replace(edits[index], factor=factor)
            self._set(tuple(edits))
        elif self._fits(self.state.layer, (self.state.channel,), None):
            self._set((*edits, UnitEdit(self.state.layer, (self.state.channel,), "scale", by)))

    def scale_up(self) -> None:
        self._scale(STEP)

    def scale_down(self) -> None:
        self._scale(1 / STEP)

    # ------------------------------------------------------------------ a rectangle of cells
    def _start_rectangle(self, on: bool) -> None:
        self._corner = None
        if on:
            self._say("click one corner of the rectangle on the frame, then the other")

    def frame_clicked_at(self, x: float, y: float, views) -> None:
        if not self.rectangle.isChecked() or views is None or not views.layer.is_spatial:
            return
        cell = map_cell((x, y), views.crop, tuple(views.layer.shape[1:]))
        if cell is None:
            self._say("that is outside the square the network sees")
            return
        if self._corner is None:
            self._corner = cell
            self._say(f"one corner at cell {cell}; now the other")
            return
        (r0, c0), (r1, c1) = self._corner, cell
        cells = (min(r0, r1), min(c0, c1), max(r0, r1) + 1, max(c0, c1) + 1)
        self.rectangle.setChecked(False)
        self._new(tuple(range(views.layer.channels)), cells)

    def set_model(self, model) -> None:
        self._model = model
