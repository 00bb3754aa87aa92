"""The live pipeline: one frame in, every view of it out as host uint8 arrays.

Used by the app's inference worker, by `livevis render` and by `livevis bench`, so that what is
benchmarked is what runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from .engine import CropRect, Engine, ForwardResult, Prediction
from .errors import ChannelOutOfRangeError, OptionError, OutputError
from .layers import LayerInfo
from .render import (
    GridLayout,
    MapPeak,
    Renderer,
    TorchRenderer,
    check_colormap,
    grid_layout,
    locate_peak,
)
from .render_opencv import OpenCVRenderer

OVERLAY_MODES = ("overlay", "mask")
NORMALIZATIONS = ("layer", "channel")


@dataclass(frozen=True)
class ViewOptions:
    """How to draw: everything a user can change without touching the model."""

    layer: str | None = None
    """Path or friendly name; None is the model's default layer."""
    channel: int = 0
    colormap: str = "signed"
    norm: str = "layer"
    gamma: float = 1.0
    boost: float = 0.0
    overlay_mode: str = "overlay"
    opacity: float = 0.8
    grid_aspect: float = 1.0
    grid_scale: int = 1
    signed_input: bool = True
    """Also render the normalised network input; the benchmark's live pipeline leaves it out."""
    display_size: tuple[int, int] | None = None
    """(width, height) the overlay is shown at: the frame is shrunk to fit on the device and the map
    blended at that size, so that a GUI blits it instead of scaling it in paintEvent (where PyQt holds
    the GIL and stalls the worker's Python), and the blend touches only the pixels shown."""
    frame_display_size: tuple[int, int] | None = None
    """Likewise for the input frame, returned as `FrameViews.frame_display`."""

    def __post_init__(self):
        check_colormap(self.colormap)
        if self.norm not in NORMALIZATIONS:
            raise OptionError(f"unknown normalisation {self.norm!r}; use layer or channel")
        if self.overlay_mode not in OVERLAY_MODES:
            raise OptionError(f"unknown overlay mode {self.overlay_mode!r}; use overlay or mask")
        if not self.gamma > 0:
            raise OptionError(f"gamma must be above 0, got {self.gamma}")
        if not 0 <= self.boost <= 1:
            raise OptionError(f"boost must lie in [0, 1], got {self.boost}")
        if not 0 <= self.opacity <= 1:
            raise OptionError(f"opacity must lie in [0, 1], got {self.opacity}")

    def with_(self, **changes) -> ViewOptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class FrameViews:
    """Everything one frame produced, on the host, immutable: safe to hand to another thread."""

    frame: np.ndarray
    grid: np.ndarray
    grid_layout: GridLayout
    overlay: np.ndarray
    channel_tile: np.ndarray
    """The selected channel coloured at its own resolution (a zoomed view scales it up)."""
    input_signed: np.ndarray
    layer: LayerInfo
    channel: int
    channel_max: np.ndarray
    channel_mean: np.ndarray
    peak: MapPeak
    crop: CropRect
    top5: list[Prediction]
    frame_display: np.ndarray | None = None
    """The frame shrunk to fit `frame_display_size`, when one is set."""
    activation: np.ndarray | None = None
    """The layer's raw output, float32 CxHxW or F, when asked for."""
    network_input: np.ndarray | None = None
    """The exact normalised network input, float32 1xCxSxS, when asked for."""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frame: the pixels `crop` and `peak` are given in."""
        return self.frame.shape[1], self.frame.shape[0]


def output_folder(folder: str | Path) -> Path:
    """`folder`, created where missing; an `OutputError` saying why where it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}; choose another") from None
    return folder


def save_images(folder: Path, images: dict[str, np.ndarray]) -> None:
    """RGB uint8 images as `folder/NAME.png`; empty ones (a view not rendered) are skipped."""
    for name, image in images.items():
        path = folder / f"{name}.png"
        if image.size and not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"could not write {path}: is the folder writable, and is the disk full?")


def save_activations(path, views: FrameViews) -> None:
    """The layer's output with the exact network input, crop and top-5, as one .npz (no pickles).

    Keys: input (1xCxSxS float32), activation (CxHxW or F float32), layer, channel, crop (x, y, w, h),
    top5_index (int64), top5_prob (float32). `views` must come from `process(..., with_activations=True)`.
    """
    if views.activation is None or views.network_input is None:
        raise ValueError("these views carry no activations: process the frame with with_activations=True")
    arrays = {
        "input": views.network_input,
        "activation": views.activation,
        "layer": np.array(views.layer.path),
        "channel": np.array(views.channel),
        "crop": views.crop.as_array(),
        "top5_index": np.array([p.index for p in views.top5], dtype=np.int64),
        "top5_prob": np.array([p.probability for p in views.top5], dtype=np.float32),
    }
    try:
        np.savez(path, **arrays)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {exc.strerror or exc}") from None


