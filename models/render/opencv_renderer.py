"""The CPU renderer: numpy and OpenCV on the memory the model's tensors already use.

Each step is one fused OpenCV kernel or one numpy expression where torch would run several ops;
what it draws matches `TorchRenderer` to a level (tested side by side).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

from .base import (
    MARKER_RGB,
    Renderer,
    cell_centre,
    cell_indices,
    check_colormap,
    colormap_table,
    overlay_table,
    ring_radius,
)


@lru_cache(maxsize=64)
def _overlay_tables_u8(colormap: str, gamma: float, mode: str, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Two (256, 3) uint8 tables: the premultiplied colour, and the frame's weight x 255 per channel."""
    table = overlay_table(colormap, gamma, mode, opacity)
    colour = np.rint(table[:, :3]).astype(np.uint8)
    weight = np.rint(np.repeat(table[:, 3:] * 255.0, 3, axis=1)).astype(np.uint8)
    return colour, weight


@lru_cache(maxsize=8)
def _averaging_weights(length: int) -> np.ndarray:
    return np.full(length, 1.0 / length, dtype=np.float32)


class OpenCVRenderer(Renderer):
    """numpy arrays in, numpy arrays out; CPU tensors become arrays without a copy."""

    def __init__(self):
        self._upsampled: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _blend(self, region: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> None:
        """region = colour + region * weight / 255 in place, the (h, w, 3) uint8 premultiplied colour and frame
        weight upsampled (bilinear) from the map's cells to the region: four fused uint8 passes. The upsampled
        pair is written into buffers kept for the region's size: two fresh frame-sized arrays a frame would
        cost their page faults, several times the work itself."""
        key = region.shape[:2]
        if key not in self._upsampled:
            if len(self._upsampled) >= 4:  # a window being resized: keep only the sizes of late
                self._upsampled.clear()
            self._upsampled[key] = (np.empty((*key, 3), np.uint8), np.empty((*key, 3), np.uint8))
        colour_up, weight_up = self._upsampled[key]
        size = (region.shape[1], region.shape[0])
        cv2.resize(colour, size, dst=colour_up, interpolation=cv2.INTER_LINEAR)
        cv2.resize(weight, size, dst=weight_up, interpolation=cv2.INTER_LINEAR)
        cv2.multiply(region, weight_up, dst=region, scale=1.0 / 255.0)
        cv2.add(region, colour_up, dst=region)

    def asarray(self, tensor: torch.Tensor) -> np.ndarray:
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            tensor = tensor.float()
        return tensor.detach().numpy() if tensor.is_contiguous() else tensor.detach().contiguous().numpy()

    def channel_stats(self, maps):
        # the mean as a matrix-vector product: BLAS, several times faster than a reduction over rows
        return maps.min(1), maps.max(1), maps @ _averaging_weights(maps.shape[1])

    def quantize(self, maps, scale, offset):
        # addWeighted computes x * a + b, rounds half to even (as torch.round) and saturates to uint8 in
        # one pass; levels never round past LEVELS - 1, so the separator row stays unused
        if np.size(scale) == 1 and np.size(offset) == 1:  # one scale for the whole layer
            scale, offset = np.asarray(scale).item(), np.asarray(offset).item()
            return cv2.addWeighted(maps, scale, maps, 0.0, offset, dtype=cv2.CV_8U)
        levels = maps * np.reshape(scale, (-1, 1)).astype(np.float32)
        levels += np.reshape(offset, (-1, 1)).astype(np.float32)
        return cv2.addWeighted(levels, 1.0, levels, 0.0, 0.0, dtype=cv2.CV_8U)

    def colorize(self, levels, colormap: str, gamma: float = 1.0):
        rows = np.ascontiguousarray(levels).reshape(levels.shape[0] if levels.ndim > 1 else 1, -1)
        return cv2.applyColorMap(rows, colormap_table(colormap, gamma)[:, None]).reshape(*levels.shape, 3)

    def as_tiles(self, levels, tile):
        if levels.shape[1] == tile[0] * tile[1]:
            return levels.reshape(-1, *tile)
        return np.broadcast_to(levels.reshape(-1, 1, 1), (levels.shape[0], *tile))

    def full(self, shape, value, like):
        return np.full(shape, value, dtype=np.uint8)

    def enlarge(self, image, scale):
        return image.repeat(scale, 0).repeat(scale, 1)

    def resample(self, tiles, height, width):
        rows, cols = cell_indices(tiles.shape[1], height), cell_indices(tiles.shape[2], width)
        return tiles[:, rows][:, :, cols]

    def peak_index(self, maps, channel: int):
        return int(maps[channel].argmax())

    def render_overlay(
        self, frame, levels, crop, colormap="signed", *, mode="overlay", opacity=0.8, gamma=1.0, peak_index=None
    ):
        x, y, w, h = crop
        out = frame.copy()  # one streaming copy; the crop is then blended in place, hot in the cache
        region = out[y : y + h, x : x + w]
        # region = colour + region * weight in four fused uint8 passes: two resizes, multiply, add
        colour, weight = _overlay_tables_u8(check_colormap(colormap), gamma, mode, round(opacity, 3))
        self._blend(region, colour[levels], weight[levels])
        if peak_index is not None:
            centre = cell_centre(peak_index, levels.shape, crop)
            # thickness 2 draws the same 3 px ring as `ring_geometry`'s offsets (OpenCV rounds outwards)
            cv2.circle(out, centre, ring_radius(levels.shape, crop), MARKER_RGB, thickness=2)
        return out

    def mark_cells(self, image, cells, map_shape, crop):
        for index in cells:
            cv2.circle(
                image, cell_centre(int(index), map_shape, crop), ring_radius(map_shape, crop), MARKER_RGB, thickness=2
            )
        return image

    def render_concepts(self, frame, maps, colours, crop, *, opacity=0.8):
        x, y, w, h = crop
        out = frame.copy()
        dominant = maps.argmax(0)
        strength = np.take_along_axis(maps, dominant[None], 0)[0]
        alpha = np.clip(strength, 0.0, 1.0) * max(0.0, min(1.0, opacity))
        colour = np.rint(colours[dominant] * alpha[..., None]).astype(np.uint8)
        weight = np.repeat(np.rint((1.0 - alpha) * 255.0).astype(np.uint8)[..., None], 3, axis=2)
        self._blend(out[y : y + h, x : x + w], colour, weight)
        return out

    def paste(self, frame, picture, crop):
        x, y, w, h = crop
        out = frame.copy()
        region = out[y : y + h, x : x + w]
        # resized straight into the frame's crop: no second full-size picture to copy over
        resized = cv2.resize(np.ascontiguousarray(picture), (w, h), dst=region, interpolation=cv2.INTER_LINEAR)
        if resized is not region:  # OpenCV could not write there (a crop past the frame's edge): numpy says why
            region[...] = resized
        return out

    def fit_within(self, image, width: int, height: int):
        h, w = image.shape[:2]
        scale = min(width / w, height / h)
        if scale >= 1 or width < 1 or height < 1:
            return image
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        # Down to half size, bilinear sampling already averages every source pixel it needs and
        # costs a quarter of an antialiased resize; further down, area averaging keeps it alias-free.
        interpolation = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
        return cv2.resize(image, size, interpolation=interpolation)
