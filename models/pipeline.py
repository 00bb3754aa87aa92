"""The live pipeline: one frame in, every view asked for out as host uint8 pictures and plain values.

Used by the app's inference worker, by `livevis render` and by `livevis bench`, so that what is
benchmarked is what runs. Views are known here only by their declarations (`livevis.views`): what each
needs from the forward pass, what it draws, what it saves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from livevis import views as declared
from livevis.state import DRAWING_DEFAULTS, check_option

from .attribution.backprop import BackwardRequest, map_cell, rank_units_at
from .data.tensors import is_tensor_frame
from .engine import CropRect, Engine, ForwardResult, PreparedFrame
from .errors import ChannelOutOfRangeError, OptionError, OutputError
from .interventions import Edit, SeenMeans
from .layers import LayerInfo
from .producer import HostContext, Producer, RenderContext
from .render.base import Renderer, check_colormap
from .render.opencv_renderer import OpenCVRenderer
from .render.torch_renderer import TorchRenderer


def rendered_views() -> tuple[str, ...]:
    """The views `render` draws unless told otherwise."""
    return tuple(name for name, spec in declared.all_views().items() if spec.rendered)


@dataclass(frozen=True, init=False)
class ViewOptions:
    """One render request: what to draw (the views, the layer, the channel) and how, plus the sizes the
    window shows the pictures at. Immutable, so a worker thread can hold it while the GUI makes the next.

    Besides these fields it carries each view's options (`settings`), given by name like the fields:
    ``ViewOptions(views=("backprop",), backprop="guided")``; read one as ``options["backprop"]`` (its declared
    default where it was not given). Every value is checked as the request is made."""

    layer: str | None = None
    """Path or friendly name; None is the model's default layer."""
    channel: int = 0
    colormap: str = DRAWING_DEFAULTS["colormap"]
    norm: str = DRAWING_DEFAULTS["norm"]
    gamma: float = DRAWING_DEFAULTS["gamma"]
    boost: float = DRAWING_DEFAULTS["boost"]
    overlay_mode: str = DRAWING_DEFAULTS["overlay_mode"]
    opacity: float = DRAWING_DEFAULTS["opacity"]
    class_index: int | None = DRAWING_DEFAULTS["class_index"]
    """The class the explanations explain; None: each frame's top-1."""
    grid_size: tuple[int, int] | None = None
    """(width, height) the grid is shown at: its tiles are laid out and drawn to fill it (the window's grid
    pane). None: a near-square grid, each map cell `grid_scale` pixels (`render`)."""
    grid_scale: int = 1
    views: tuple[str, ...] = ()
    """The views to produce (see `livevis.views`); empty: those `render` draws by default. One forward
    serves them all."""
    display_size: tuple[int, int] | None = None
    """(width, height) the pictures on the frame are shown at: the frame is shrunk to fit on the device and
    the maps blended at that size, so that a GUI blits it instead of scaling it in paintEvent (where PyQt
    holds the GIL and stalls the worker's Python), and the blend touches only the pixels shown."""
    edits: tuple[Edit, ...] = ()
    """Units switched off, set to their means or scaled, directions taken out (`models.interventions`): the
    forward runs with them, and every view after an edited layer shows the edited network."""
    compare: bool = False
    """With edits: the network without them runs too, so the predictions show both (`top5_unedited`)."""
    sequence: bool = True
    """The frames follow each other (a camera, a video): a view may carry what it found from one frame to the
    next (the concepts). False: each frame is an image of its own, drawn from scratch."""
    settings: tuple[tuple[str, Any], ...] = ()
    """The views' options given, by name (sorted)."""

    def __init__(self, **values: Any):
        own = {f.name for f in fields(ViewOptions)}
        settings = dict(values.pop("settings", ()))
        for name, value in values.items():
            if name in own:
                object.__setattr__(self, name, value)
            else:
                settings[name] = value
        if not self.views:
            object.__setattr__(self, "views", rendered_views())
        object.__setattr__(self, "settings", tuple(sorted(settings.items())))
        self._check()

    def _check(self) -> None:
        check_colormap(self.colormap)
        try:
            for name in (*DRAWING_DEFAULTS, "channel"):
                check_option(name, getattr(self, name))
            for name in self.views:
                declared.view(name)
            known = declared.options()
            for name, value in self.settings:
                if name not in known:
                    raise ValueError(f"no view takes the option {name!r}")
                known[name].check_value(value)
        except ValueError as exc:
            raise OptionError(str(exc)) from None

    def __getitem__(self, name: str) -> Any:
        """A view's option: as given, else as its view declares it."""
        for key, value in self.settings:
            if key == name:
                return value
        option = declared.option(name)
        if option is None:
            raise KeyError(f"no view takes the option {name!r}")
        return option.default

    def with_(self, **changes) -> ViewOptions:
        own = {f.name for f in fields(ViewOptions)}
        settings = dict(self.settings) | {k: v for k, v in changes.items() if k not in own}
        return replace(self, settings=tuple(settings.items()), **{k: v for k, v in changes.items() if k in own})


_EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


@dataclass(frozen=True)
class FrameViews:
    """Everything one frame produced, on the host, immutable: safe to hand to another thread.

    `images` holds the pictures of the views asked for, by picture name (uint8 HxWx3: grid, overlay, ...);
    `values` the plain results (a grid's layout, the peak, the top-5, display-only pictures), by name.
    """

    frame: np.ndarray
    images: Mapping[str, np.ndarray]
    values: Mapping[str, Any]
    layer: LayerInfo
    channel: int
    crop: CropRect
    views: tuple[str, ...] = ()
    """The views that were asked for."""
    drawn: tuple[str, ...] = ()
    """Those that gave anything for this frame (a transformer's views give nothing for other networks)."""
    activation: np.ndarray | None = None
    """The layer's raw output, float32 CxHxW or F, when asked for: as measured in the network without edits."""
    activation_edited: np.ndarray | None = None
    """The same in the edited network, where the layer lies after an edited one."""
    network_input: np.ndarray | None = None
    """The exact normalised network input, float32 1xCxSxS, when asked for."""
    prefix_tokens: np.ndarray | None = None
    """A transformer layer's prefix tokens (P x D: class, distillation, registers), when asked for."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    reused_forward: bool = False
    """Drawn from the previous forward pass of the same frame (frozen browsing): no model forward ran."""
    tensor_input: bool = False
    """The frame was a tensor given as the network input (`frame` is then a picture of it)."""
    cropped: bool = True
    """The network saw a crop of the frame (`crop`); a detector or a segmenter sees the whole frame."""

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frame: the pixels `crop` and `peak` are given in."""
        return self.frame.shape[1], self.frame.shape[0]

    def image(self, name: str) -> np.ndarray:
        """A picture; an empty image where no view asked for drew it."""
        return self.images.get(name, _EMPTY)


def save_activations(path, views: FrameViews) -> None:
    """The layer's output with the exact network input and crop, and what each view saves, as one .npz
    (no pickles).

    Keys: input (1xCxSxS float32), activation (CxHxW or F float32), layer, channel, crop (x, y, w, h; none for a
    detector or a segmenter, which see the whole frame); a
    transformer layer adds prefix_tokens (P x D: class, distillation, registers; `activation` is then its patch
    tokens as D x h x w maps); and each view asked for its `arrays` (its declaration in `livevis.views` says
    which: top5_index and top5_prob, backprop or gradcam, attention, concepts, ...), float32 where they are
    not integers. `views` must come from `process(..., with_activations=True)`.
    """
    if views.activation is None or views.network_input is None:
        raise ValueError("these views carry no activations: process the frame with with_activations=True")
    arrays = {
        "input": views.network_input,
        "activation": views.activation,
        "layer": np.array(views.layer.path),
        "channel": np.array(views.channel),
    }
    if views.cropped:
        arrays["crop"] = views.crop.as_array()
    if views.prefix_tokens is not None:
        arrays["prefix_tokens"] = views.prefix_tokens
    if views.activation_edited is not None:
        arrays["activation_edited"] = views.activation_edited
    for name in views.views:
        for value, key in declared.view(name).arrays:
            found = views.values.get(value)
            if found is not None:
                integer = isinstance(found, np.ndarray) and np.issubdtype(found.dtype, np.integer)
                arrays[key] = found if integer else np.asarray(found, dtype=np.float32)
    try:
        np.savez(path, **arrays)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {exc.strerror or exc}") from None


_LAYER = " layer"
"""What the pipeline itself brings back beside the views (the layer's raw output, the network input), under a
name no view can have."""


