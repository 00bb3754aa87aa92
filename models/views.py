"""Views as producers: each view says what it needs from a forward pass and draws from it.

A view is one object with a name. `layers` names the layers it needs captured (the pipeline runs ONE
forward over the union of what the active views need), `render` draws on the device from that forward
result and returns device arrays keyed by name (its picture under its own name), and `finish` turns
what came back to the host into plain values (a peak, the top-5). Adding a view is one producer here
(`register_view`) and one pane in the app, keyed by the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from livevis.geometry import grid_layout, row_layout

from .attribution import BackwardRequest, deconvolution_sees_the_input, gradient_view, render_gradient
from .concepts.dataset import check_layer, concept_set_at
from .concepts.head import classifier_head, concept_classes, feeds_head, head_layer
from .concepts.live import ConceptTracker
from .concepts.nmf import like, min_shifted, top_indices
from .concepts.summary import TOP_CHANNELS, ConceptsSummary, summarise
from .engine import CropRect, ForwardResult
from .errors import LivevisError
from .layers import LayerInfo
from .render.base import CONCEPT_PALETTE, Renderer, crop_box, locate_peak

if TYPE_CHECKING:
    from .engine import Engine
    from .pipeline import ViewOptions


GRADCAM_COLORMAP = "inferno"
GRADCAM_OPACITY = 0.6
"""Grad-CAM's heat map covers the crop at this share of the overlay's opacity (0.48 at the default 0.8)."""


def scale_crop(crop: CropRect, sx: float, sy: float) -> tuple[int, int, int, int]:
    """The crop in the pixels of a frame shrunk by (sx, sy)."""
    x, y = round(crop.x * sx), round(crop.y * sy)
    return (x, y, max(1, round((crop.x + crop.w) * sx) - x), max(1, round((crop.y + crop.h) * sy) - y))


@dataclass
class RenderContext:
    """One forward result and the options, with the steps several views share computed once, lazily:
    the grid, the overlay and the zoomed tile all start from the same maps and statistics."""

    renderer: Renderer
    result: ForwardResult
    layer: LayerInfo
    options: ViewOptions
    with_arrays: bool = False
    engine: Engine | None = None
    """The model the result came from (for what a view must find out about it once)."""
    """Views also hand back their raw numbers (for saving), not only their pictures."""
    engine: Engine | None = None
    shared: dict = field(default_factory=dict)
    """Work two views share for one frame (a transformer's attention feeds its grid and its overlay), by name."""
    memory: dict = field(default_factory=dict)
    """What a view keeps from one frame to the next of the same pipeline (the concepts' last factors)."""

    @cached_property
    def maps(self):
        """The selected layer as (C, N) maps in the renderer's arrays, and the (h, w) tile of a channel."""
        r = self.renderer
        return r.maps_of(r.asarray(self.result.activations[self.layer.path]))

    @cached_property
    def stats(self):
        """Per-channel minimum, maximum and mean of the selected layer."""
        return self.renderer.channel_stats(self.maps[0])

    @cached_property
    def shown_frame(self):
        """The frame at the size the window shows it, and the network's crop in its pixels."""
        r, o, frame = self.renderer, self.options, self.frame
        shown = frame if o.display_size is None else r.fit_within(frame, *o.display_size)
        return shown, scale_crop(self.result.crop, shown.shape[1] / frame.shape[1], shown.shape[0] / frame.shape[0])

    @cached_property
    def selected_levels(self):
        """The selected channel's (h, w) levels, on its own scale."""
        (maps, tile), (low, high, _) = self.maps, self.stats
        c = slice(self.options.channel, self.options.channel + 1)
        levels = self.renderer.levels(maps[c], low[c], high[c], self.options.colormap, per_channel=True)
        return self.renderer.as_tiles(levels, tile)[0]

    @cached_property
    def peak_index(self):
        return self.renderer.peak_index(self.maps[0], self.options.channel)

    @cached_property
    def frame(self):
        return self.renderer.asarray(self.result.frame)


@dataclass(frozen=True)
class HostContext:
    """What `finish` may use: the layer, the options, the crop and the engine's labels."""

    engine: Engine
    layer: LayerInfo
    options: ViewOptions
    crop: CropRect


class View:
    """A producer of one named picture (or of plain values) per frame."""

    name: str = ""
    saved: bool = True
    """Written by snapshots and `render` (a view that only serves the screen says False)."""

    def layers(self, layer: LayerInfo, options: ViewOptions) -> set[str]:
        """The layer paths this view needs captured besides the selected layer, which every pass captures."""
        return set()

    def inputs(self, engine: Engine, layer: LayerInfo, options: ViewOptions) -> set[str]:
        """Modules whose call arguments this view needs kept (a transformer's attention modules)."""
        return set()

    def backward(self, layer: LayerInfo, options: ViewOptions) -> BackwardRequest | None:
        """What this view needs backpropagated in the same pass (one view at most asks)."""
        return None

    def render(self, ctx: RenderContext) -> dict[str, Any]:
        """Device arrays (or host numbers) keyed by name; the picture under `self.name`."""
        return {}

    def finish(self, host: Mapping[str, np.ndarray], ctx: HostContext) -> dict[str, Any]:
        """Plain values made from what came back to the host."""
        return {}


class GridView(View):
    """Every channel of the layer as a heatmap tile, on the scale the options ask for."""

    name = "grid"

    def render(self, ctx):
        r, o = ctx.renderer, ctx.options
        (maps, tile), (low, high, mean) = ctx.maps, ctx.stats
        levels = r.levels(maps, low, high, o.colormap, per_channel=o.norm == "channel", boost=o.boost)
        layout = grid_layout(maps.shape[0], *tile, o.grid_aspect, o.grid_scale)
        return {
            self.name: r.grid_image(levels, tile, layout, o.colormap, o.gamma),
            "grid_layout": layout,
            "channel_max": high,
            "channel_mean": mean,
        }


class OverlayView(View):
    """The selected channel upsampled onto the frame at the network's crop, its peak ringed. Shown smaller
    than the frame, it is blended at the size shown: shrink, then blend (only the pixels shown)."""

    name = "overlay"

    def render(self, ctx):
        r, o = ctx.renderer, ctx.options
        shown, placed = ctx.shown_frame
        overlay = r.render_overlay(
            shown,
            ctx.selected_levels,
            placed,
            o.colormap,
            mode=o.overlay_mode,
            opacity=o.opacity,
            gamma=o.gamma,
            peak_index=ctx.peak_index,
        )
        return {self.name: overlay}


class ChannelTileView(View):
    """The selected channel coloured at its own resolution (a zoomed view scales it up)."""

    name = "channel_tile"

    def render(self, ctx):
        return {self.name: ctx.renderer.colorize(ctx.selected_levels, ctx.options.colormap, ctx.options.gamma)}


class SignedInputView(View):
    """The exact normalised network input, one tile per input channel, in the signed colormap."""

    name = "input_signed"

    def render(self, ctx):
        r = ctx.renderer
        return {self.name: r.signed_input(r.asarray(ctx.result.input[0]))}


class PeakView(View):
    """Where the selected channel peaks, in map cells and in frame pixels."""

    name = "peak"
    saved = False

    def render(self, ctx):
        (maps, tile), c = ctx.maps, ctx.options.channel
        # the selected channel's raw values (a few hundred numbers): a window shows them under the mouse
        spatial = maps.shape[1] == tile[0] * tile[1]
        return {
            "peak_index": ctx.peak_index,
            "channel_max": ctx.stats[1],
            "peak_tile": tile,
            "channel_map": maps[c].reshape(tile if spatial else (1, 1)),
        }

    def finish(self, host, ctx):
        value = float(host["channel_max"][ctx.options.channel])
        return {self.name: locate_peak(int(host["peak_index"]), value, host["peak_tile"], crop_box(ctx.crop))}


class PredictionsView(View):
    """The top-5 classes, from the logits of the same forward pass."""

    name = "predictions"
    saved = False

    def render(self, ctx):
        return {"logits": ctx.result.logits[0]}

    def finish(self, host, ctx):
        return {"top5": ctx.engine.top_k(host["logits"])}


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


class BackpropView(View):
    """What drives the selected unit (its input gradient under the chosen ReLU rule, drawn at the crop the
    network saw, on the frame), or Grad-CAM of a class at the layer, upsampled onto the frame."""

    name = "backprop"

    def backward(self, layer, options):
        if options.backprop == "off":
            return None
        explained = options.gradcam_layer if options.backprop == "gradcam" and options.gradcam_layer else layer.path
        return BackwardRequest(options.backprop, explained, options.channel, options.class_index)

    def render(self, ctx):
        passed = ctx.result.backward
        if passed is None:
            return {}
        r, o = ctx.renderer, ctx.options
        shown, placed = ctx.shown_frame
        if passed.cam is not None:
            cam = passed.cam.cam[0]
            maps = r.asarray(cam.reshape(1, -1))
            _, high, _ = r.channel_stats(maps)
            # 0 is black, the frame's largest value the top colour, every cell at the same opacity: a class
            # weakly seen reads as a dim, not vanishing, map
            levels = r.levels(maps, high * 0, high, GRADCAM_COLORMAP, per_channel=True).reshape(cam.shape)
            picture = r.render_overlay(
                shown, levels, placed, GRADCAM_COLORMAP, mode="heatmap", opacity=GRADCAM_OPACITY * o.opacity
            )
            out = {
                self.name: picture,
                "backprop_class": int(passed.cam.class_index[0]),
                "gradcam_layer": o.gradcam_layer or ctx.layer.path,
            }
            if ctx.with_arrays:
                out["gradcam_map"] = cam.float()
            return out
        gradient = passed.gradient[0]
        # raw shows 1 or 3 input channels as they are; a network of other inputs gets their mean
        view = "gray" if o.backprop_view == "raw" and gradient.shape[0] not in (1, 3) else o.backprop_view
        picture = gradient_picture(r, gradient_view(gradient, view), view)
        out = {self.name: r.paste(shown, picture, placed), "backprop_rule_count": passed.rule_count}
        if o.backprop == "deconv" and ctx.engine is not None:
            with torch.inference_mode(False):  # found once per model and layer, by two backward passes
                out["backprop_sees_the_image"] = deconvolution_sees_the_input(
                    ctx.engine.model, ctx.layer.path, ctx.engine.layers[0].shape, ctx.layer.shape
                )
        if ctx.with_arrays:
            out["backprop_gradient"] = gradient.float()
        return out


class NetworkView(View):
    """The network overview: every channel of each layer asked for (the rows a window has in sight), one
    signed scale per layer, as the course notes draw a network. Only those rows are computed."""

    name = "network"
    saved = False

    def layers(self, layer, options):
        return set(options.network_rows)

    def render(self, ctx):
        r, out = ctx.renderer, {}
        layouts = {}
        for path in ctx.options.network_rows:
            activation = ctx.result.activations[path]
            maps, tile = r.maps_of(r.asarray(activation))
            low, high, _ = r.channel_stats(maps)
            layout = row_layout(tuple(activation.shape))
            out[f"network_row:{path}"] = r.grid_image(r.levels(maps, low, high, "signed"), tile, layout, "signed")
            layouts[path] = layout
        out["network_layouts"] = layouts
        return out

    def finish(self, host, ctx):
        layouts = host.get("network_layouts", {})
        return {"network_rows": {path: (host[f"network_row:{path}"], layout) for path, layout in layouts.items()}}


_PALETTE = CONCEPT_PALETTE.astype(np.float32)


class ConceptsView(View):
    """The layer cut into a few concepts (NMF of its min-shifted maps), drawn on the frame as a coloured
    segmentation, each concept with its top channels' tiles and, where the layer feeds the classifier
    directly, its top classes. Each frame's own concepts start from the last frame's and keep their colours;
    concepts fitted on a folder (`concept_set`) are fixed and only placed on each frame."""

    name = "concepts"

    def render(self, ctx):
        r, o, layer = ctx.renderer, ctx.options, ctx.layer
        try:
            check_layer(layer, o.concept_count)
            fixed = concept_set_at(o.concept_set) if o.concept_set else None
            if fixed is not None and fixed.layer != layer.path:
                raise LivevisError(
                    f"the concepts of {fixed.folder.name} were fitted at {fixed.layer_name}: "
                    f"fit them for {layer.name}, or use this frame's"
                )
        except LivevisError as exc:  # said in the pane; the other views go on
            return {"concepts_error": str(exc)}
        maps, tile = ctx.maps
        V, offset = min_shifted(maps)
        tracker = ctx.memory.setdefault(self.name, ConceptTracker())
        found = tracker.update(V, o.concept_count, layer.path, ctx.result, warm=o.concept_warm_start, fixed=fixed)
        channels, k = found.factors.channels, len(found.colours)
        concept_maps = found.factors.maps.reshape(k, *tile)
        shown, placed = ctx.shown_frame
        colours = like(_PALETTE[found.colours], concept_maps)
        top = top_indices(channels, TOP_CHANNELS)
        picked = top.reshape(-1)  # each tile on its own scale: a weak channel's pattern still shows
        low, high, _ = ctx.stats
        levels = r.levels(maps[picked], low[picked], high[picked], o.colormap, per_channel=True)
        tiles = r.colorize(r.as_tiles(levels, tile), o.colormap, o.gamma)
        out = {
            self.name: r.render_concepts(shown, concept_maps, colours, placed, opacity=o.opacity),
            "concept_maps": concept_maps,
            "concept_channels": channels,
            "concept_colours": found.colours,
            "concept_top": top,
            "concept_tiles": tiles,
            "concepts_ms": found.milliseconds,
            "concept_source": "" if fixed is None else str(fixed.folder),
        }
        head = self._head(ctx)
        if head is not None:
            out["concept_class_index"], out["concept_class_probability"] = concept_classes(head, channels, offset)
        return out

    def _head(self, ctx: RenderContext):
        """The classifier's head where this layer feeds it directly (checked once per layer, on a real frame)."""
        heads = ctx.memory.setdefault("concept_heads", {})
        path = ctx.layer.path
        if path not in heads and ctx.engine is not None:
            head = classifier_head(ctx.engine)
            fed = head is not None and feeds_head(ctx.result.activations[path], ctx.result.logits[0], head)
            heads[path] = head if fed else None
        return heads.get(path)

    def finish(self, host, ctx):
        if "concepts_error" in host:
            return {"concepts_summary": ConceptsSummary(error=host["concepts_error"])}
        folder = str(host["concept_source"])
        source = f"fitted on {folder}" if folder else "this frame"
        told = "top channels and crops" if folder else "top channels"
        if "concept_class_index" in host:
            note = "classes: each concept's channel vector through the classifier"
        elif not ctx.engine.is_classifier:
            note = f"told by their {told} (the network is not a classifier)"
        else:
            fed = head_layer(ctx.engine, classifier_head(ctx.engine))
            where = f"only {fed.name} feeds" if fed else "no layer with maps feeds"
            note = f"told by their {told}: {where} the classifier directly, where classes name them"
        return {"concepts_summary": summarise(host, ctx.engine.categories, source, note)}


class FrameDisplayView(View):
    """The frame shrunk to the input pane's size on the device (a GUI then blits it)."""

    name = "frame_display"
    saved = False

    def render(self, ctx):
        size = ctx.options.frame_display_size
        return {} if size is None else {self.name: ctx.renderer.fit_within(ctx.frame, *size)}


VIEWS: dict[str, View] = {}


def register_view(view: View) -> View:
    if not view.name or view.name in VIEWS:
        raise ValueError(f"a view needs a name of its own; {view.name!r} is taken or empty")
    VIEWS[view.name] = view
    return view


for _view in (
    GridView(),
    OverlayView(),
    ChannelTileView(),
    SignedInputView(),
    PeakView(),
    PredictionsView(),
    FrameDisplayView(),
    BackpropView(),
    NetworkView(),
    ConceptsView(),
):
    register_view(_view)

DEFAULT_VIEWS = ("grid", "overlay", "channel_tile", "input_signed", "peak", "predictions", "frame_display", "backprop")
LIVE_VIEWS = ("frame_display", "predictions", "grid", "overlay", "channel_tile", "peak")
"""What the app's Live tab shows (its panes ask for exactly these; the benchmark times the same)."""


def views_named(names: Iterable[str]) -> list[View]:
    from .errors import OptionError

    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        raise OptionError(f"unknown view {unknown[0]!r}; views: {', '.join(VIEWS)}")
    return [VIEWS[name] for name in names]
