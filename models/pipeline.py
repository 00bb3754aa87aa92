"""The live pipeline: one frame in, every view of it out as host uint8 arrays.

Used by the app's inference worker, by `livevis render` and by `livevis bench`, so that what is
benchmarked is what runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from livevis.state import VIEW_DEFAULTS, VIEW_OPTION_NAMES, check_option

from .attribution.backprop import BackwardRequest, map_cell, rank_units_at
from .data.tensors import is_tensor_frame
from .engine import CropRect, Engine, ForwardResult, PreparedFrame
from .errors import ChannelOutOfRangeError, OptionError, OutputError
from .layers import LayerInfo
from .render.base import Renderer, check_colormap
from .render.opencv_renderer import OpenCVRenderer
from .render.torch_renderer import TorchRenderer
from .transformers import views as _transformer_views  # noqa: F401  (registers the transformer views)
from .views import DEFAULT_VIEWS, HostContext, RenderContext, views_named


@dataclass(frozen=True)
class ViewOptions:
    """One render request: what to draw (the views, the layer, the channel) and how, plus the sizes the
    window shows the pictures at. Immutable, so a worker thread can hold it while the GUI makes the next."""

    layer: str | None = None
    """Path or friendly name; None is the model's default layer."""
    channel: int = 0
    colormap: str = VIEW_DEFAULTS["colormap"]
    norm: str = VIEW_DEFAULTS["norm"]
    gamma: float = VIEW_DEFAULTS["gamma"]
    boost: float = VIEW_DEFAULTS["boost"]
    overlay_mode: str = VIEW_DEFAULTS["overlay_mode"]
    opacity: float = VIEW_DEFAULTS["opacity"]
    grid_aspect: float = 1.0
    grid_scale: int = 1
    views: tuple[str, ...] = DEFAULT_VIEWS
    """The views to produce (see `models.views`); one forward serves them all."""
    backprop: str = VIEW_DEFAULTS["backprop"]
    """What the backprop view shows: off, grad, deconv, guided (a unit's input gradient under that ReLU
    rule) or gradcam (of `class_index` at `gradcam_layer`)."""
    gradcam_layer: str | None = None
    """Path or friendly name of the layer Grad-CAM explains the class at; None is the model's last spatial
    layer (`Engine.gradcam_layer`)."""
    backprop_view: str = VIEW_DEFAULTS["backprop_view"]
    class_index: int | None = VIEW_DEFAULTS["class_index"]
    attention: str = VIEW_DEFAULTS["attention"]
    """A transformer's attention view: off, heads (at the selected block) or rollout (up to it)."""
    attention_head: int = VIEW_DEFAULTS["attention_head"]
    attention_query: tuple[int, int] | None = VIEW_DEFAULTS["attention_query"]
    network_rows: tuple[str, ...] = ()
    """The layers the network overview draws (the rows a window has in sight)."""
    display_size: tuple[int, int] | None = None
    """(width, height) the overlay is shown at: the frame is shrunk to fit on the device and the map
    blended at that size, so that a GUI blits it instead of scaling it in paintEvent (where PyQt holds
    the GIL and stalls the worker's Python), and the blend touches only the pixels shown."""
    frame_display_size: tuple[int, int] | None = None
    """Likewise for the input frame, returned as `FrameViews.frame_display`."""
    concept_count: int = VIEW_DEFAULTS["concept_count"]
    """How many concepts the concepts view cuts the layer into (2-12)."""
    concept_set: str = VIEW_DEFAULTS["concept_set"]
    """A file of concepts fitted on a folder to place each frame on; "": each frame's own concepts."""
    concept_warm_start: bool = True
    """Each frame's concepts start from the last frame's (live); False factorises each frame from scratch
    to convergence (one image at a time, as `render` does)."""

    def __post_init__(self):
        check_colormap(self.colormap)
        try:
            for name in (*VIEW_OPTION_NAMES, "channel"):
                check_option(name, getattr(self, name))
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        views_named(self.views)

    def with_(self, **changes) -> ViewOptions:
        return replace(self, **changes)


_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


@dataclass(frozen=True)
class FrameViews:
    """Everything one frame produced, on the host, immutable: safe to hand to another thread.

    `images` holds the pictures of the views asked for, by view name (uint8 HxWx3); `values` the plain
    results (grid layout, channel statistics, peak, top-5, display-only pictures).
    """

    frame: np.ndarray
    images: Mapping[str, np.ndarray]
    values: Mapping[str, Any]
    layer: LayerInfo
    channel: int
    crop: CropRect
    activation: np.ndarray | None = None
    """The layer's raw output, float32 CxHxW or F, when asked for."""
    network_input: np.ndarray | None = None
    """The exact normalised network input, float32 1xCxSxS, when asked for."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    reused_forward: bool = False
    """Drawn from the previous forward pass of the same frame (frozen browsing): no model forward ran."""
    tensor_input: bool = False
    """The frame was a tensor given as the network input (`frame` is then a picture of it)."""

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frame: the pixels `crop` and `peak` are given in."""
        return self.frame.shape[1], self.frame.shape[0]

    def image(self, name: str) -> np.ndarray:
        """A view's picture; an empty image where that view was not asked for."""
        return self.images.get(name, _EMPTY)

    grid = property(lambda self: self.image("grid"))
    overlay = property(lambda self: self.image("overlay"))
    channel_tile = property(lambda self: self.image("channel_tile"))
    input_signed = property(lambda self: self.image("input_signed"))
    grid_layout = property(lambda self: self.values.get("grid_layout"))
    channel_max = property(lambda self: self.values.get("channel_max"))
    channel_mean = property(lambda self: self.values.get("channel_mean"))
    peak = property(lambda self: self.values.get("peak"))
    top5 = property(lambda self: self.values.get("top5", []))
    frame_display = property(lambda self: self.values.get("frame_display"))


