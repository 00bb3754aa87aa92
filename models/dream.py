"""Optimised images: what a unit wants to see, found by regularised activation maximisation.

Four swappable parts, as in Lucid and Lucent:

- a parametrisation: `FourierImage` (decorrelated colour, Fourier basis) or `PixelImage` (plain pixels);
- transforms: small random functions (`pad`, `jitter`, `random_scale`, `random_rotate`, the last two in one
  resampling as `random_scale_and_rotate`) applied each step, so that the image must work under all of them
  and high-frequency tricks do not pay;
- objectives: `channel`, `neuron`, `logit`, composable with `+`, `-` and `*`;
- an optimiser loop, `optimise`: Adam on the Fourier image (``fourier``), or the gradient ascent of
  Yosinski et al. (2015) with the regularisers of their Table 1 (``yosinski``).

`plan` checks a request, `dream` runs it channel by channel in batches and caches each channel's image.
Every random draw comes from generators seeded by `seed`, so a run on the CPU is repeatable bit for bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .embeddings import cache_dir
from .engine import Engine, Prediction
from .errors import ChannelOutOfRangeError, InputError, OptionError, OutputError
from .layers import INPUT, PROB, LayerInfo
from .progress import Progress, report

METHODS = ("fourier", "yosinski")
OBJECTIVES = ("channel", "neuron")
DEFAULT_STEPS = 512
"""Steps of the ``fourier`` method (Lucid's default); ``yosinski`` takes its preset's."""
FOURIER_LR = 0.05
BATCH_SIZE = 8
"""Channels optimised together by `dream`; more only costs memory once the cores are busy."""
CACHE_VERSION = 2
"""Bumped when a change to the recipe makes old cached images wrong."""


@dataclass(frozen=True)
class YosinskiPreset:
    """One row of Table 1 of Yosinski et al. (2015), with the learning-rate policy and step count that the
    Deep Visualization Toolbox's doc/optimize.md gives for it."""

    decay: float
    """theta_decay: L2 decay, x *= 1 - decay each step."""
    blur_radius: float
    """theta_b_width: Gaussian blur sigma in pixels (0: none)."""
    blur_every: int
    """theta_b_every: blur every that many steps (0: never)."""
    small_norm_percentile: float
    """theta_n_pct: pixels whose norm over colour is under this percentile are set to 0."""
    small_contribution_percentile: float
    """theta_c_pct: pixels whose |x . grad| summed over colour is under this percentile are set to 0."""
    lr: float
    """The constant learning rate, or the largest one under the progress policy."""
    desired_progress: float | None
    """Progress policy: lr = min(lr, desired_progress / |grad|^2); None: constant lr."""
    steps: int


PRESETS: dict[int, YosinskiPreset] = {
    1: YosinskiPreset(0.0, 0.5, 4, 50.0, 0.0, 100.0, 2.0, 500),
    2: YosinskiPreset(0.3, 0.0, 0, 20.0, 0.0, 100.0, None, 750),
    3: YosinskiPreset(0.0001, 1.0, 4, 0.0, 0.0, 100.0, None, 1000),
    4: YosinskiPreset(0.0, 0.5, 4, 0.0, 90.0, 1e8, 2.0, 1000),
}
DEFAULT_PRESET = 3
"""The paper's: most of its images were made with it (smooth, a 1-pixel blur every 4 steps)."""


# Objectives ----------------------------------------------------------------------------------------------


class Objective:
    """A value per image of the batch, to be maximised, computed from the captured layer outputs.

    Objectives compose: ``channel("conv5", 3) - 0.5 * channel("conv5", 7)``.
    """

    def __init__(self, compute: Callable[[Mapping[str, torch.Tensor]], torch.Tensor], paths: frozenset[str],
                 description: str):  # fmt: skip
        self.compute = compute
        self.paths = paths
        """Layer paths the objective reads (`PROB` for the logits)."""
        self.description = description

    def __call__(self, activations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.compute(activations)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    def _combine(self, other: Objective | float, op: Callable, symbol: str, reverse: bool = False) -> Objective:
        if isinstance(other, Objective):
            a, b = (other, self) if reverse else (self, other)
            return Objective(lambda acts: op(a(acts), b(acts)), a.paths | b.paths,
                             f"({a.description} {symbol} {b.description})")  # fmt: skip
        if not isinstance(other, int | float):
            return NotImplemented
        if reverse:
            return Objective(lambda acts: op(other, self(acts)), self.paths, f"({other:g} {symbol} {self.description})")
        return Objective(lambda acts: op(self(acts), other), self.paths, f"({self.description} {symbol} {other:g})")

    def __add__(self, other):
        return self._combine(other, operator.add, "+")

    def __radd__(self, other):
        return self._combine(other, operator.add, "+", reverse=True)

    def __sub__(self, other):
        return self._combine(other, operator.sub, "-")

    def __rsub__(self, other):
        return self._combine(other, operator.sub, "-", reverse=True)

    def __mul__(self, other):
        return self._combine(other, operator.mul, "*")

    def __rmul__(self, other):
        return self._combine(other, operator.mul, "*", reverse=True)

    def __neg__(self) -> Objective:
        return Objective(lambda acts: -self(acts), self.paths, f"-{self.description}")


def _select(output: torch.Tensor, unit: int | Sequence[int]) -> torch.Tensor:
    """Channel `unit` of every image, or channel unit[i] of image i."""
    if isinstance(unit, int):
        return output[:, unit]
    if len(unit) != output.shape[0]:
        raise OptionError(f"{len(unit)} channels for a batch of {output.shape[0]} images")
    return output[torch.arange(len(unit), device=output.device), torch.as_tensor(list(unit), device=output.device)]


def channel(path: str, unit: int | Sequence[int]) -> Objective:
    """A channel's mean over space (Lucid's `channel`); on a layer without a map, the unit's value.

    A sequence of units gives image i of the batch its own unit[i]: many channels in one batch.
    """

    def compute(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        picked = _select(acts[path], unit)
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked

    return Objective(compute, frozenset({path}), f"channel({path}, {unit})")


def neuron(path: str, unit: int | Sequence[int], y: int | None = None, x: int | None = None) -> Objective:
    """One unit of a channel's map, the centre one by default (the Deep Visualization Toolbox's)."""

    def compute(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        output = acts[path]
        if output.dim() != 4:
            raise OptionError(f"{path} has no spatial map; use the channel objective")
        row = output.shape[2] // 2 if y is None else y
        col = output.shape[3] // 2 if x is None else x
        return _select(output[:, :, row, col], unit)

    return Objective(compute, frozenset({path}), f"neuron({path}, {unit})")


def logit(unit: int | Sequence[int]) -> Objective:
    """A class's score before the softmax: the softmax can rise by lowering the other classes instead."""
    objective = channel(PROB, unit)
    objective.description = f"logit({unit})"
    return objective


# Parametrisations ----------------------------------------------------------------------------------------

COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
"""Square root of ImageNet's colour correlation (Lucid's), to optimise in decorrelated colour."""
COLOUR_CORRELATION_NORMALISED = COLOUR_CORRELATION_SQRT / COLOUR_CORRELATION_SQRT.norm(dim=0).max()


def decorrelated_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W in decorrelated colour to RGB (before the sigmoid)."""
    return torch.einsum("nchw,dc->ndhw", image, COLOUR_CORRELATION_NORMALISED.to(image.device))


def _normal(shape: Sequence[int], seeds: Sequence[int], scale: float) -> torch.Tensor:
    """One normal draw per image, each from its own seed: an image starts the same alone or in a batch."""
    return torch.stack([torch.randn(*shape, generator=torch.Generator().manual_seed(s)) * scale for s in seeds])


class FourierImage:
    """Lucid's image: a spectrum scaled by 1 / frequency, in decorrelated colour, through a sigmoid.

    Gradient steps on the spectrum move all frequencies at about the same rate, which favours the low
    ones that natural images have; the sigmoid keeps pixels in [0, 1].
    """

    def __init__(self, seeds: Sequence[int], channels: int, size: int, device: torch.device, *,
                 sd: float = 0.01, decorrelate: bool = True):  # fmt: skip
        self.size = size
        self.decorrelate = decorrelate and channels == 3
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        frequencies = torch.sqrt(fx * fx + fy * fy)
        # with torch's orthonormal irfft no sqrt(w * h) factor (TensorFlow's irfft is unnormalised)
        self.scale = (1.0 / torch.clamp(frequencies, min=1.0 / size)).to(device)
        spectrum = _normal((channels, size, size // 2 + 1, 2), seeds, sd)
        self.spectrum = spectrum.to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        """N x C x S x S in [0, 1]."""
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        image = torch.fft.irfftn(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        if self.decorrelate:
            image = decorrelated_to_rgb(image)
        return torch.sigmoid(image)


class PixelImage:
    """Pixels in the Toolbox's space: 0-255 minus the dataset mean, starting from N(0, 10) noise."""

    def __init__(self, seeds: Sequence[int], mean: Sequence[float], size: int, device: torch.device):
        self.mean255 = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.pixels = _normal((len(mean), size, size), seeds, 10.0).to(device)

    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def clip(self) -> None:
        """Back into [0, 255] once the mean is added, as the Toolbox does before each forward."""
        self.pixels = torch.clamp(self.pixels + self.mean255, 0.0, 255.0) - self.mean255

    def image(self) -> torch.Tensor:
        return torch.clamp((self.pixels + self.mean255) / 255.0, 0.0, 1.0)


# Transforms ----------------------------------------------------------------------------------------------

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""An image batch in [0, 1] and the run's generator -> the transformed batch."""


def _choice(options: Sequence[float], generator: torch.Generator) -> float:
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def pad(width: int, value: float = 0.5) -> Transform:
    """A grey border, so that jitter and rotation do not bring the opposite edge in."""
    return lambda image, _generator: F.pad(image, [width] * 4, value=value)


def jitter(shift: int) -> Transform:
    """A random crop `shift` pixels smaller: the image must work at every offset."""

    def transform(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(shift + 1, (2,), generator=generator))
        return image[..., dy : dy + image.shape[-2] - shift, dx : dx + image.shape[-1] - shift]

    return transform


def _affine(image: torch.Tensor, scale: float, degrees: float) -> torch.Tensor:
    """Zoom by `scale` and rotate by `degrees` about the centre, keeping the size."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta.expand(image.shape[0], 2, 3), list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_scale(scales: Sequence[float]) -> Transform:
    return lambda image, generator: _affine(image, _choice(scales, generator), 0.0)


def random_rotate(degrees: Sequence[float]) -> Transform:
    return lambda image, generator: _affine(image, 1.0, _choice(degrees, generator))


def random_scale_and_rotate(scales: Sequence[float], degrees: Sequence[float]) -> Transform:
    """`random_scale` then `random_rotate` in one resampling: half the cost, one blur less."""

    def transform(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        scale = _choice(scales, generator)
        return _affine(image, scale, _choice(degrees, generator))

    return transform


def centre_crop(size: int) -> Transform:
    """Back to `size`, so that the network sees what it would see of the image itself."""

    def transform(image: torch.Tensor, _generator: torch.Generator) -> torch.Tensor:
        top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
        return image[..., top : top + size, left : left + size]

    return transform


def standard_transforms(size: int) -> list[Transform]:
    """Lucid's: pad 12, jitter 8, scale 0.9-1.1, rotate +-10 degrees; pad and jitter scale with the image
    (a 28-pixel digit would drown in a 12-pixel border)."""
    border = max(1, round(12 * size / 224))
    shift = max(1, round(8 * size / 224))
    return [
        pad(border),
        jitter(shift),
        random_scale_and_rotate([1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11))),
        centre_crop(size),
    ]


# Capturing with gradients ----------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised from a hook once every layer an objective reads has run: the rest of the network is not needed."""


class GradientCapture:
    """Forward hooks that keep the graph (`ActivationCapture` detaches), stopping the forward early.

    A module called more than once (ResNet's shared ReLU) is taken at its last call, as the layer list
    and the live view do; the number of calls is counted in one dry run. Forwards of the same model on other
    threads (the live view) pass the hooks untouched.
    """

    def __init__(self, model: torch.nn.Module, paths: frozenset[str]):
        self.model = model
        self.paths = sorted(path for path in paths if path not in (INPUT, PROB))
        self.needs_logits = PROB in paths
        self.activations: dict[str, torch.Tensor] = {}
        self._calls: dict[str, int] = {}
        self._needed_calls: dict[str, int] | None = None
        self._running_in: int | None = None
        self._handles = [model.get_submodule(path).register_forward_hook(self._hook(path)) for path in self.paths]

    def _hook(self, path: str):
        def hook(_module, _inputs, output):
            if threading.get_ident() != self._running_in:
                return  # the live view's forward on another thread, through the same model
            self._calls[path] = self._calls.get(path, 0) + 1
            if self._calls[path] != (self._needed_calls or {}).get(path):
                return
            done = len(self.activations) + 1 == len(self.paths) and not self.needs_logits
            # an in-place op later in the forward (AlexNet's ReLU) would overwrite what is kept
            self.activations[path] = output if done else output.clone()
            if done:
                raise _StopForward

        return hook

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The outputs the objective reads, `PROB` being the logits, for network input `x`."""
        self._running_in = threading.get_ident()
        if self._needed_calls is None and self.paths:
            with torch.no_grad():
                self._calls = {}
                self.model(x[:1].detach())
                self._needed_calls = dict(self._calls)
        self.activations, self._calls = {}, {}
        try:
            logits = self.model(x)
        except _StopForward:
            logits = None
        if self.needs_logits:
            self.activations[PROB] = logits
        return self.activations

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> GradientCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def frozen_weights(model: torch.nn.Module) -> Iterator[None]:
    """No gradients for the weights while the image is optimised (a third less backward), restored after."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


# The optimiser loop ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DreamResult:
    images: np.ndarray
    """N x H x W x 3 uint8 on the host (gray models: the gray value in all three)."""
    objective: np.ndarray
    """steps x N float32: the objective of each image at each step."""
    seconds: float
    cached: bool = False

    @property
    def image(self) -> np.ndarray:
        """The first (or only) image, H x W x 3 uint8."""
        return self.images[0]

    @property
    def steps(self) -> int:
        return len(self.objective)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """N x C x H x W in [0, 1] -> N x H x W x 3 uint8 on the host."""
    pixels = (image.detach().clamp(0, 1) * 255.0).round().to(torch.uint8)
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per channel, separable, truncated at 4 sigma (scipy's gaussian_filter, which the Toolbox used)."""
    radius = max(1, int(4.0 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    mode = "reflect" if radius < min(image.shape[-2:]) else "replicate"
    padded = F.pad(image, [radius, radius, radius, radius], mode=mode)
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _zero_below_percentile(pixels: torch.Tensor, score: torch.Tensor, percent: float) -> torch.Tensor:
    """Set to 0 the pixels whose score (N x H x W) is under the image's `percent` percentile."""
    threshold = torch.quantile(score.flatten(1), percent / 100.0, dim=1).view(-1, 1, 1)
    return pixels * (score >= threshold).unsqueeze(1).to(pixels.dtype)


def optimise(
    engine: Engine,
    objective: Objective,
    *,
    batch: int = 1,
    method: str = "fourier",
    steps: int = DEFAULT_STEPS,
    size: int | None = None,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    preset: int = DEFAULT_PRESET,
    lr: float = FOURIER_LR,
    transforms: Sequence[Transform] | None = None,
    progress: Progress | None = None,
    preview_every: int | None = None,
    on_preview: Callable[[int, np.ndarray], None] | None = None,
) -> DreamResult:
    """Maximise `objective` over a batch of images; the result is on the host.

    `seeds`: one per image of the batch for its starting point (default: seed, seed + 1, ...); `seed` drives
    the random transforms. `progress("optimising", step, steps)` after every step: answering False stops the
    run there by raising `Cancelled`. `on_preview(step, image)` every `preview_every` steps with the image so
    far (H x W x 3 uint8: the first image of the batch).
    """
    if method not in METHODS:
        raise OptionError(f"unknown method {method!r}; use {' or '.join(METHODS)}")
    if steps < 1:
        raise OptionError(f"--steps must be at least 1, got {steps}")
    if method == "yosinski" and preset not in PRESETS:
        raise OptionError(f"--preset must be 1 to {len(PRESETS)} (Yosinski et al. 2015, Table 1), got {preset}")
    size = size or engine.spec.input_size
    seeds = list(seeds) if seeds is not None else [seed + i for i in range(batch)]
    generator = torch.Generator().manual_seed(seed)
    device = engine.device
    start = time.perf_counter()
    values: list[torch.Tensor] = []
    with frozen_weights(engine.model), GradientCapture(engine.model, objective.paths) as capture:
        if method == "fourier":
            loop = _fourier_steps(engine, objective, capture, seeds, size, lr, transforms, generator, device)
        else:
            loop = _yosinski_steps(engine, objective, capture, seeds, size, PRESETS[preset], steps)
        parametrisation = None
        for step in range(1, steps + 1):
            parametrisation, value = next(loop)
            values.append(value)
            if on_preview is not None and preview_every and step % preview_every == 0 and step < steps:
                with torch.no_grad():
                    on_preview(step, to_uint8(parametrisation.image()[:1])[0])
            report(progress, "optimising", step, steps)
        with torch.no_grad():
            images = to_uint8(parametrisation.image())
    objective_values = torch.stack(values).float().cpu().numpy()
    return DreamResult(images, objective_values, time.perf_counter() - start)


def _network_input(engine: Engine, image: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(engine.spec.mean, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    std = torch.tensor(engine.spec.std, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
    return (image - mean) / std


def _fourier_steps(engine, objective, capture, seeds, size, lr, transforms, generator, device):
    """Lucid's recipe, one step per `next`: transformed image, forward, backward, Adam."""
    image = FourierImage(seeds, engine.spec.in_channels, size, device)
    optimiser = torch.optim.Adam(image.parameters(), lr=lr)
    transforms = standard_transforms(size) if transforms is None else list(transforms)
    while True:
        optimiser.zero_grad(set_to_none=True)
        x = image.image()
        for transform in transforms:
            x = transform(x, generator)
        value = objective(capture.run(_network_input(engine, x)))
        (-value.sum()).backward()
        optimiser.step()
        yield image, value.detach()


def _yosinski_steps(engine, objective, capture, seeds, size, preset: YosinskiPreset, steps: int):
    """The Deep Visualization Toolbox's loop: clip, forward, gradient, step, then decay, blur and the two
    clippings; no step after the last forward, so that the last value is the final image's."""
    image = PixelImage(seeds, engine.spec.mean, size, engine.device)
    to_input = 1.0 / (255.0 * torch.tensor(engine.spec.std, device=engine.device).view(1, -1, 1, 1))
    for step in range(steps):
        image.clip()
        pixels = image.pixels.requires_grad_(True)
        value = objective(capture.run(pixels * to_input))
        (grad,) = torch.autograd.grad(value.sum(), pixels)
        pixels = pixels.detach()
        if step < steps - 1:
            if preset.desired_progress is None:
                lr = torch.full((len(pixels), 1, 1, 1), preset.lr, device=pixels.device)
            else:  # the objective should rise by desired_progress, if it were linear
                squared = grad.flatten(1).pow(2).sum(1).view(-1, 1, 1, 1)
                lr = torch.where(squared > 0, preset.desired_progress / squared.clamp(min=1e-30), preset.lr)
                lr = lr.clamp(max=preset.lr)
            pixels = (pixels + lr * grad) * (1.0 - preset.decay)
            if preset.blur_every and preset.blur_radius > 0 and step % preset.blur_every == 0:
                pixels = _gaussian_blur(pixels, preset.blur_radius)
            if preset.small_norm_percentile > 0:
                pixels = _zero_below_percentile(pixels, pixels.norm(dim=1), preset.small_norm_percentile)
            if preset.small_contribution_percentile > 0:
                contribution = (grad * -pixels).sum(1).abs()
                pixels = _zero_below_percentile(pixels, contribution, preset.small_contribution_percentile)
        image.pixels = pixels
        yield image, value.detach()


# Requests, batches of channels, the cache ----------------------------------------------------------------


@dataclass(frozen=True)
class DreamRequest:
    """A checked request: which units of which layer, by which method and settings."""

    layer: LayerInfo
    channels: tuple[int, ...]
    objective: str
    method: str
    steps: int
    size: int
    preset: int | None
    seed: int
    lr: float = FOURIER_LR

    def objective_for(self, channels: Sequence[int]) -> Objective:
        """Image i of a batch maximises channels[i]."""
        units = list(channels)
        if self.layer.path == PROB:
            return logit(units)
        return (neuron if self.objective == "neuron" else channel)(self.layer.path, units)

    def seed_of(self, unit: int) -> int:
        """Each channel's own starting point: the same alone or in any batch."""
        return self.seed * 100_003 + unit

    def settings(self) -> dict:
        settings = {"method": self.method, "steps": self.steps, "size": self.size, "seed": self.seed,
                    "objective": self.objective}  # fmt: skip
        if self.method == "fourier":
            settings["lr"] = self.lr
        else:
            settings["preset"] = self.preset
        return settings


def check_options(method: str, steps: int | None, preset: int | None, objective: str) -> None:
    """What can be checked before a model is loaded."""
    if method not in METHODS:
        raise OptionError(f"unknown method {method!r}; use {' or '.join(METHODS)}")
    if objective not in OBJECTIVES:
        raise OptionError(f"unknown objective {objective!r}; use {' or '.join(OBJECTIVES)}")
    if steps is not None and steps < 1:
        raise OptionError(f"--steps must be at least 1, got {steps}")
    if preset is not None:
        if method != "yosinski":
            raise OptionError("--preset chooses the regularisers of --method yosinski")
        if preset not in PRESETS:
            raise OptionError(f"--preset must be 1 to {len(PRESETS)} (Yosinski et al. 2015, Table 1), got {preset}")


def plan(
    engine: Engine,
    layer: str | None = None,
    channels: int | Sequence[int] = 0,
    *,
    objective: str = "channel",
    method: str = "fourier",
    steps: int | None = None,
    size: int | None = None,
    preset: int | None = None,
    seed: int = 0,
) -> DreamRequest:
    """Check a request against the model; every mistake is an error a user can act on."""
    check_options(method, steps, preset, objective)
    info = engine.layer(layer)
    if info.path == INPUT:
        raise OptionError("the input layer has nothing to maximise; choose a layer of the network")
    units = (channels,) if isinstance(channels, int) else tuple(channels)
    if not units:
        raise OptionError("no channels asked for")
    for unit in units:
        if not 0 <= unit < info.channels:
            raise ChannelOutOfRangeError(
                f"channel {unit} is out of range: {info.name} has {info.channels} channels (0-{info.channels - 1})"
            )
    if objective == "neuron" and not info.is_spatial:
        raise OptionError(f"{info.name} has no spatial map, so no centre neuron; use --objective channel")
    size = size or engine.spec.input_size
    if size < 8:
        raise OptionError(f"--size must be at least 8 pixels, got {size}")
    if method == "yosinski":
        preset = preset or DEFAULT_PRESET
        steps = steps or PRESETS[preset].steps
    steps = steps or DEFAULT_STEPS
    return DreamRequest(info, units, objective, method, steps, size, preset, seed)


def dreams_dir() -> Path:
    """Beside the embeddings cache: LIVEVIS_CACHE, else the user's cache folder."""
    return cache_dir().parent / "dreams"


def cache_file(engine: Engine, request: DreamRequest, unit: int) -> Path:
    key = {"version": CACHE_VERSION, "model": engine.name, "weights": engine.weights.source,
           "input_size": engine.spec.input_size, "mean": engine.spec.mean, "std": engine.spec.std,
           "layer": request.layer.path, "channel": unit, **request.settings()}  # fmt: skip
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return dreams_dir() / f"{digest}.npz"


def _read_cached(path: Path) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A cached channel's image, objective and seconds; None where there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return data["image"], data["objective"], float(data["seconds"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _write_cached(path: Path, image: np.ndarray, objective: np.ndarray, seconds: float) -> None:
    temporary = path.with_suffix(".partial.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, image=image, objective=objective, seconds=seconds)
        temporary.replace(path)
    except OSError:  # a cache that cannot be written only costs the next run time
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def load_cached(engine: Engine, request: DreamRequest) -> DreamResult | None:
    """The whole request from the cache without optimising, or None if any channel is missing."""
    stored = [_read_cached(cache_file(engine, request, unit)) for unit in request.channels]
    if any(entry is None for entry in stored):
        return None
    return DreamResult(np.stack([entry[0] for entry in stored]), np.stack([entry[1] for entry in stored], axis=1),
                       sum(entry[2] for entry in stored), cached=True)  # fmt: skip


def dream(
    engine: Engine,
    request: DreamRequest,
    *,
    batch_size: int = BATCH_SIZE,
    use_cache: bool = True,
    progress: Progress | None = None,
    preview_every: int | None = None,
    on_preview: Callable[[int, np.ndarray], None] | None = None,
) -> DreamResult:
    """Every channel of the request, `batch_size` at a time as one batch; cached per channel.

    `seconds` is the time spent optimising now (the stored times for a result entirely from the cache).
    """
    stored = {unit: _read_cached(cache_file(engine, request, unit)) if use_cache else None
              for unit in request.channels}  # fmt: skip
    missing = [unit for unit in request.channels if stored[unit] is None]
    if not missing:
        return load_cached(engine, request)
    chunks = [missing[i : i + batch_size] for i in range(0, len(missing), batch_size)]
    total = request.steps * len(chunks)
    seconds = 0.0
    for number, chunk in enumerate(chunks):
        what = f"{request.layer.name} channel{'s' if len(chunk) > 1 else ''} {', '.join(map(str, chunk))}"

        def chunk_progress(_what: str, done: int, _total: int, offset: int = number * request.steps, what=what):
            return progress(what, offset + done, total) if progress else None

        result = optimise(
            engine, request.objective_for(chunk), batch=len(chunk), method=request.method, steps=request.steps,
            size=request.size, seed=request.seed, seeds=[request.seed_of(unit) for unit in chunk],
            preset=request.preset or DEFAULT_PRESET, lr=request.lr, progress=chunk_progress,
            preview_every=preview_every, on_preview=on_preview,
        )  # fmt: skip
        seconds += result.seconds
        for i, unit in enumerate(chunk):
            stored[unit] = (result.images[i], result.objective[:, i], result.seconds / len(chunk))
            if use_cache:
                _write_cached(cache_file(engine, request, unit), *stored[unit])
    images = np.stack([stored[unit][0] for unit in request.channels])
    objective = np.stack([stored[unit][1] for unit in request.channels], axis=1)
    return DreamResult(images, objective, seconds, cached=False)


# Files and contact sheets -------------------------------------------------------------------------------


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """An RGB uint8 image as PNG (lossless: what is classified later is what was made)."""
    import cv2

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    if not written:
        raise OutputError(f"cannot write {path}; check the folder exists and is writable")
    return path


def read_png(path: str | Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read {path} as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def classify(engine: Engine, image: np.ndarray, k: int = 5) -> list[Prediction]:
    """The model's top classes on an image, preprocessed exactly as the live view does."""
    x, _crop = engine.preprocess(engine.upload(image))
    logits = engine.forward(x)[0].float().cpu().numpy()
    return engine.top_k(logits, k)


def contact_sheet(images: np.ndarray, labels: Sequence[str], columns: int | None = None) -> np.ndarray:
    """One labelled tile per image in a grid; small images (a digit's 28 pixels) are enlarged to be seen."""
    import cv2

    count, height, width = images.shape[:3]
    zoom = max(1, math.ceil(112 / max(height, width)))
    tile_h, tile_w = height * zoom, width * zoom
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    band, gap = 22, 4
    sheet = np.full((rows * (tile_h + band + gap) + gap, columns * (tile_w + gap) + gap, 3), 255, np.uint8)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        row, col = divmod(index, columns)
        top, left = gap + row * (tile_h + band + gap), gap + col * (tile_w + gap)
        tile = cv2.resize(image, (tile_w, tile_h), interpolation=cv2.INTER_NEAREST) if zoom > 1 else image
        sheet[top : top + tile_h, left : left + tile_w] = tile
        scale = 0.45
        while scale > 0.25 and cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > tile_w:
            scale -= 0.05
        cv2.putText(sheet, label, (left + 2, top + tile_h + 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
    return sheet
