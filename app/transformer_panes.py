"""A transformer's panes: attention at the selected block (every head as a grid, one on the frame, or the
rollout up to the block), and the norms of its tokens with the high-norm outliers marked.

Both hide themselves for a network without tokens: their views draw nothing there.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from livevis.app.pane import Pane
from livevis.app.worker import LiveResult
from livevis.models.attribution import map_cell
from livevis.state import MEAN_OF_HEADS, LiveState
from livevis.widgets.channel_grid import ChannelGrid
from livevis.widgets.image_view import ImageView


class AttentionPane(Pane):
    """Every head's attention from the query token (the class token until a patch is clicked on the frame
    here; right-click goes back to it), the selected head or the mean of the heads on the frame (click a
    head's tile; click it again for the mean); `a` cycles off / heads / rollout."""

    views = ("attention", "attention_overlay")

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.title = QLabel("attention (a: off / heads / rollout)")
        self.title.setWordWrap(True)
        self.heads = ChannelGrid(state, field="attention_head", again=MEAN_OF_HEADS,
                                 placeholder="attention of the block\\n(a transformer's)")  # fmt: skip
        self.overlay = ImageView(placeholder="attention on the frame")
        self.overlay.setMouseTracking(True)
        self.class_token = QPushButton("Class token")
        self.class_token.setToolTip("ask attention from the class token again (or right-click the frame)")
        self.class_token.clicked.connect(lambda: setattr(state, "attention_query", None))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heads)
        split.addWidget(self.overlay)
        split.setStretchFactor(1, 2)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.class_token)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.overlay.clicked.connect(self._ask_from)
        self.overlay.right_clicked.connect(lambda *_: setattr(state, "attention_query", None))
        state.events.attention.connect(lambda _mode: self._show_or_hide())
        self._last: LiveResult | None = None
        self._has_attention = False
        self._show_or_hide()

    @property
    def active(self) -> bool:
        return self.state.attention != "off"

    def _show_or_hide(self) -> None:
        self.setVisible(self.active and self._has_attention)

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
        views = result.views
        self._last = result
        grid = views.images.get("attention")
        self._has_attention = grid is not None or bool(views.values.get("attention_note"))
        self._show_or_hide()
        if grid is None:
            if views.values.get("attention_note"):
                self.title.setText(f"attention: {views.values['attention_note']}")
            return
        values = views.values
        self.heads.set_grid(grid, values["attention_layout"], titles=values["attention_titles"])
        self.overlay.set_image(views.images["attention_overlay"], views.frame_size)
        query = values.get("attention_query_cell")
        asked = "the class token" if query is None and model is not None and model.prefix else (
            "the centre patch" if query is None else f"patch {query}")  # fmt: skip
        head = result.options.attention_head
        shown = "rollout" if values["attention_mode"] == "rollout" else (
            "mean of the heads" if head == MEAN_OF_HEADS or head >= values["attention_layout"].channels
            else f"head {head}")  # fmt: skip
        window = " within its window" if values.get("attention_window") else ""
        note = f"; {values['attention_note']}" if values.get("attention_note") else ""
        self.title.setText(f"attention at {values['attention_block']} from {asked}{window}: {shown} on the frame "
                           f"(click a patch to ask from it){note}")  # fmt: skip


class TokenNormsPane(Pane):
    """The L2 norm of every token of the selected layer on the frame, high-norm outliers ringed, and the
    prefix tokens' norms (registers take the outliers' role in models that have them)."""

    views = ("token_norms",)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("token norms")
        self.title.setWordWrap(True)
        self.image = ImageView(placeholder="token norms (a transformer's)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.image, 1)
        self.hide()

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("token_norms")
        self.setVisible(image is not None)
        if image is None:
            return
        self.image.set_image(image, views.frame_size)
        values = views.values
        outliers = values.get("token_outliers", [])
        median = values.get("token_norm_median", 0.0)
        text = f"token norms at {views.layer.name}: median {median:.3g}; "
        text += f"{len(outliers)} high-norm outlier{'s' if len(outliers) != 1 else ''} ringed" if outliers else (
            "no high-norm outlier")  # fmt: skip
        prefix = values.get("prefix_norms")
        if prefix is not None and model is not None:
            names = model.prefix or [f"prefix {i}" for i in range(len(prefix))]
            text += "; " + ", ".join(f"{name} {norm:.3g}" for name, norm in zip(names, prefix, strict=False))
        self.title.setText(text)
