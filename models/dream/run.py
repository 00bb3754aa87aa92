"""Optimised images: what a unit wants to see, found by regularised activation maximisation.

Four swappable parts, as in Lucid and Lucent, each in its own module:

- a parametrisation (`dream_param`): `FourierImage` (decorrelated colour, Fourier basis) or `PixelImage`;
- transforms (`dream_transforms`): small random functions applied each step, so that the image must work
  under all of them, and the regularisers of Yosinski et al. (2015);
- objectives (`dream_objectives`): `channel`, `neuron`, `logit`, composable with `+`, `-` and `*`;
- an optimiser loop, here: `optimise`, Adam on the Fourier image (``fourier``), or the gradient ascent of
  Yosinski et al. (2015) with the regularisers of their Table 1 (``yosinski``).

`plan` checks a request, `dream` runs it channel by channel in batches and caches each channel's image
(`dream_cache`); `dream_files` writes, reads, classifies and tiles the images.
Every random draw comes from generators seeded by `seed`, so a run on the CPU is repeatable bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..attribution.gradient_views import gaussian_blur
from ..engine import Engine
from ..errors import ChannelOutOfRangeError, OptionError
from ..layers import INPUT, PROB, LayerInfo
from ..progress import Progress, report
from .cache import CACHE_VERSION, cache_file, dreams_dir, read_cached, write_cached  # noqa: F401  (re-exported)
from .files import classify, contact_sheet, read_png, save_png  # noqa: F401  (re-exported)
from .objectives import GradientCapture, Objective, channel, logit, neuron
from .param import FourierImage, PixelImage
from .transforms import Transform, standard_transforms, transformer_transforms, zero_below_percentile

METHODS = ("fourier", "yosinski")
OBJECTIVES = ("channel", "neuron")
DEFAULT_STEPS = 512
"""Steps of the ``fourier`` method (Lucid's default); ``yosinski`` takes its preset's."""
FOURIER_LR = 0.05
BATCH_SIZE = 8
"""Channels optimised together by `dream`; more only costs memory once the cores are busy."""


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
    with GradientCapture(engine.model, objective.paths) as capture:
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


def default_transforms(engine: Engine, size: int) -> list[Transform]:
    """Lucid's for a convolutional network; for a transformer, a jitter of a whole patch and a colour shift."""
    tokens = engine.tokens
    if (
        engine.blocks and tokens is not None
    ):  # a patch's side: the input's over the grid's (a stem need not be one conv)
        return transformer_transforms(size, max(1, round(size / tokens.grid.discovered[1])))
    return standard_transforms(size)


def _fourier_steps(engine, objective, capture, seeds, size, lr, transforms, generator, device):
    """Lucid's recipe, one step per `next`: transformed image, forward, backward, Adam."""
    image = FourierImage(seeds, engine.spec.in_channels, size, device)
    optimiser = torch.optim.Adam(image.parameters(), lr=lr)
    transforms = default_transforms(engine, size) if transforms is None else list(transforms)
    while True:
        x = image.image()
        for transform in transforms:
            x = transform(x, generator)
        value = objective(capture.run(_network_input(engine, x)))
        # the image's gradients alone, handed to Adam: the weights are shared with the live view and other
        # optimisations on other threads, so they are left as they are (and their gradients are not computed)
        parameters = image.parameters()
        for parameter, gradient in zip(parameters, torch.autograd.grad(-value.sum(), parameters), strict=True):
            parameter.grad = gradient
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
                pixels = gaussian_blur(pixels, preset.blur_radius)
            if preset.small_norm_percentile > 0:
                pixels = zero_below_percentile(pixels, pixels.norm(dim=1), preset.small_norm_percentile)
            if preset.small_contribution_percentile > 0:
                contribution = (grad * -pixels).sum(1).abs()
                pixels = zero_below_percentile(pixels, contribution, preset.small_contribution_percentile)
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
        settings = {
            "method": self.method,
            "steps": self.steps,
            "size": self.size,
            "seed": self.seed,
            "objective": self.objective,
        }
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


def load_cached(engine: Engine, request: DreamRequest) -> DreamResult | None:
    """The whole request from the cache without optimising, or None if any channel is missing."""
    stored = [read_cached(cache_file(engine, request, unit)) for unit in request.channels]
    if any(entry is None for entry in stored):
        return None
    return DreamResult(
        np.stack([entry[0] for entry in stored]),
        np.stack([entry[1] for entry in stored], axis=1),
        sum(entry[2] for entry in stored),
        cached=True,
    )


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
    stored = {unit: read_cached(cache_file(engine, request, unit)) if use_cache else None for unit in request.channels}
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
            engine,
            request.objective_for(chunk),
            batch=len(chunk),
            method=request.method,
            steps=request.steps,
            size=request.size,
            seed=request.seed,
            seeds=[request.seed_of(unit) for unit in chunk],
            preset=request.preset or DEFAULT_PRESET,
            lr=request.lr,
            progress=chunk_progress,
            preview_every=preview_every,
            on_preview=on_preview,
        )
        seconds += result.seconds
        for i, unit in enumerate(chunk):
            stored[unit] = (result.images[i], result.objective[:, i], result.seconds / len(chunk))
            if use_cache:
                write_cached(cache_file(engine, request, unit), *stored[unit])
    images = np.stack([stored[unit][0] for unit in request.channels])
    objective = np.stack([stored[unit][1] for unit in request.channels], axis=1)
    return DreamResult(images, objective, seconds, cached=False)