def producers_of(names: Iterable[str]) -> dict[str, Producer]:
    """A new producer for each view named (a producer may keep what it found on one frame for the next)."""
    return {name: declared.resolve(declared.view(name).producer)() for name in names}


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
        self._producers: dict[str, Producer] = {}
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
        layer = self.layer_info(options)
        self.check_channel(layer, options.channel)
        producers = self._producers_for(options.views)
        # asked first: a producer may learn there which of the engine's layers it needs
        asked = [p.backward(self.engine, layer, options) for p in producers.values()]
        backward = next((request for request in asked if request is not None), None)
        needed = {layer.path}.union(*(p.layers(layer, options) for p in producers.values()))
        inputs = set().union(*(p.inputs(self.engine, layer, options) for p in producers.values()))
        clock = _StageClock(self.engine.device)
        with self.engine.edited(options.edits, self.memory.setdefault("seen_means", SeenMeans())):
            result, reused = self._forward(frame, needed, frame_key, clock, backward, inputs, options.edits)
        unedited = self._unedited(result, layer, options, with_activations)
        if unedited is not None:
            clock.lap("forward without the edits")
        image = frame.image if isinstance(frame, PreparedFrame) else frame
        tensor_input = is_tensor_frame(image)
        context = RenderContext(
            self.renderer,
            result,
            layer,
            options,
            self.engine,
            with_arrays=with_activations,
            tensor_input=tensor_input,
            memory=self.memory,
            unedited=unedited,
        )
        with torch.inference_mode():
            produced: dict[str, Any] = {name: p.render(context) for name, p in producers.items()}
        if with_activations:
            produced[_LAYER] = {
                "activation": result.activations[layer.path].float(),
                "network_input": result.input.float(),
                "prefix_tokens": result.prefix_tokens.get(layer.path),
            }
            if unedited is not None and layer.path in unedited.activations:  # the layer lies after an edit
                produced[_LAYER] |= {
                    "activation": unedited.activations[layer.path].float(),
                    "activation_edited": result.activations[layer.path].float(),
                }
        if tensor_input:  # the views of the frame show a picture of it
            produced[_LAYER] = {**produced.get(_LAYER, {}), "tensor_display": result.frame}
        clock.lap("render")
        host = self._to_host(produced)
        clock.lap("copy")
        finishing = HostContext(self.engine, layer, options, result.crop)
        images, values, drawn = {}, {}, []
        for name, producer in producers.items():
            if not host[name]:
                continue  # nothing to draw here (a transformer's view of another network)
            drawn.append(name)
            made = producer.finish(host[name], finishing)
            for picture in declared.view(name).pictures:
                if made.get(picture) is not None:
                    images[picture] = made.pop(picture)
            values.update(made)
        own = host.get(_LAYER, {})
        return FrameViews(
            frame=own["tensor_display"] if tensor_input else image,
            images=images,
            values=values,
            layer=layer,
            channel=options.channel,
            crop=result.crop,
            views=tuple(producers),
            drawn=tuple(drawn),
            activation=own.get("activation"),
            network_input=own.get("network_input"),
            activation_edited=own.get("activation_edited"),
            prefix_tokens=own.get("prefix_tokens"),
            timings_ms=clock.laps,
            reused_forward=reused,
            tensor_input=tensor_input,
            cropped=not self.engine.whole_frame,
        )

    def producer(self, name: str) -> Producer:
        """The producer of a view, as this pipeline runs it."""
        return self._producers_for((name,))[name]

    def check(self, options: ViewOptions) -> None:
        """Raises `OptionError` where a view asked for cannot draw what it was asked (concepts of a layer
        without maps, a query outside the patch grid): a command stops there, with one line; the window's
        panes say it instead."""
        layer = self.layer_info(options)
        for producer in self._producers_for(options.views).values():
            producer.check(self.engine, layer, options)

    def _producers_for(self, names: Iterable[str]) -> dict[str, Producer]:
        """The producers of the views named, in that order, each made once per pipeline."""
        missing = [name for name in names if name not in self._producers]
        self._producers.update(producers_of(missing))
        return {name: self._producers[name] for name in names}

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

    def _unedited(self, result: ForwardResult, layer: LayerInfo, options: ViewOptions, saving: bool):
        """The same input through the network without its edits, where the predictions compare the two or the
        selected layer (after an edited one) is saved both ways: its logits, and the layer as measured there."""
        if not options.edits or not (options.compare or saving):
            return None
        after = any(self.engine.runs_after(layer.path, self.engine.layer(e.layer).path) for e in options.edits)
        return self.engine.run(
            PreparedFrame(result.frame, result.frame, result.input, result.crop, self.engine, 0.0),
            [layer.path] if after else [],
        )

    def _forward(
        self,
        frame: np.ndarray | PreparedFrame,
        needed: set[str],
        frame_key,
        clock,
        backward: BackwardRequest | None,
        inputs: set[str] = frozenset(),
        edits: tuple = (),
    ) -> tuple[ForwardResult, bool]:
        last = self._last
        if frame_key is not None and last is not None and last[0] == (frame_key, backward, edits):
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
        self._last = ((frame_key, backward, edits), result) if frame_key is not None else None
        return result, False

    def _to_host(self, produced: dict[str, dict]) -> dict[str, dict]:
        """Each view's outputs with every tensor copied back once; on CUDA through pinned buffers, with a
        single synchronise. Everything else (numpy arrays, numbers, layouts) passes through as it is."""
        tensors = {(v, k): x for v, made in produced.items() for k, x in made.items() if isinstance(x, torch.Tensor)}
        if self.engine.device.type != "cuda":
            copied = {key: x.cpu().numpy() for key, x in tensors.items()}
        else:
            pinned = {key: torch.empty(x.shape, dtype=x.dtype, pin_memory=True) for key, x in tensors.items()}
            for key, x in tensors.items():
                pinned[key].copy_(x, non_blocking=True)
            torch.cuda.current_stream(self.engine.device).synchronize()
            copied = {key: x.numpy() for key, x in pinned.items()}
        return {v: {k: copied.get((v, k), x) for k, x in made.items()} for v, made in produced.items()}


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
