"""Activations to pictures, on the device: pure tensor -> uint8 tensor functions.

Nothing here copies to the host; the pipeline copies each finished view back once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ColormapError, OptionError

LUT_SIZE = 255  # odd, so that zero falls exactly on the middle entry of a signed colormap
SEPARATOR_GRAY = 48
MARKER_RGB = (0, 255, 0)

# Signed red-white-blue: blue negative, white zero, red positive (ColorBrewer's RdBu ends).
_NEGATIVE_RGB = (33, 102, 172)
_POSITIVE_RGB = (178, 24, 43)


def _signed_lut() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, LUT_SIZE)[:, None]
    white = np.full(3, 255.0)
    negative = white + (-t).clip(0, 1) * (np.array(_NEGATIVE_RGB) - white)
    positive = white + t.clip(0, 1) * (np.array(_POSITIVE_RGB) - white)
    return np.where(t < 0, negative, positive)


def _matplotlib_lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps[name](np.linspace(0.0, 1.0, LUT_SIZE))[:, :3] * 255.0


_COLORMAPS = {
    "signed": (_signed_lut, True),
    "gray": (lambda: np.repeat(np.linspace(0.0, 255.0, LUT_SIZE)[:, None], 3, axis=1), False),
    "viridis": (lambda: _matplotlib_lut("viridis"), False),
    "inferno": (lambda: _matplotlib_lut("inferno"), False),
}
COLORMAPS = tuple(_COLORMAPS)


def check_colormap(name: str) -> str:
    if name not in _COLORMAPS:
        raise ColormapError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return name


def is_signed(colormap: str) -> bool:
    return _COLORMAPS[check_colormap(colormap)][1]


@cache
def colormap_lut(name: str, device: torch.device) -> torch.Tensor:
    """(LUT_SIZE, 3) uint8 on the device, built once per colormap and device."""
    table = _COLORMAPS[check_colormap(name)][0]()
    return torch.from_numpy(np.rint(table).astype(np.uint8)).to(device)


def colormap_index(values: torch.Tensor, colormap: str) -> torch.Tensor:
    """Values in [-1, 1] (signed colormaps) or [0, 1] (others) -> LUT row indices (long)."""
    half = (LUT_SIZE - 1) / 2
    if is_signed(colormap):
        index = values.mul(half).add_(half + 0.5)
    else:
        index = values.mul(LUT_SIZE - 1).add_(0.5)
    return index.clamp_(0, LUT_SIZE - 1).long()


def apply_colormap(values: torch.Tensor, colormap: str, index: torch.Tensor | None = None) -> torch.Tensor:
    """values in [-1, 1] (signed colormaps) or [0, 1] (others) -> (..., 3) uint8.

    `index`: the values' `colormap_index`, when the caller has it already.
    """
    lut = colormap_lut(colormap, values.device)
    index = colormap_index(values, colormap) if index is None else index
    return torch.index_select(lut, 0, index.flatten()).view(*values.shape, 3)


@lru_cache(maxsize=32)
def _overlay_lut(colormap: str, opacity: float, device: torch.device) -> torch.Tensor:
    """(LUT_SIZE, 4) float rows: the colour premultiplied by its opacity (+0.5, to round the final
    cast) and the frame's weight 1 - opacity. The opacity grows with the response's magnitude."""
    lut = colormap_lut(colormap, device).float()
    values = torch.linspace(-1.0 if is_signed(colormap) else 0.0, 1.0, LUT_SIZE, device=device)
    alpha = (values.abs() * opacity)[:, None]
    return torch.cat([lut * alpha + 0.5, 1.0 - alpha], 1).contiguous()


def normalize_maps(
    maps: torch.Tensor, colormap: str, *, per_channel: bool = False, boost: float = 0.0, gamma: float = 1.0
) -> torch.Tensor:
    """(C, ...) activations -> [-1, 1] for signed colormaps, [0, 1] otherwise.

    Per layer (the Toolbox's default) all channels share one scale, so weak channels look weak.
    `boost` in [0, 1] is the Toolbox's per-channel boost: each channel is first divided by its own
    peak to that power (1 = per-channel normalisation). `gamma` < 1 lifts weak responses.
    """
    x = maps.float().reshape(maps.shape[0], -1)
    if per_channel:
        boost = 1.0
    if is_signed(colormap) and boost >= 1:
        x = x / x.abs().amax(1, keepdim=True).clamp_min(1e-12)  # every channel peaks at 1: done
        if gamma != 1.0:
            x = x.sign() * x.abs().pow(gamma)
    elif is_signed(colormap):
        if boost > 0:
            peak = x.abs().amax(1, keepdim=True).clamp_min(1e-12)
            x = x / peak.pow(boost)
        x = x / x.abs().amax().clamp_min(1e-12)
        if gamma != 1.0:
            x = x.sign() * x.abs().pow(gamma)
    else:
        x = x - x.amin(1, keepdim=True) if boost > 0 else x - x.amin()
        if boost > 0:
            x = x / x.amax(1, keepdim=True).clamp_min(1e-12).pow(boost)
        x = x / x.amax().clamp_min(1e-12)
        if gamma != 1.0:
            x = x.pow(gamma)
    return x.reshape(maps.shape)


@dataclass(frozen=True)
class GridLayout:
    """Where each channel's tile sits in a grid image: tile c is at row c // cols, column c % cols.

    Plain numbers, so that a widget can map a mouse position to a channel without torch
    (`widgets.channel_grid.GridGeometry` takes the same fields).
    """

    channels: int
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    scale: int = 1

    @property
    def height(self) -> int:
        return (self.rows * (self.tile_h + 1) + 1) * self.scale

    @property
    def width(self) -> int:
        return (self.cols * (self.tile_w + 1) + 1) * self.scale


def grid_layout(channels: int, tile_h: int, tile_w: int, aspect: float = 1.0, scale: int = 1) -> GridLayout:
    """Near-square layout whose whole image is about `aspect` (width / height)."""
    cols = max(1, min(channels, math.ceil(math.sqrt(channels * aspect * (tile_h + 1) / (tile_w + 1)))))
    rows = math.ceil(channels / cols)
    return GridLayout(channels, rows, cols, tile_h, tile_w, scale)


def tile_channels(colored: torch.Tensor, layout: GridLayout) -> torch.Tensor:
    """(C, h, w, 3) uint8 tiles -> one (H, W, 3) uint8 grid with 1 px separators.

    The tiles are copied straight into a strided view of the finished image: one write of the grid.
    """
    c, h, w, _ = colored.shape
    rows, cols = layout.rows, layout.cols
    grid = torch.full(
        (rows * (h + 1) + 1, cols * (w + 1) + 1, 3), SEPARATOR_GRAY, dtype=torch.uint8, device=colored.device
    )
    cells = grid[1:, 1:].unflatten(0, (rows, h + 1)).unflatten(2, (cols, w + 1))[:, :h, :, :w]
    full_rows, rest = divmod(c, cols)
    if full_rows:
        cells[:full_rows].copy_(colored[: full_rows * cols].unflatten(0, (full_rows, cols)).transpose(1, 2))
    if rest:
        cells[full_rows, :, :rest].copy_(colored[full_rows * cols :].transpose(0, 1))
    if layout.scale > 1:
        grid = grid.repeat_interleave(layout.scale, 0).repeat_interleave(layout.scale, 1)
    return grid


def as_maps(activation: torch.Tensor, unit_tile: int = 3) -> torch.Tensor:
    """(C, H, W) stays; (F,) becomes F tiles of unit_tile x unit_tile, one per unit."""
    if activation.dim() == 3:
        return activation
    return activation.reshape(-1, 1, 1).expand(-1, unit_tile, unit_tile)


def render_channel_grid(
    activation: torch.Tensor,
    colormap: str = "signed",
    *,
    per_channel: bool = False,
    boost: float = 0.0,
    gamma: float = 1.0,
    aspect: float = 1.0,
    scale: int = 1,
) -> tuple[torch.Tensor, GridLayout]:
    """Every channel of a layer as a heatmap tile in one uint8 image."""
    maps = as_maps(activation)
    normalized = normalize_maps(maps, colormap, per_channel=per_channel, boost=boost, gamma=gamma)
    layout = grid_layout(maps.shape[0], maps.shape[1], maps.shape[2], aspect, scale)
    return tile_channels(apply_colormap(normalized, colormap), layout), layout


@dataclass(frozen=True)
class MapPeak:
    value: float
    cell: tuple[int, int]
    """(row, col) in the map."""
    frame_xy: tuple[int, int]
    """Centre of that cell in frame pixels."""


def locate_peak(flat_index: int, value: float, map_shape: tuple[int, int], crop) -> MapPeak:
    """The peak cell of a map and its centre in frame pixels, from numbers already on the host."""
    h, w = map_shape
    row, col = divmod(int(flat_index), w)
    x, y, cw, ch = crop
    return MapPeak(float(value), (row, col), (x + (2 * col + 1) * cw // (2 * w), y + (2 * row + 1) * ch // (2 * h)))


@lru_cache(maxsize=64)
def _interpolation_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D bilinear resampling (align_corners=False), as F.interpolate does it."""
    impulses = torch.eye(n_in, device=device)[None]
    return F.interpolate(impulses, size=n_out, mode="linear", align_corners=False)[0].T.contiguous()


@lru_cache(maxsize=64)
def _column_matrix(n_in: int, n_out: int, channels: int, device: torch.device) -> torch.Tensor:
    """(n_in * channels, n_out * channels): resamples the rows of an (h, w * channels) image."""
    eye = torch.eye(channels, device=device)
    return torch.kron(_interpolation_matrix(n_in, n_out, device).T.contiguous(), eye).contiguous()


def _resample_columns(image: torch.Tensor, width: int) -> torch.Tensor:
    """(h, w[, C]) -> float (h, width * C): the first, cheap half of a separable upsampling."""
    h, w = image.shape[:2]
    channels = image.shape[2] if image.dim() == 3 else 1
    return image.float().reshape(h, w * channels) @ _column_matrix(w, width, channels, image.device)


def upsample_bilinear(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(h, w) or (h, w, C) -> float (height, width[, C]), contiguous in that layout.

    Bilinear resampling is separable, so a small map becomes two matrix products that write the
    channels-last result directly (F.interpolate on a 3-channel image writes channels-first).
    Matches F.interpolate(mode="bilinear", align_corners=False).
    """
    rows = _interpolation_matrix(image.shape[0], height, image.device)
    out = rows @ _resample_columns(image, width)
    return out.view(height, width, *image.shape[2:])


def render_overlay(
    frame: torch.Tensor,
    normalized_map: torch.Tensor,
    crop: tuple[int, int, int, int],
    colormap: str = "signed",
    *,
    mode: str = "overlay",
    opacity: float = 0.8,
    mark_peak: bool = True,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """The selected channel's normalised map (h, w) upsampled onto the crop region of the full frame.

    `overlay` blends the coloured map with an opacity that grows with the response, so strong
    responses show in colour and silent regions show the frame; `mask` darkens the frame where the
    channel is not positively active, as in the Toolbox paper's face-unit figure. Colours are made at
    the map's own resolution and upsampled: far cheaper than colouring every frame pixel, and
    indistinguishable from it. `index`: the map's `colormap_index`, when the caller has it already.
    """
    x, y, w, h = crop
    out = _copy_outside(frame, crop)
    region = out[y : y + h, x : x + w]
    source = frame[y : y + h, x : x + w]
    opacity = max(0.0, min(1.0, opacity))
    if mode == "overlay":
        # premultiplied colours and the frame's weight, looked up together; both resample
        # linearly, so one upsampling of four channels serves the blend
        index = colormap_index(normalized_map, colormap) if index is None else index
        layers = torch.index_select(_overlay_lut(colormap, round(opacity, 3), frame.device), 0, index.flatten())
        upsampled = upsample_bilinear(layers.view(*normalized_map.shape, 4), h, w)
        region.copy_(torch.addcmul(upsampled[..., :3], source.float(), upsampled[..., 3:]))
    elif mode == "mask":
        weight = upsample_bilinear(normalized_map.clamp(0.0, 1.0), h, w)
        region.copy_(source.float().mul_(weight[..., None]))
    else:
        raise OptionError(f"unknown overlay mode {mode!r}; use overlay or mask")
    if mark_peak:
        _draw_ring(out, normalized_map.flatten().argmax(), tuple(normalized_map.shape), crop)
    return out


def _copy_outside(frame: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """A new image holding the frame outside the crop; the crop region is left for the caller."""
    x, y, w, h = crop
    out = torch.empty_like(frame)
    height, width = frame.shape[:2]
    if y > 0:
        out[:y] = frame[:y]
    if y + h < height:
        out[y + h :] = frame[y + h :]
    if x > 0:
        out[y : y + h, :x] = frame[y : y + h, :x]
    if x + w < width:
        out[y : y + h, x + w :] = frame[y : y + h, x + w :]
    return out


@lru_cache(maxsize=16)
def _ring_geometry(map_shape: tuple[int, int], crop: tuple[int, int, int, int], device: torch.device):
    """Cell centres in frame pixels (cells, 2, 1) and a 3 px thick ring's (dy, dx) offsets (2, K)."""
    x, y, w, h = crop
    mh, mw = map_shape
    rows, cols = np.divmod(np.arange(mh * mw), mw)
    centres = np.stack([y + (2 * rows + 1) * h // (2 * mh), x + (2 * cols + 1) * w // (2 * mw)], axis=1)
    radius = max(4, round(0.6 * max(w / mw, h / mh)))
    angles = np.linspace(0, 2 * np.pi, max(32, int(2 * np.pi * radius)))
    r = radius + np.array([-1.0, 0.0, 1.0])[:, None]
    offsets = np.stack([np.rint(r * np.sin(angles)).ravel(), np.rint(r * np.cos(angles)).ravel()])
    return (
        torch.from_numpy(centres[:, :, None]).long().to(device),
        torch.from_numpy(offsets).long().to(device),
    )


def _draw_ring(image: torch.Tensor, flat_index: torch.Tensor, map_shape: tuple[int, int], crop) -> None:
    """A ring around the peak cell; the peak index is looked up on the device, never copied back."""
    centres, offsets = _ring_geometry(map_shape, tuple(crop), image.device)
    points = centres[flat_index] + offsets
    points[0].clamp_(0, image.shape[0] - 1)
    points[1].clamp_(0, image.shape[1] - 1)
    image[points[0], points[1]] = _constant(MARKER_RGB, image.device)


@cache
def _constant(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.uint8, device=device)


def fit_within(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """An (H, W, 3) uint8 image shrunk (antialiased) to fit width x height; never enlarged."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    if scale >= 1 or width < 1 or height < 1:
        return image
    size = (max(1, int(h * scale)), max(1, int(w * scale)))
    nchw = image.permute(2, 0, 1).unsqueeze(0)
    if nchw.device.type == "cpu":
        out = F.interpolate(nchw.contiguous(memory_format=torch.channels_last), size=size, mode="bilinear",
                            antialias=True)  # fmt: skip
    else:
        out = F.interpolate(nchw.float(), size=size, mode="bilinear", antialias=True).round_().clamp_(0, 255).byte()
    return out[0].permute(1, 2, 0).contiguous()


def render_signed_input(network_input: torch.Tensor, scale: int = 1) -> torch.Tensor:
    """The normalised network input, one tile per input channel, in the signed colormap."""
    grid, _ = render_channel_grid(network_input, "signed", aspect=float(network_input.shape[0]) * 1.2, scale=scale)
    return grid
