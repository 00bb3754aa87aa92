"""The attention pane: every head's attention at the selected block (or the rollout up to it) as a grid, one
head (or their mean) on the frame; a click on the frame asks from that patch."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from livevis.app.live.worker import LiveResult
from livevis.app.panes.base import Pane, PaneServices
from livevis.app.window.action_spec import ActionSpec
from livevis.models.attribution import map_cell
from livevis.views import Option, ViewSpec
from livevis.views.transformers import MEAN_OF_HEADS
from livevis.widgets.channel_grid import ChannelGrid
from livevis.widgets.image_view import ImageView


class AttentionPane(Pane):
    """Every head's attention from the query token (the class token until a patch is clicked on the frame
    here; right-click goes back to it), the selected head or the mean of the heads on the frame (click a
    head's tile; click it again for the mean); `a` cycles off / heads / rollout."""

    ACTIONS = (
        ActionSpec(
            "attention_head",
            "Next attention head",
            ("V",),
            "the attention head shown on the frame: the mean of the heads, then each head in turn",
            "next_head",
            "View",
        ),
    )
    DEFAULT_MODE = "heads"

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.caption = QLabel("attention (a: off / heads / rollout)")
        self.caption.setWordWrap(True)
        self.heads = ChannelGrid(
            state, field="attention_head", again=MEAN_OF_HEADS, placeholder="the heads of the block"
        )
        self.overlay = ImageView(placeholder="attention on the frame")
        self.overlay.setMouseTracking(True)
        self.overlay.resized.connect(lambda *_: self.display_changed.emit())
        self.class_token = QPushButton("Class token")
        self.class_token.setToolTip("ask attention from the class token again (or right-click the frame)")
        self.class_token.clicked.connect(lambda: setattr(state, "attention_query", None))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heads)
        split.addWidget(self.overlay)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        split.setSizes([100, 200])  # the frame gets two thirds
        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.class_token)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.set_title("attention (a: off / heads / rollout)")
        self.overlay.clicked.connect(self._ask_from)
        self.overlay.right_clicked.connect(lambda *_: setattr(state, "attention_query", None))
        self.last_mode = state.attention if state.attention != "off" else self.DEFAULT_MODE
        state.events.attention.connect(self._follow)
        self._last: LiveResult | None = None
        self.model_name = ""

    def _follow(self, mode: str) -> None:
        if mode != "off":
            self.last_mode = mode
        if not self.fits_model and self.model_name:
            self.services.message(f"{self.model_name} has no attention: a transformer's attention shows here", 5000)
        self.wanted.emit(self.active)

    @property
    def active(self) -> bool:
        return self.fits_model and self.state.attention != "off"

    def set_model(self, model) -> None:
        self.model_name = model.name
        super().set_model(model)

    def opened(self, is_open: bool) -> None:
        if self.fits_model and is_open != self.active:
            self.state.attention = self.last_mode if is_open else "off"

    def next_head(self) -> None:
        """The next head on the frame (after the mean of the heads, each head in turn)."""
        values = self._last.views.values if self._last is not None else {}
        layout = values.get("attention_layout")
        if layout is not None and values.get("attention_mode") == "heads":
            heads = Option("heads", MEAN_OF_HEADS, choices=tuple(range(MEAN_OF_HEADS, layout.channels)))
            self.state.attention_head = heads.next(self.state.attention_head)

    def _ask_from(self, x: float, y: float) -> None:
        """The patch under a click on the frame becomes the query."""
        views = self._last.views if self._last is not None else None
        layout = None if views is None else views.values.get("attention_layout")
        if layout is None:
            return
        cell = map_cell((x, y), views.crop, (layout.tile_h, layout.tile_w))
        if cell is not None:
            self.state.attention_query = cell

    def show_result(self, result, model):
        views, values = result.views, result.views.values
        self._last = result
        grid = views.images.get("attention")
        if grid is None:
            if values.get("attention_note"):  # no map here: none of another block's stays on show
                self.caption.setText(f"attention: {values['attention_note']}")
                self.heads.set_image(None)
                self.overlay.set_image(None)
                self.set_title("attention (a: off / heads / rollout)")
            return
        self.heads.set_grid(grid, values["attention_layout"], titles=values["attention_titles"])
        self.overlay.set_image(views.image("attention_overlay"), views.frame_size)
        query = values.get("attention_query_cell")
        asked = (
            "the class token"
            if query is None and model is not None and model.prefix
            else ("the centre patch" if query is None else f"patch {query}")
        )
        head = result.options["attention_head"]
        shown = (
            "rollout"
            if values["attention_mode"] == "rollout"
            else (
                "mean of the heads"
                if head == MEAN_OF_HEADS or head >= values["attention_layout"].channels
                else f"head {head}"
            )
        )
        window = " within its window" if values.get("attention_window") else ""
        note = f"; {values['attention_note']}" if values.get("attention_note") else ""
        self.caption.setText(
            f"attention at {values['attention_block']} from {asked}{window}: {shown} on the "
            f"frame (click a patch to ask from it){note}"
        )
        self.set_title(f"attention at {values['attention_block']} ({values['attention_mode']})")