def save_activations(path, views: FrameViews) -> None:
    """The layer's output with the exact network input, crop and top-5, as one .npz (no pickles).

    Keys: input (1xCxSxS float32), activation (CxHxW or F float32), layer, channel, crop (x, y, w, h),
    top5_index (int64), top5_prob (float32), and with the backprop view on: backprop (CxSxS float32, the
    gradient with respect to `input`) or gradcam (h x w float32 at the layer's resolution). A transformer
    layer adds prefix_tokens (P x D: class, distillation, registers; `activation` is its patch tokens as
    D x h x w maps), and its attention view: attention (heads x h x w, each head's softmax weight from the
    query token, the class token by default, to every patch token, before any display normalisation) with
    attention_prefix (heads x P), or in rollout attention_rollout (blocks x h x w: the rollout up to each
    block); with the concepts view on: concepts (K x h x w float32) and concept_channels (K x C float32),
    non-negative, with concept_channels.T @ concepts.reshape(K, -1) ~ the activation less each channel's minimum,
    reshaped (C, h*w). `views` must come from `process(..., with_activations=True)`.
    """
    if views.activation is None or views.network_input is None:
        raise ValueError("these views carry no activations: process the frame with with_activations=True")
    arrays = {
        "input": views.network_input,
        "activation": views.activation,
        "layer": np.array(views.layer.path),
        "channel": np.array(views.channel),
        "crop": views.crop.as_array(),
    }
    rollout = views.values.get("attention_mode") == "rollout"
    for key, name in (
        ("backprop_gradient", "backprop"),
        ("gradcam_map", "gradcam"),
        ("prefix_token_values", "prefix_tokens"),
        ("attention_maps", "attention_rollout" if rollout else "attention"),
        ("attention_prefix", "attention_rollout_prefix" if rollout else "attention_prefix"),
        ("concept_maps", "concepts"),
        ("concept_channels", "concept_channels"),
    ):
        if views.values.get(key) is not None:
            arrays[name] = np.asarray(views.values[key], dtype=np.float32)
    if views.top5:
        arrays["top5_index"] = np.array([p.index for p in views.top5], dtype=np.int64)
        arrays["top5_prob"] = np.array([p.probability for p in views.top5], dtype=np.float32)
    try:
        np.savez(path, **arrays)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {exc.strerror or exc}") from None


