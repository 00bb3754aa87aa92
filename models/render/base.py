"""Activations to pictures, on the device: array -> uint8 array renderers.

Every picture is made the same way. Activations are quantised to one of `LEVELS` colour levels by a
per-channel scale and offset (`level_transform`), and the levels are looked up in a 256-row table
whose last row is the grid's separator; gamma is folded into the table, so it costs nothing per frame.

`Renderer` holds the steps every renderer composes; `torch_renderer.TorchRenderer` runs them as torch ops
on the model's device (CUDA, MPS). On the CPU, `opencv_renderer.OpenCVRenderer` runs them as numpy and
OpenCV calls on the same memory: right after a forward pass has swept the caches, each torch op costs
tens of microseconds, several times the work itself. Both give the same levels and pictures within
a level or two (tested). Nothing here copies to the host; the pipeline copies each finished view once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from livevis.geometry import GridLayout, grid_layout, tile_of
from livevis.state import COLORMAPS

from ..errors import ColormapError, OptionError

__all__ = ["COLORMAPS", "GridLayout", "Renderer", "grid_layout", "tile_of"]

LEVELS = 255  # odd, so that zero falls exactly on the middle level of a signed colormap
SEPARATOR = LEVELS  # the table row after the last level
SEPARATOR_GRAY = 48
MARKER_RGB = (0, 255, 0)

CONCEPT_PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
        (170, 110, 40),
    ],
    dtype=np.uint8,
)
"""One colour per concept (up to 12), told apart at a glance: the first twelve of Sasha Trubetskoy's
twenty distinct colours, grey left out (a grey part would vanish into a grey frame)."""
CONCEPT_PALETTE.flags.writeable = False

# Signed red-white-blue: blue negative, white zero, red positive (ColorBrewer's RdBu ends).
_NEGATIVE_RGB = (33, 102, 172)
_POSITIVE_RGB = (178, 24, 43)


def _signed_colours(t: np.ndarray) -> np.ndarray:
    white = np.full(3, 255.0)
    negative = white + (-t).clip(0, 1)[:, None] * (np.array(_NEGATIVE_RGB) - white)
    positive = white + t.clip(0, 1)[:, None] * (np.array(_POSITIVE_RGB) - white)
    return np.where(t[:, None] < 0, negative, positive)


def _matplotlib_colours(name: str, t: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps[name](t)[:, :3] * 255.0


# name -> (RGB 0..255 of normalised responses, signed?)
_COLORMAPS = {
    "signed": (_signed_colours, True),
    "gray": (lambda t: np.repeat(t[:, None] * 255.0, 3, axis=1), False),
    "viridis": (lambda t: _matplotlib_colours("viridis", t), False),
    "inferno": (lambda t: _matplotlib_colours("inferno", t), False),
}
assert tuple(_COLORMAPS) == COLORMAPS, "every colormap the state offers has a table here"


def check_colormap(name: str) -> str:
    if name not in _COLORMAPS:
        raise ColormapError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return name


def is_signed(colormap: str) -> bool:
    return _COLORMAPS[check_colormap(colormap)][1]


def level_values(colormap: str, gamma: float = 1.0) -> np.ndarray:
    """The normalised response each level stands for, gamma applied: [-1, 1] signed, else [0, 1].

    `gamma` < 1 lifts weak responses (the Toolbox's gamma boost); the sign is kept.
    """
    if is_signed(colormap):
        t = np.linspace(-1.0, 1.0, LEVELS)
        return np.sign(t) * np.abs(t) ** gamma
    return np.linspace(0.0, 1.0, LEVELS) ** gamma


@lru_cache(maxsize=32)
def colormap_table(colormap: str, gamma: float = 1.0) -> np.ndarray:
    """(256, 3) uint8, read-only: the colour of each level, then the separator grey."""
    colours = _COLORMAPS[check_colormap(colormap)][0](level_values(colormap, gamma))
    table = np.vstack([np.rint(colours), np.full((1, 3), SEPARATOR_GRAY)]).astype(np.uint8)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=64)
def overlay_table(colormap: str, gamma: float, mode: str, opacity: float) -> np.ndarray:
    """(256, 4) float32, read-only: per level, the colour premultiplied by its opacity, and the frame's
    weight. `overlay` grows the opacity with the response's magnitude, so strong responses show in
    colour and silent ones show the frame; `mask` darkens the frame where the channel is not
    positively active, as in the Toolbox paper's face-unit figure; `heatmap` lays every level at the same
    opacity, so that low values read as low (dark) rather than vanish, as Grad-CAM is drawn (Selvaraju et
    al. 2017, pytorch-grad-cam's `show_cam_on_image`). The separator row leaves the frame.
    """
    values = level_values(colormap, gamma)
    opacity = max(0.0, min(1.0, opacity))
    if mode in ("overlay", "heatmap"):
        alpha = np.abs(values) * opacity if mode == "overlay" else np.full(LEVELS, opacity)
        colour = colormap_table(colormap, gamma)[:LEVELS] * alpha[:, None]
        weight = 1.0 - alpha
    elif mode == "mask":
        colour = np.zeros((LEVELS, 3))
        weight = values.clip(0.0, 1.0)
    else:
        raise OptionError(f"unknown overlay mode {mode!r}; use overlay or mask")
    table = np.vstack([np.hstack([colour, weight[:, None]]), [[0.0, 0.0, 0.0, 1.0]]]).astype(np.float32)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=32)
def _device_colour_table(colormap: str, gamma: float, device: torch.device) -> torch.Tensor:
    return torch.tensor(colormap_table(colormap, gamma), device=device)


def level_transform(low, high, colormap: str, *, per_channel: bool = False, boost: float = 0.0):
    """(scale, offset) that take raw activations to levels: level = x * scale + offset, per channel
    or, where every channel shares them, as scalars (0-d).

    `low` and `high` are per-channel minima and maxima (numpy or torch: only operators both share).
    Per layer (the Toolbox's default) all channels share one scale, so weak channels look weak.
    `boost` in [0, 1] is the Toolbox's per-channel boost: each channel is first divided by its own
    span to that power (1 = per-channel normalisation). Signed colormaps keep zero on the middle level.
    """
    top = LEVELS - 1
    if per_channel:
        boost = 1.0
    if is_signed(colormap):
        floor, span, full, base = 0.0, high.clip(min=-low), top / 2, top / 2  # span: the largest |x|
    else:
        floor = low if boost > 0 else low.min()
        span, full, base = high - floor, top, 0.0
    span = span.clip(min=1e-12)
    if boost == 0:  # one scale for the layer, a scalar: a renderer can quantize in a single pass
        scale = full / span.max()
    else:  # divided by span ** boost, each channel peaks at span ** (1 - boost); the largest is the top
        scale = full / (span if boost == 1 else span**boost * (span ** (1.0 - boost)).max())
    return scale, base - floor * scale


@dataclass(frozen=True)
class MapPeak:
    value: float
    cell: tuple[int, int]
    """(row, col) in the map."""
    frame_xy: tuple[int, int]
    """Centre of that cell in frame pixels."""


def crop_box(crop) -> tuple[int, int, int, int]:
    """(x, y, w, h) of a crop given as a `CropRect` or as such a tuple."""
    if hasattr(crop, "w") and hasattr(crop, "h"):
        return int(crop.x), int(crop.y), int(crop.w), int(crop.h)
    x, y, w, h = crop
    return int(x), int(y), int(w), int(h)


def cell_centre(flat_index: int, map_shape: tuple[int, int], crop) -> tuple[int, int]:
    """(x, y) in frame pixels of the centre of a map cell, the map spread over the crop."""
    h, w = map_shape
    row, col = divmod(int(flat_index), w)
    x, y, cw, ch = crop
    return x + (2 * col + 1) * cw // (2 * w), y + (2 * row + 1) * ch // (2 * h)


def locate_peak(flat_index: int, value: float, map_shape: tuple[int, int], crop) -> MapPeak:
    """The peak cell of a map and its centre in frame pixels, from numbers already on the host."""
    return MapPeak(float(value), divmod(int(flat_index), map_shape[1]), cell_centre(flat_index, map_shape, crop))


def ring_radius(map_shape: tuple[int, int], crop: tuple[int, int, int, int]) -> int:
    """The peak marker's radius: a little over half a cell; the ring is 3 px thick around it."""
    return max(4, round(0.6 * max(crop[2] / map_shape[1], crop[3] / map_shape[0])))


@lru_cache(maxsize=16)
def ring_geometry(map_shape: tuple[int, int], crop: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every cell's centre in frame pixels (cells, 2, 1) as (y, x), and the ring's (dy, dx) offsets (2, K)."""
    cells = np.arange(map_shape[0] * map_shape[1])
    centres = np.array([cell_centre(i, map_shape, crop)[::-1] for i in cells])
    radius = ring_radius(map_shape, crop)
    angles = np.linspace(0, 2 * np.pi, max(32, int(2 * np.pi * radius)))
    r = radius + np.array([-1.0, 0.0, 1.0])[:, None]
    offsets = np.stack([np.rint(r * np.sin(angles)).ravel(), np.rint(r * np.cos(angles)).ravel()])
    return centres[:, :, None].astype(np.int64), offsets.astype(np.int64)


def cell_indices(cells: int, pixels: int) -> np.ndarray:
    """For each of `pixels` pixels, the map cell it shows: cells spread evenly (13 cells over 32 pixels: each
    cell 2 or 3 pixels)."""
    return (np.arange(pixels) * cells) // pixels


class Renderer(ABC):
    """The steps of a picture on one kind of array, and the pictures composed from them.

    Arrays are the renderer's own kind (`asarray` makes one from a tensor): maps are (C, N) float32,
    levels uint8, images (H, W, 3) uint8.
    """

    @abstractmethod
    def asarray(self, tensor: torch.Tensor):
        """The renderer's own kind of array for a tensor, without a copy where one can be avoided."""

    @abstractmethod
    def channel_stats(self, maps):
        """Per-channel minimum, maximum and mean of (C, N) maps."""

    @abstractmethod
    def quantize(self, maps, scale, offset):
        """(C, N) maps -> (C, N) uint8 levels: x * scale + offset, rounded half to even, in [0, LEVELS)."""

    @abstractmethod
    def colorize(self, levels, colormap: str, gamma: float = 1.0):
        """uint8 levels of any shape -> (..., 3) uint8 colours; SEPARATOR gives the separator grey."""

    @abstractmethod
    def full(self, shape: tuple[int, int], value: int, like):
        """A new uint8 array of `shape` filled with `value`, of the kind and on the device of `like`."""

    @abstractmethod
    def enlarge(self, image, scale: int):
        """An (H, W) image repeated `scale` times along both axes (nearest neighbour)."""

    @abstractmethod
    def resample(self, tiles, height: int, width: int):
        """(C, h, w) tiles -> (C, height, width), each pixel the map cell it falls in (nearest neighbour)."""

    def tile_channels(self, tiles, layout: GridLayout):
        """(C, h, w) levels -> one (H, W) level image with 1 px SEPARATOR lines between the tiles.

        The tiles are copied straight into a strided view of the finished image: one write of the grid.
        numpy and torch share the indexing used here, so both renderers tile with this one code.
        """
        if layout.cell_h:  # drawn at the cells' size: each map cell repeated 1 or more times (nearest neighbour)
            tiles = self.resample(tiles, layout.cell_h, layout.cell_w)
        c, h, w = tiles.shape
        rows, cols = layout.rows, layout.cols
        scale = 1 if layout.cell_h else layout.scale
        grid = self.full((layout.height // scale, layout.width // scale), SEPARATOR, like=tiles)
        cells = grid[1:, 1:].reshape(rows, h + 1, cols, w + 1)[:, :h, :, :w]
        full_rows, rest = divmod(c, cols)
        if full_rows:
            cells[:full_rows] = tiles[: full_rows * cols].reshape(full_rows, cols, h, w).swapaxes(1, 2)
        if rest:
            cells[full_rows, :, :rest] = tiles[full_rows * cols :].swapaxes(0, 1)
        return self.enlarge(grid, scale) if scale > 1 else grid

    @abstractmethod
    def peak_index(self, maps, channel: int):
        """Flat index of the channel's largest value (stays on the device where it is one)."""

    @abstractmethod
    def render_overlay(
        self,
        frame,
        levels,
        crop: tuple[int, int, int, int],
        colormap: str = "signed",
        *,
        mode: str = "overlay",
        opacity: float = 0.8,
        gamma: float = 1.0,
        peak_index=None,
    ):
        """The selected channel's (h, w) levels upsampled (bilinear) onto the crop region of the frame.

        See `overlay_table` for the two modes. Colours and weights are looked up at the map's own
        resolution and upsampled: far cheaper than colouring every frame pixel, and indistinguishable.
        `peak_index`, the flat index of the map's peak cell, gets a ring; None draws none.
        """

    @abstractmethod
    def render_concepts(self, frame, maps, colours, crop: tuple[int, int, int, int], *, opacity: float = 0.8):
        """A segmentation of the crop region into concepts: each map cell takes the colour of its strongest
        concept, with that concept's strength (its (K, h, w) map, in [0, 1]) times `opacity` as the colour's
        opacity; colour and opacity are upsampled (bilinear) from the map's cells, as the overlay's are.
        `colours`: (K, 3) float32 RGB, one row per concept, of the renderer's kind."""

    @abstractmethod
    def fit_within(self, image, width: int, height: int):
        """An (H, W, 3) uint8 image shrunk smoothly to fit width x height; never enlarged."""

    @abstractmethod
    def mark_cells(self, image, cells, map_shape: tuple[int, int], crop: tuple[int, int, int, int]):
        """Rings, as the peak's, around map cells (flat indices) of a map spread over the crop; in place."""

    @abstractmethod
    def paste(self, frame, picture, crop: tuple[int, int, int, int]):
        """A copy of the frame with an (h, w, 3) uint8 picture resized (bilinear) into the crop region."""

    @staticmethod
    def maps_of(activation):
        """A layer's output as (C, N) maps plus the (h, w) tile each channel is drawn as.

        (C, H, W) gives H x W tiles; an (F,) vector gives one UNIT_TILE square tile per unit.
        """
        return activation.reshape(activation.shape[0], -1), tile_of(tuple(activation.shape))

    @abstractmethod
    def as_tiles(self, levels, tile: tuple[int, int]):
        """(C, N) levels -> (C, h, w): the maps themselves, or each unit's level over its whole tile."""

    def levels(self, maps, low, high, colormap: str, *, per_channel: bool = False, boost: float = 0.0):
        """(C, N) maps -> uint8 levels on the scale `level_transform` gives for their minima and maxima."""
        return self.quantize(maps, *level_transform(low, high, colormap, per_channel=per_channel, boost=boost))

    def grid_image(self, levels, tile: tuple[int, int], layout: GridLayout, colormap: str, gamma: float = 1.0):
        """(C, N) levels -> the grid of their tiles in colour, one uint8 RGB image."""
        return self.colorize(self.tile_channels(self.as_tiles(levels, tile), layout), colormap, gamma)

    def channel_grid(
        self,
        activation,
        colormap: str = "signed",
        *,
        per_channel: bool = False,
        boost: float = 0.0,
        gamma: float = 1.0,
        aspect: float = 1.0,
        scale: int = 1,
    ) -> tuple:
        """Every channel of a layer as a heatmap tile in one uint8 RGB image, and its layout."""
        maps, tile = self.maps_of(activation)
        low, high, _ = self.channel_stats(maps)
        levels = self.levels(maps, low, high, colormap, per_channel=per_channel, boost=boost)
        layout = grid_layout(maps.shape[0], *tile, aspect, scale)
        return self.grid_image(levels, tile, layout, colormap, gamma), layout

    def signed_input(self, network_input, scale: int = 1):
        """The normalised network input, one tile per input channel, in the signed colormap."""
        grid, _ = self.channel_grid(network_input, "signed", aspect=float(network_input.shape[0]) * 1.2, scale=scale)
        return grid
