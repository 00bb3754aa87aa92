"""The backprop view: what drives the selected unit (its input gradient under a ReLU backward rule: plain,
deconv or guided backprop), or where a class is seen (Grad-CAM at a layer), on the frame."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

BACKPROP_MODES = ("off", "grad", "deconv", "guided", "gradcam", "eigencam")
BACKPROP_VIEWS = ("raw", "gray", "norm", "normblur")
"""How a gradient is drawn: as it is, its mean over the input channels, its norm, its norm blurred."""

BACKPROP = ViewSpec(
    name="backprop",
    producer="livevis.models.attribution.view:BackpropProducer",
    title="Backprop",
    pane="livevis.app.panes.backprop:BackpropPane",
    pictures=("backprop",),
    recorded=("backprop",),
    arrays=(
        ("backprop_gradient", "backprop"),
        ("gradcam_map", "gradcam"),
        ("eigencam_map", "eigencam"),
        ("explained_box", "explained_box"),
    ),
    options=(
        Option(
            "backprop",
            "off",
            choices=BACKPROP_MODES,
            what="backprop mode",
            flag="--backprop",
            help="grad, deconv or guided (what drives the channel), gradcam (where the class, the detection "
            "or the segmented class is seen) or eigencam (the layer's first principal component)",
            key="B",
            title="Backprop mode",
            key_help="cycle the backprop pane: off, grad, deconv, guided, gradcam, eigencam",
            toolbar="backprop",
            persist=True,
        ),
        Option(
            "backprop_view",
            "normblur",
            choices=BACKPROP_VIEWS,
            what="backprop view",
            flag="--backprop-view",
            help="how the gradient is drawn: raw, gray, norm or normblur (its norm, blurred)",
            key="N",
            title="Backprop view",
            key_help="cycle the backprop view: raw, gray, norm, normblur",
            toolbar="view",
            persist=True,
        ),
        Option(
            "gradcam_layer",
            None,
            check=lambda value: value is None or (isinstance(value, str) and bool(value)),
            expects="a layer's path or friendly name, or none",
            flag="--gradcam-layer",
            help="the layer Grad-CAM explains the class at (default: the last layer with maps)",
        ),
    ),
    rendered=True,
    place=Place(beside="grid", side="below", share=0.45, presented=True),
    description="backprop.png: what drives the selected unit, or Grad-CAM of a class (--backprop)",
)
VIEWS = (BACKPROP,)
