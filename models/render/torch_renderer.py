"""The renderer for accelerators (CUDA, MPS): every step a torch op on the tensors' device, nothing
leaves it until the pipeline copies each finished view once. On the CPU, `opencv_renderer.OpenCVRenderer`
draws the same pictures with numpy and OpenCV (tested side by side)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .base import (
    LEVELS,
    MARKER_RGB,
    Renderer,
    _device_colour_table,
    cell_indices,
    check_colormap,
    overlay_table,
    ring_geometry,
)


@lru_cache(maxsize=64)
def _device_overlay_table(colormap: str, gamma: float, mode: str, opacity: float, device: torch.device) -> torch.Tensor:
    """`overlay_table` on the device, colours + 0.5 so that the final cast to uint8 rounds."""
    return torch.tensor(overlay_table(colormap, gamma, mode, opacity) + np.float32([0.5, 0.5, 0.5, 0.0]), device=device)


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


def upsample_bilinear(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(h, w) or (h, w, C) -> float (height, width[, C]), contiguous in that layout.

    Bilinear resampling is separable, so a small map becomes two matrix products that write the
    channels-last result directly (F.interpolate on a 3-channel image writes channels-first).
    Matches F.interpolate(mode="bilinear", align_corners=False).
    """
    h, w = image.shape[:2]
    channels = image.shape[2] if image.dim() == 3 else 1
    columns = image.float().reshape(h, w * channels) @ _column_matrix(w, width, channels, image.device)
    out = _interpolation_matrix(h, height, image.device) @ columns
    return out.view(height, width, *image.shape[2:])


def fit_within(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """An (H, W, 3) uint8 image shrunk (antialiased) to fit width x height; never enlarged."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    if scale >= 1 or width < 1 or height < 1:
        return image
    size = (max(1, int(h * scale)), max(1, int(w * scale)))
    nchw = image.permute(2, 0, 1).unsqueeze(0)
    if nchw.device.type == "cpu":
        out = F.interpolate(
            nchw.contiguous(memory_format=torch.channels_last), size=size, mode="bilinear", antialias=True
        )
    else:
        out = F.interpolate(nchw.float(), size=size, mode="bilinear", antialias=True).round_().clamp_(0, 255).byte()
    return out[0].permute(1, 2, 0).contiguous()


class TorchRenderer(Renderer):
    """Every step a torch op on the tensors' device; nothing leaves it."""

    def asarray(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def channel_stats(self, maps):
        maps = maps.float()
        low, high = maps.aminmax(dim=1)
        return low, high, maps.mean(1)

    def quantize(self, maps, scale, offset):
        levels = maps.float() * scale.reshape(-1, 1) + torch.as_tensor(offset).reshape(-1, 1)
        return levels.round_().clamp_(0, LEVELS - 1).to(torch.uint8)

    def colorize(self, levels, colormap: str, gamma: float = 1.0):
        table = _device_colour_table(check_colormap(colormap), gamma, levels.device)
        return torch.index_select(table, 0, levels.flatten().long()).view(*levels.shape, 3)

    def full(self, shape, value, like):
        return torch.full(shape, value, dtype=torch.uint8, device=like.device)

    def enlarge(self, image, scale):
        return image.repeat_interleave(scale, 0).repeat_interleave(scale, 1)

    def resample(self, tiles, height, width):
        rows = torch.as_tensor(cell_indices(tiles.shape[1], height), device=tiles.device)
        cols = torch.as_tensor(cell_indices(tiles.shape[2], width), device=tiles.device)
        return tiles[:, rows][:, :, cols]

    def as_tiles(self, levels, tile):
        if levels.shape[1] == tile[0] * tile[1]:
            return levels.reshape(-1, *tile)
        return levels.reshape(-1, 1, 1).expand(-1, *tile)

    def peak_index(self, maps, channel: int):
        return maps[channel].argmax()

    def render_overlay(
        self, frame, levels, crop, colormap="signed", *, mode="overlay", opacity=0.8, gamma=1.0, peak_index=None
    ):
        # premultiplied colours and the frame's weight, looked up together (+0.5 in the table rounds the cast)
        table = _device_overlay_table(check_colormap(colormap), gamma, mode, round(opacity, 3), frame.device)
        rows = torch.index_select(table, 0, levels.flatten().long()).view(*levels.shape, 4)
        out = _blended(frame, rows, crop)
        if peak_index is not None:
            # the peak index is looked up on the device, never copied back
            centres, offsets, marker = _device_ring(tuple(levels.shape), tuple(crop), frame.device)
            points = centres[peak_index] + offsets
            points[0].clamp_(0, out.shape[0] - 1)
            points[1].clamp_(0, out.shape[1] - 1)
            out[points[0], points[1]] = marker
        return out

    def mark_cells(self, image, cells, map_shape, crop):
        if len(cells):
            centres, offsets, marker = _device_ring(tuple(map_shape), tuple(crop), image.device)
            index = torch.as_tensor(list(cells), device=image.device, dtype=torch.long)
            points = (centres[index] + offsets).transpose(0, 1).reshape(2, -1)
            points[0].clamp_(0, image.shape[0] - 1)
            points[1].clamp_(0, image.shape[1] - 1)
            image[points[0], points[1]] = marker
        return image

    def render_concepts(self, frame, maps, colours, crop, *, opacity=0.8):
        strength, dominant = maps.float().max(0)
        alpha = strength.clamp(0.0, 1.0) * max(0.0, min(1.0, opacity))
        rows = torch.cat([colours[dominant] * alpha[..., None] + 0.5, (1.0 - alpha)[..., None]], dim=2)
        return _blended(frame, rows, crop)

    def fit_within(self, image, width: int, height: int):
        return fit_within(image, width, height)

    def paste(self, frame, picture, crop):
        x, y, w, h = crop
        out = frame.clone()
        resized = F.interpolate(
            picture.permute(2, 0, 1)[None].float(), size=(h, w), mode="bilinear", align_corners=False
        )
        out[y : y + h, x : x + w] = resized[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8)
        return out


@lru_cache(maxsize=16)
def _device_ring(map_shape: tuple[int, int], crop: tuple[int, int, int, int], device: torch.device):
    centres, offsets = ring_geometry(map_shape, crop)
    marker = torch.tensor(MARKER_RGB, dtype=torch.uint8)
    return torch.from_numpy(centres).to(device), torch.from_numpy(offsets).to(device), marker.to(device)


def _blended(frame: torch.Tensor, rows: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """A copy of the frame with (h, w, 4) rows (premultiplied colour + 0.5, the frame's weight) upsampled onto
    the crop and blended: both resample linearly, so one upsampling of four channels serves the blend."""
    x, y, w, h = crop
    out = _copy_outside(frame, crop)
    upsampled = upsample_bilinear(rows, h, w)
    source = frame[y : y + h, x : x + w]
    out[y : y + h, x : x + w] = torch.addcmul(upsampled[..., :3], source.float(), upsampled[..., 3:])
    return out


def _copy_outside(frame: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """A new image holding the frame outside the crop; the crop region is left to the caller."""
    x, y, w, h = crop
    out = torch.empty_like(frame)
    out[:y] = frame[:y]
    out[y + h :] = frame[y + h :]
    out[y : y + h, :x] = frame[y : y + h, :x]
    out[y : y + h, x + w :] = frame[y : y + h, x + w :]
    return out
