"""The backprop view's producer (declared in `livevis.views.backprop`): what drives the selected unit, or
where a class is seen (Grad-CAM), computed in the same pass as the forward and drawn on the frame."""

from __future__ import annotations

import torch

from ..detection.explain import TargetExplanations
from ..producer import Producer
from ..render.base import Renderer
from .backprop import BackwardRequest, deconvolution_sees_the_input
from .gradient_views import gradient_view, render_gradient

GRADCAM_COLORMAP = "inferno"
GRADCAM_OPACITY = 0.6
"""Grad-CAM's heat map covers the crop at this share of the overlay's opacity (0.48 at the default 0.8)."""


def gradient_picture(r: Renderer, values, view: str):
    """`render_gradient`'s picture of a gradient view, coloured by the renderer: the same levels (signed ones
    by max |v|, others from 0 to their max) through the renderer's own table lookup, which on the CPU is one
    OpenCV pass instead of several torch ones. RGB (a raw view of 3 channels) is `render_gradient`'s."""
    if view == "raw" and values.shape[0] == 3:
        return r.asarray(render_gradient(values, view))
    image = values[0] if values.dim() == 3 else values
    flat = r.asarray(image.reshape(1, -1).contiguous())
    low, high, _ = r.channel_stats(flat)
    colormap = "signed" if view in ("raw", "gray") else "gray"
    levels = r.levels(flat, low if colormap == "signed" else low * 0, high, colormap, per_channel=True)
    return r.colorize(levels.reshape(image.shape), colormap)


def explained_layer(engine, layer, options) -> str | None:
    """The path of the layer Grad-CAM explains the class at: the one asked for (a path or a friendly name),
    else the model's last layer with maps."""
    if options["gradcam_layer"]:
        return engine.layer(options["gradcam_layer"]).path
    found = engine.gradcam_layer()
    return found.path if found is not None else None


def heat_picture(ctx, cam: torch.Tensor):
    """An h x w map (>= 0) over the crop the network saw, on the frame: 0 black, its largest value the top
    colour, every cell at the same opacity (a class weakly seen reads as a dim, not vanishing, map)."""
    r, o = ctx.renderer, ctx.options
    shown, placed = ctx.shown_frame
    maps = r.asarray(cam.reshape(1, -1).contiguous())
    _, high, _ = r.channel_stats(maps)
    levels = r.levels(maps, high * 0, high, GRADCAM_COLORMAP, per_channel=True).reshape(cam.shape)
    return r.render_overlay(
        shown, levels, placed, GRADCAM_COLORMAP, mode="heatmap", opacity=GRADCAM_OPACITY * o.opacity
    )


class BackpropProducer(Producer):
    """What drives the selected unit (its input gradient under the chosen ReLU rule, drawn at the crop the
    network saw, on the frame), or Grad-CAM of a class at a layer, upsampled onto the frame; for a detector or
    a segmenter, EigenCAM or Grad-CAM of the selected detection or class (`detection.explain`)."""

    def __init__(self):
        self.explained: TargetExplanations | None = None

    def backward(self, engine, layer, options):
        mode = options["backprop"]
        self.explained = None
        if mode == "off":
            return None
        if mode == "eigencam" or (mode == "gradcam" and engine.whole_frame):
            self.explained = self.explained_for(engine, layer, options)
            return self.explained.request(options)
        explained = explained_layer(engine, layer, options) if mode == "gradcam" else layer.path
        return BackwardRequest(mode, explained or layer.path, options.channel, options.class_index)

    def explained_for(self, engine, layer, options) -> TargetExplanations:
        """What follows the selected detection from frame to frame (one per pipeline and layer)."""
        path = (engine.layer(options["gradcam_layer"]) if options["gradcam_layer"] else engine.explain_layer()).path
        kept = getattr(self, "_targets", None)
        if kept is None or kept.layer_path != path or kept.task != engine.task:
            kept = self._targets = TargetExplanations(path, engine.task)
        return kept

    def layers(self, layer, options):
        return {self.explained.layer_path} if self.explained is not None else set()

    def render(self, ctx):
        if self.explained is not None:
            return self.explained.render(ctx, heat_picture)
        passed = ctx.result.backward
        if passed is None:
            return {}
        r, o = ctx.renderer, ctx.options
        shown, placed = ctx.shown_frame
        if passed.cam is not None:
            cam = passed.cam.cam[0]
            out = {
                "backprop": heat_picture(ctx, cam),
                "backprop_class": int(passed.cam.class_index[0]),
                "gradcam_layer": explained_layer(ctx.engine, ctx.layer, o) or ctx.layer.path,
            }
            if ctx.with_arrays:
                out["gradcam_map"] = cam.float()
            return out
        gradient = passed.gradient[0]
        view = o["backprop_view"]
        # raw shows 1 or 3 input channels as they are; a network of other inputs gets their mean
        view = "gray" if view == "raw" and gradient.shape[0] not in (1, 3) else view
        picture = gradient_picture(r, gradient_view(gradient, view), view)
        out = {
            "backprop": r.paste(shown, picture, placed),
            "backprop_mode": o["backprop"],
            "backprop_rule_count": passed.rule_count,
        }
        if o["backprop"] == "deconv":
            with torch.inference_mode(False):  # found once per model and layer, by two backward passes
                out["backprop_sees_the_image"] = deconvolution_sees_the_input(
                    ctx.engine.model, ctx.layer.path, ctx.engine.layers[0].shape, ctx.layer.shape
                )
        if ctx.with_arrays:
            out["backprop_gradient"] = gradient.float()
        return out

    def finish(self, host, ctx):
        return TargetExplanations.finish(host, ctx) if "explained_task" in host else dict(host)

    def summary(self, values):
        if "explained_method" in values:
            keys = ("method", "layer", "index", "iou", "score")
            return {"explained": {key: values.get(f"explained_{key}") for key in keys}}
        return {"backprop_rule_count": values.get("backprop_rule_count"), "gradcam_class": values.get("backprop_class")}

    def report(self, values, engine):
        mode = values.get("backprop_mode")
        if mode in ("deconv", "guided") and values.get("backprop_rule_count") == 0:
            return [f"note: no ReLU in {engine.name} (GELU and the like): {mode} is the plain gradient here"]
        return []
