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
        if "explained_method" in values:
            self.set_title(explained_title(values, model))
        elif mode == "gradcam":
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


def explained_title(values, model) -> str:
    """What the map explains: a detection (followed from frame to frame, with the IoU of the box matched), a
    segmentation class, or the layer itself (EigenCAM of a classifier's layer)."""
    method = "Grad-CAM" if values["explained_method"] == "gradcam" else "EigenCAM"
    row = model.find(values["explained_layer"]) if model is not None else None
    where = row.name if row is not None else values["explained_layer"]
    task, index = values["explained_task"], values["explained_index"]
    names = model.class_names if model is not None else ()
    if task == "detect":
        if index is None:
            return f"{method} at {where}: no detection followed (click a box)"
        iou = f", IoU {values['explained_iou']:.2f}" if values["explained_method"] == "gradcam" else ""
        return f"{method} of detection {index} at {where}{iou} (click a box to follow another)"
    if task == "segment":
        name = names[index] if index is not None and index < len(names) else f"class {index}"
        return f"{method} of {name} at {where} (click a class to explain another)"
    return f"{method} of {where}: its first principal component"
