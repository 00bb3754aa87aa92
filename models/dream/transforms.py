"""What is done to the image between the optimiser and the network, and between steps.

Lucid's random transforms (`pad`, `jitter`, `random_scale`, `random_rotate`, the last two in one resampling as
`random_scale_and_rotate`, and `standard_transforms`) make the image work under all of them, so that
high-frequency tricks do not pay; `zero_below_percentile` (with `gradient_views.gaussian_blur`) gives the
regularisers of Yosinski et al. (2015). All are plain functions of a batch, drawing only from the run's generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

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


def colour_shift(amount: float = 0.1) -> Transform:
    """Each image's channels scaled and shifted by small random amounts (Ghiasi et al. 2022's ColorShift):
    a transformer then cannot rely on one exact colour."""

    def transform(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shape = (image.shape[0], image.shape[1], 1, 1)
        scale = 1 + amount * torch.randn(shape, generator=generator).to(image.device, image.dtype)
        shift = amount * torch.randn(shape, generator=generator).to(image.device, image.dtype)
        return image * scale + shift

    return transform


def transformer_transforms(size: int, patch: int) -> list[Transform]:
    """For a vision transformer: a pad and a jitter of a whole patch, so that the patch grid falls anywhere
    on the image from one step to the next (else the image fits itself to the grid), Lucid's scale and
    rotation, and a colour shift, as Ghiasi et al. (2022, "What do Vision Transformers Learn?") found ViTs
    need."""
    return [
        pad(patch),
        jitter(patch),
        random_scale_and_rotate([1 + (i - 5) / 50 for i in range(11)], list(range(-10, 11))),
        colour_shift(),
        centre_crop(size),
    ]


# Regularisers of Yosinski et al. (2015) -------------------------------------------------------------------


def zero_below_percentile(pixels: torch.Tensor, score: torch.Tensor, percent: float) -> torch.Tensor:
    """Set to 0 the pixels whose score (N x H x W) is under the image's `percent` percentile."""
    threshold = torch.quantile(score.flatten(1), percent / 100.0, dim=1).view(-1, 1, 1)
    return pixels * (score >= threshold).unsqueeze(1).to(pixels.dtype)
