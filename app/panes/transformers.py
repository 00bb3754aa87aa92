"""A transformer's panes: attention at the selected block (every head as a grid, one on the frame, or the
rollout up to the block), the norms of its tokens with the high-norm outliers marked, and its prefix tokens.

They open when a transformer is loaded and close for a convolutional network, whose views they would not
have; closing the attention pane turns attention off (its views are then not computed), opening it on.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.worker import LiveResult
from livevis.app.panes.base import Pane, column
from livevis.models.attribution import map_cell
from livevis.state import MEAN_OF_HEADS, LiveState
from livevis.widgets.channel_grid import ChannelGrid
from livevis.widgets.image_view import ImageView


class TransformerPane(Pane):
    """A pane that is there for a transformer only."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.transformer = False

    @property
    def active(self) -> bool:
        return self.transformer

    def set_model(self, model: ModelInfo) -> None:
        self.transformer = model.transformer
        self.wanted.emit(bool(self.wants_open()))

    def wants_open(self) -> bool | None:
        return self.active


class AttentionPane(TransformerPane):
    """Every head's attention from the query token (the class token until a patch is clicked on the frame
    here; right-click goes back to it), the selected head or the mean of the heads on the frame (click a
    head's tile; click it again for the mean); `a` cycles off / heads / rollout."""

    views = ("attention", "attention_overlay")
    DEFAULT_MODE = "heads"

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.caption = QLabel("attention (a: off / heads / rollout)")
        self.caption.setWordWrap(True)
        self.heads = ChannelGrid(
            state, field="attention_head", again=MEAN_OF_HEADS, placeholder="the heads of the block"
        )
        self.overlay = ImageView(placeholder="attention on the frame")
        self.overlay.setMouseTracking(True)
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

    def _follow(self, mode: str) -> None:
        if mode != "off":
            self.last_mode = mode
        self.wanted.emit(self.active)

    @property
    def active(self) -> bool:
        return self.transformer and self.state.attention != "off"

    def opened(self, is_open: bool) -> None:
        if self.transformer and is_open != self.active:
            self.state.attention = self.last_mode if is_open else "off"

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
        self.overlay.set_image(views.images["attention_overlay"], views.frame_size)
        query = values.get("attention_query_cell")
        asked = (
            "the class token"
            if query is None and model is not None and model.prefix
            else ("the centre patch" if query is None else f"patch {query}")
        )
        head = result.options.attention_head
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


class TokenNormsPane(TransformerPane):
    """The L2 norm of every token of the selected layer on the frame, high-norm outliers ringed, and the
    prefix tokens' norms (registers take the outliers' role in models that have them)."""

    views = ("token_norms",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.caption = QLabel("token norms")
        self.caption.setWordWrap(True)
        self.image = ImageView(placeholder="token norms (a transformer's)")
        self.setLayout(column(self.image, self.caption))
        self.set_title("token norms")

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("token_norms")
        if image is None:
            self.caption.setText(f"{views.layer.name} is not a layer of tokens")
            return
        self.image.set_image(image, views.frame_size)
        values = views.values
        outliers = values.get("token_outliers", [])
        text = f"median norm {values.get('token_norm_median', 0.0):.3g}; "
        text += (
            f"{len(outliers)} high-norm outlier{'s' if len(outliers) != 1 else ''} ringed"
            if outliers
            else ("no high-norm outlier")
        )
        prefix = values.get("prefix_norms")
        if prefix is not None and model is not None:
            names = model.prefix or [f"prefix {i}" for i in range(len(prefix))]
            text += "; " + ", ".join(f"{name} {norm:.3g}" for name, norm in zip(names, prefix, strict=False))
        self.caption.setText(text)
        self.set_title(f"token norms at {views.layer.name}")


class PrefixTokensPane(TransformerPane):
    """The prefix tokens (class, distillation, registers) beside the grid, each a small grid of its channels
    laid out as the layer grid: channel c's value where channel c's map sits."""

    views = ("prefix_tokens",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.image = ImageView(smooth=False, placeholder="prefix tokens (a transformer's)")
        self.image.setMinimumSize(60, 40)
        self.setLayout(column(self.image))
        self.set_title("prefix tokens")

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("prefix_tokens")
        if image is None:
            self.set_title(f"prefix tokens: {views.layer.name} has none")
            return
        self.image.set_image(image)
        names = ", ".join(views.values.get("prefix_names", []))
        self.set_title(f"prefix tokens, left to right: {names} (each channel where its map sits in the grid)")
