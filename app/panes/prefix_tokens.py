"""The prefix-tokens pane: the class, distillation and register tokens, each laid out as the layer's grid."""

from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView


class PrefixTokensPane(Pane):
    """The prefix tokens (class, distillation, registers) beside the grid, each a small grid of its channels
    laid out as the layer grid: channel c's value where channel c's map sits."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
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
