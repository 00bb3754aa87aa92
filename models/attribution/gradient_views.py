"""The Toolbox's views of an input gradient (`VIEWS`) and their pictures.

`gradient_view` reduces a gradient to what a view shows (raw, the channel mean, the channel norm,
that norm blurred); `render_gradient` colours it into an H x W x 3 uint8 picture. Both are torch ops
on the gradient's device, ending in one picture ready for one copy to the host. Kept apart from
models/backprop.py because they only draw a gradient, however it was computed.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import OptionError
from ..render.base import LEVELS, _device_colour_table, is_signed

VIEWS = ("raw", "gray", "norm", "normblur")

BLUR_SIGMA = 4.0
"""The Toolbox's `caffevis_grad_norm_blur_radius`, in input pixels."""
BLUR_TRUNCATE = 4.0
"""Kernel radius in sigmas, as scipy.ndimage.gaussian_filter and cv2.GaussianBlur (32-bit) cut it."""


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise OptionError(f"unknown gradient view {view!r}; choose one of {', '.join(VIEWS)}")
    return view


@lru_cache(maxsize=16)
def _blur_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(size, size): a 1-D Gaussian blur with reflect padding as one matrix, so that blurring an image
    is two matrix products (fast on every device; a 33-tap one-channel convolution is not on the CPU)."""
    radius = min(int(BLUR_TRUNCATE * sigma + 0.5), size - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    impulses = torch.eye(size, dtype=torch.float64)[:, None]
    responses = F.conv1d(F.pad(impulses, (radius, radius), mode="reflect"), kernel.view(1, 1, -1))
    return responses[:, 0].T.contiguous().to(torch.float32).to(device)


def gaussian_blur(image: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(..., H, W) float, blurred by a separable Gaussian with reflect padding (d c b | a b c d, OpenCV's
    default BORDER_REFLECT_101, scipy's mode="mirror"), truncated at 4 sigma like both.

    Reflect padding needs the radius below the side, so on an image smaller than 17 px a side the
    kernel is cut shorter.
    """
    height, width = image.shape[-2:]
    if min(height, width) < 2 or sigma <= 0:
        return image.clone()
    rows = _blur_matrix(height, float(sigma), image.device)
    cols = _blur_matrix(width, float(sigma), image.device)
    return rows @ image.float() @ cols.T


def gradient_view(gradient: torch.Tensor, view: str) -> torch.Tensor:
    """A gradient (C x S x S, or a batch N x C x S x S) as the Toolbox shows it.

    raw: as is, signed. gray: the mean over input channels, signed. norm: the L2 norm over input
    channels, >= 0. normblur: that norm blurred (sigma 4 input pixels, `gaussian_blur`).
    """
    check_view(view)
    if gradient.dim() not in (3, 4):
        raise OptionError(f"a gradient is C x S x S (or N x C x S x S), got {tuple(gradient.shape)}")
    gradient = gradient.float()
    if view == "raw":
        return gradient
    if view == "gray":
        return gradient.mean(dim=-3)
    norm = gradient.square().sum(dim=-3).sqrt()  # linalg.vector_norm over dim -3 is ~100x slower on the CPU
    return gaussian_blur(norm) if view == "normblur" else norm


def _levels(values: torch.Tensor, signed: bool) -> torch.Tensor:
    """Values to colour-table rows: signed ones by max |v| (0 on the middle level), others by their max.
    An all-zero image lands on the zero level instead of dividing by zero."""
    top = LEVELS - 1
    if signed:
        span = values.abs().amax()
        scaled = values * torch.where(span > 0, (top / 2) / span, 0.0) + top / 2
    else:
        values = values.clamp(min=0)
        span = values.amax()
        scaled = values * torch.where(span > 0, top / span, 0.0)
    return scaled.round_().clamp_(0, top).long()


def render_gradient(view_tensor: torch.Tensor, view: str, *, colormap: str = "gray") -> torch.Tensor:
    """A view from `gradient_view` as an H x W x 3 uint8 picture on its device.

    raw, 3 channels: RGB, all channels scaled by one max |g| so that 0 is mid-grey (the Toolbox's
    norm01c). raw, 1 channel, and gray: the signed colormap (0 white). norm and normblur: `colormap`,
    a sequential one from models/render.py, scaled by the image's max.
    """
    check_view(view)
    device = view_tensor.device
    values = view_tensor.float()
    if view == "raw":
        if values.dim() != 3 or values.shape[0] not in (1, 3):
            raise OptionError(
                f"the raw view shows 1 or 3 input channels, got {tuple(values.shape)}; use gray, norm or normblur"
            )
        if values.shape[0] == 3:
            span = values.abs().amax()
            scale = torch.where(span > 0, 127.5 / span, 0.0)
            return (values * scale + 127.5).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
        values = values[0]
    if values.dim() != 2:
        raise OptionError(f"the {view} view is one S x S image, got {tuple(values.shape)}")
    if view in ("raw", "gray"):
        return _device_colour_table("signed", 1.0, device)[_levels(values, signed=True)]
    if is_signed(colormap):
        raise OptionError(f"the {view} view is >= 0; choose a sequential colormap, not {colormap!r}")
    return _device_colour_table(colormap, 1.0, device)[_levels(values, signed=False)]