class Visualizer:
    """An engine plus view options: `process(frame)` runs the whole live pipeline once.

    The forward result of the last frame is kept: asked again for the same frame (`frame_key`, as a
    frozen frame or a still image is), with layers it captured, the views are redrawn without a forward.
    """

    def __init__(self, engine: Engine, options: ViewOptions | None = None):
        self.engine = engine
        self.options = options or ViewOptions()
        self.renderer = renderer_for(engine.device)
        self.layer_info(self.options)  # a wrong layer fails now, not on the first frame
        self.forwards = 0
        """Model forwards run so far (frozen browsing runs none)."""
        self.memory: dict = {}
        """What views keep from frame to frame (see `RenderContext.memory`)."""
        self._last: tuple[object, ForwardResult] | None = None

    def layer_info(self, options: ViewOptions) -> LayerInfo:
        return self.engine.layer(options.layer)

    def check_channel(self, layer: LayerInfo, channel: int) -> None:
        if not 0 <= channel < layer.channels:
            raise ChannelOutOfRangeError(
                f"channel {channel} is out of range: layer {layer.name} has channels 0..{layer.channels - 1}"
            )

    def process(
        self,
        frame: np.ndarray | PreparedFrame,
        options: ViewOptions | None = None,
        *,
        with_activations: bool = False,
        frame_key: object = None,
    ) -> FrameViews:
        """Run the whole pipeline on one RGB uint8 frame (or one `Engine.prepare` made ahead).

        `with_activations` also copies the raw layer output and the network input to the host (for
        saving); the live view does without. `frame_key` names the frame (a capture's sequence number):
        the same key again reuses the last forward pass where it captured what the views need.
        """
        options = options or self.options
        if options.backprop == "gradcam":  # a friendly name, or none, made the layer's path
            gradcam = self.engine.layer(options.gradcam_layer) if options.gradcam_layer else self.engine.gradcam_layer()
            options = options.with_(gradcam_layer=gradcam.path if gradcam is not None else None)
        layer = self.layer_info(options)
        self.check_channel(layer, options.channel)
        views = views_named(options.views)
        needed = {layer.path}.union(*(view.layers(layer, options) for view in views))
        inputs = set().union(*(view.inputs(self.engine, layer, options) for view in views))
        backward = next((r for r in (view.backward(layer, options) for view in views) if r is not None), None)
        clock = _StageClock(self.engine.device)
        result, reused = self._forward(frame, needed, frame_key, clock, backward, inputs)
        context = RenderContext(
            self.renderer, result, layer, options, with_arrays=with_activations, engine=self.engine, memory=self.memory
        )
        produced: dict = {}
        with torch.inference_mode():
            for view in views:
                produced.update(view.render(context))
        if with_activations:
            produced["activation"] = result.activations[layer.path].float()
            produced["network_input"] = result.input.float()
            if layer.path in result.prefix_tokens:
                produced["prefix_token_values"] = result.prefix_tokens[layer.path].float()
        image = frame.image if isinstance(frame, PreparedFrame) else frame
        tensor_input = is_tensor_frame(image)
        if tensor_input:  # the frame views show a picture of it
            produced["tensor_display"] = result.frame
        clock.lap("render")
        host = self._to_host(produced)
        clock.lap("copy")
        finishing = HostContext(self.engine, layer, options, result.crop)
        shown = host.pop("tensor_display") if tensor_input else image
        values = {
            k: v
            for k, v in host.items()
            if k not in ("activation", "network_input") and not k.startswith("network_row:")
        }
        for view in views:
            values.update(view.finish(host, finishing))
        images = {view.name: values.pop(view.name) for view in views if view.saved and view.name in values}
        return FrameViews(
            frame=shown,
            images=images,
            values=values,
            layer=layer,
            channel=options.channel,
            crop=result.crop,
            activation=host.get("activation"),
            network_input=host.get("network_input"),
            timings_ms=clock.laps,
            reused_forward=reused,
            tensor_input=tensor_input,
        )

    def units_at(
        self, frame_xy: tuple[float, float], layer_key: str | None = None, k: int = 10
    ) -> tuple[tuple[int, int], list[tuple[int, float]]] | None:
        """The layer's channels ranked by their activation at the map cell under a frame pixel, from the
        last forward pass (no new one); None outside the crop, or for a layer without spatial maps."""
        if self._last is None:
            return None
        result = self._last[1]
        activation = result.activations.get(self.engine.layer(layer_key).path)
        if activation is None or activation.dim() != 3:
            return None
        cell = map_cell(frame_xy, result.crop, tuple(activation.shape[1:]))
        return None if cell is None else (cell, rank_units_at(activation, *cell, k))

    def _forward(
        self,
        frame: np.ndarray | PreparedFrame,
        needed: set[str],
        frame_key,
        clock,
        backward: BackwardRequest | None,
        inputs: set[str] = frozenset(),
    ) -> tuple[ForwardResult, bool]:
        last = self._last
        if frame_key is not None and last is not None and last[0] == (frame_key, backward):
            if needed <= last[1].activations.keys() and inputs <= last[1].module_inputs.keys():
                clock.lap("preprocess")
                clock.lap("forward")
                return last[1], True
        result = self.engine.run(
            frame, sorted(needed), on_stage=clock.lap, backward=backward, keep_inputs=sorted(inputs)
        )
        if isinstance(frame, PreparedFrame) and result.input is frame.input:  # its preprocess ran ahead
            clock.laps["preprocess"] = frame.milliseconds
        self.forwards += 1
        self._last = ((frame_key, backward), result) if frame_key is not None else None
        return result, False

    def _to_host(self, produced: dict) -> dict:
        """One copy back per tensor; on CUDA through pinned buffers, with a single synchronise.

        Everything else (numpy arrays, numbers, layouts) passes through as it is.
        """
        tensors = {k: v for k, v in produced.items() if isinstance(v, torch.Tensor)}
        host = {k: v for k, v in produced.items() if k not in tensors}
        if self.engine.device.type != "cuda":
            return host | {k: v.cpu().numpy() for k, v in tensors.items()}
        pinned = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True) for k, v in tensors.items()}
        for k, v in tensors.items():
            pinned[k].copy_(v, non_blocking=True)
        torch.cuda.current_stream(self.engine.device).synchronize()
        return host | {k: v.numpy() for k, v in pinned.items()}


def renderer_for(device: torch.device) -> Renderer:
    """numpy and OpenCV on the CPU, where each torch op costs more than its work; torch elsewhere."""
    return OpenCVRenderer() if device.type == "cpu" else TorchRenderer()


class _StageClock:
    """Per-stage wall times; synchronises CUDA so a stage's time is its own."""

    def __init__(self, device: torch.device):
        self._cuda = device.type == "cuda"
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        if self._cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.laps[name] = (now - self._last) * 1000.0
        self._last = now
