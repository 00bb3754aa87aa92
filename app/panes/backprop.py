"""The backprop pane: what drives the selected unit, or where a class is seen (Grad-CAM)."""

from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView


class BackpropPane(Pane):
    """What drives the selected unit (backprop, deconv, guided backprop) or where a class is seen
    (Grad-CAM); open while the state's `backprop` is not off, and computed only then."""

    DEFAULT_MODE = "guided"

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.image = ImageView(placeholder="b turns on backprop of the selected unit")
        self.probe(self.image)
        self.setLayout(column(self.image))
        self.set_title("backprop (b: mode, n: view)")
        self.last_mode = state.backprop if state.backprop != "off" else self.DEFAULT_MODE
        state.events.backprop.connect(self._follow)

    def _follow(self, mode: str) -> None:
        if mode != "off":
            self.last_mode = mode
        self.wanted.emit(mode != "off")

    @property
    def active(self) -> bool:
        return self.state.backprop != "off"

    def opened(self, is_open: bool) -> None:
        if is_open != self.active:
            self.state.backprop = self.last_mode if is_open else "off"

    def wants_open(self) -> bool | None:
        return self.active

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("backprop")
        if image is None:
            return
        self.image.set_image(image, views.frame_size)
        options, values = result.options, views.values
        mode, view = options["backprop"], options["backprop_view"]
        if mode == "gradcam":
            index = values.get("backprop_class")
            label = model.categories[index] if model is not None and index is not None else index
            picked = "picked" if options.class_index is not None else "top-1"
            path = values.get("gradcam_layer", views.layer.path)
            row = model.find(path) if model is not None else None
            where = "" if options["gradcam_layer"] else ", the last layer with maps"
            self.set_title(f"Grad-CAM of {label} ({picked}; click a prediction) at {row.name if row else path}{where}")
        else:
            count = values.get("backprop_rule_count", 0)
            rule = f"the {mode} rule at {count} ReLU calls"
            if count == 0 and mode != "grad":  # GELU and the like: the rule has nothing to act on
                rule = f"no ReLU in this model: {mode} is the plain gradient here"
            blind = (
                " (the same for every image in this network: no max-pooling; try guided)"
                if values.get("backprop_sees_the_image", True) is False
                else ""
            )
            self.set_title(f"{mode} ({view}) of {views.layer.name}:{views.channel} - {rule}{blind}")