class Visualizer:
    """An engine plus view options: `process(frame)` runs the whole live pipeline once."""

    def __init__(self, engine: Engine, options: ViewOptions | None = None):
        self.engine = engine
        self.options = options or ViewOptions()
        self.renderer = renderer_for(engine.device)
        self.layer_info(self.options)  # a wrong layer fails now, not on the first frame

    def layer_info(self, options: ViewOptions) -> LayerInfo:
        return self.engine.layer(options.layer)

    def check_channel(self, layer: LayerInfo, channel: int) -> None:
        if not 0 <= channel < layer.channels:
            raise ChannelOutOfRangeError(
                f"channel {channel} is out of range: layer {layer.name} has channels 0..{layer.channels - 1}"
            )

    def process(
        self, frame: np.ndarray, options: ViewOptions | None = None, *, with_activations: bool = False
    ) -> FrameViews:
        """Run the whole pipeline on one RGB uint8 frame.

        `with_activations` also copies the raw layer output and the network input to the host (for
        saving); the live view does without.
        """
        options = options or self.options
        layer = self.layer_info(options)
        self.check_channel(layer, options.channel)
        clock = _StageClock(self.engine.device)
        result = self.engine.run(frame, [layer.path], on_stage=clock.lap)
        views = self.render(result, layer, options)
        views["logits"] = result.logits[0]
        if with_activations:
            views["activation"] = result.activations[layer.path].float()
            views["network_input"] = result.input.float()
        clock.lap("render")
        host = self._to_host(views)
        clock.lap("copy")
        peak_index = int(host["peak_index"])
        return FrameViews(
            frame=frame,
            grid=host["grid"],
            grid_layout=views["grid_layout"],
            overlay=host["overlay"],
            channel_tile=host["channel_tile"],
            input_signed=host["input_signed"],
            layer=layer,
            channel=options.channel,
            channel_max=host["channel_max"],
            channel_mean=host["channel_mean"],
            peak=locate_peak(
                peak_index,
                float(host["channel_max"][options.channel]),
                host["channel_tile"].shape[:2],
                _crop_tuple(result.crop),
            ),
            crop=result.crop,
            top5=self.engine.top_k(host["logits"]),
            frame_display=host.get("frame_display"),
            activation=host.get("activation"),
            network_input=host.get("network_input"),
            timings_ms=clock.laps,
        )

    @torch.inference_mode()
    def render(self, result: ForwardResult, layer: LayerInfo, options: ViewOptions) -> dict:
        """Every view of the layer on the device; the renderer's arrays plus the grid layout.

        The grid shows the layer on the scale the options ask for; the zoomed tile and the overlay
        show the selected channel on its own scale. One pass of statistics serves them all.
        """
        r = self.renderer
        maps, tile = r.maps_of(r.asarray(result.activations[layer.path]))
        low, high, mean = r.channel_stats(maps)
        levels = r.levels(maps, low, high, options.colormap, per_channel=options.norm == "channel", boost=options.boost)
        layout = grid_layout(maps.shape[0], *tile, options.grid_aspect, options.grid_scale)
        channel = slice(options.channel, options.channel + 1)
        selected = r.levels(maps[channel], low[channel], high[channel], options.colormap, per_channel=True)
        selected = r.as_tiles(selected, tile)[0]
        peak_index = r.peak_index(maps, options.channel)
        frame = r.asarray(result.frame)
        # Shown smaller than the frame, the overlay is blended at the size shown: shrink, then blend.
        shown = frame if options.display_size is None else r.fit_within(frame, *options.display_size)
        overlay = r.render_overlay(
            shown,
            selected,
            _scale_crop(result.crop, shown.shape[1] / frame.shape[1], shown.shape[0] / frame.shape[0]),
            options.colormap,
            mode=options.overlay_mode,
            opacity=options.opacity,
            gamma=options.gamma,
            peak_index=peak_index,
        )
        views = {
            "grid": r.grid_image(levels, tile, layout, options.colormap, options.gamma),
            "grid_layout": layout,
            "overlay": overlay,
            "channel_tile": r.colorize(selected, options.colormap, options.gamma),
            "input_signed": r.signed_input(r.asarray(result.input[0])) if options.signed_input else _NO_IMAGE,
            "channel_max": high,
            "channel_mean": mean,
            "peak_index": peak_index,
        }
        if options.frame_display_size is not None:
            views["frame_display"] = r.fit_within(frame, *options.frame_display_size)
        return views

    def _to_host(self, views: dict) -> dict[str, np.ndarray]:
        """One copy back per view; on CUDA through pinned buffers, with a single synchronise.

        Arrays already on the host (numpy, CPU tensors) pass through without a copy.
        """
        host = {k: np.asarray(v) for k, v in views.items() if isinstance(v, np.ndarray | int)}
        tensors = {k: v for k, v in views.items() if isinstance(v, torch.Tensor)}
        if self.engine.device.type != "cuda":
            return host | {k: v.cpu().numpy() for k, v in tensors.items()}
        pinned = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True) for k, v in tensors.items()}
        for k, v in tensors.items():
            pinned[k].copy_(v, non_blocking=True)
        torch.cuda.current_stream(self.engine.device).synchronize()
        return host | {k: v.numpy() for k, v in pinned.items()}


_NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


def renderer_for(device: torch.device) -> Renderer:
    """numpy and OpenCV on the CPU, where each torch op costs more than its work; torch elsewhere."""
    return OpenCVRenderer() if device.type == "cpu" else TorchRenderer()


def _crop_tuple(crop: CropRect) -> tuple[int, int, int, int]:
    return (crop.x, crop.y, crop.w, crop.h)


def _scale_crop(crop: CropRect, sx: float, sy: float) -> tuple[int, int, int, int]:
    """The crop in the pixels of a frame shrunk by (sx, sy)."""
    x, y = round(crop.x * sx), round(crop.y * sy)
    return (x, y, max(1, round((crop.x + crop.w) * sx) - x), max(1, round((crop.y + crop.h) * sy) - y))


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
