"""Receptive fields of any model's units, from the support of a probe network's input gradient.

A unit's receptive field is the set of input pixels its value depends on. The gradient of the
unit with respect to the input is non-zero only there, but with real (or random) weights it can
vanish inside the field too: a ReLU that is off, a max-pool that picked another element, a positive
and a negative path that cancel. So the gradient is taken through a *probe*, a copy of the model in
which nothing can vanish:

- every weight is the positive constant 1 / fan-in and every bias is 0 (no cancellation, and values
  stay near the input's scale at any depth); batch-norm statistics are reset to the identity;
- every max-pool becomes an average pool of the same window (the gradient reaches the whole window);
- the input is a small positive constant, so every activation is positive and every pointwise
  non-linearity (ReLU, ReLU6 below its cap, SiLU, GELU, Hardswish, sigmoid) passes gradient;
- global poolings (`AdaptiveAvgPool2d`/`AdaptiveMaxPool2d` to 1x1, as in squeeze-excitation) are
  detached: global context scales a unit but does not locate what it responds to;
- group, layer and instance norms (which mix all positions through their statistics) become identities;
- float32, redone in float64 where the smallest contribution found comes near float32's underflow
  (a deep field's edge is a product of many 1 / fan-in): a vanished edge would shrink the box.

The support of the probe's gradient is then exactly the set of pixels some path connects to the
unit: the theoretical receptive field, clipped to the input (zero padding lies outside it). This
holds for any composition of convolutions (strided, dilated, grouped), poolings, pointwise
activations, additions, concatenations and resizes, whatever the model's code looks like.

Boxes of a map are separable for such models (a unit's columns depend on its column only, its rows
on its row only), so the probe runs on the map's diagonal and checks two corners against that; a
model where the check fails gets every position probed. Results are cached on disk (they depend
on the architecture, the layer and the input size only, never on weights or images).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..cache import read_entry
from ..engine import CropRect
from ..layers import as_maps, layout_of
from ..transformers.tokens import TokenLayout

PROBE_INPUT = 1e-3
"""Small enough that sums of many positive paths stay under ReLU6's cap of 6."""


@dataclass(frozen=True)
class ReceptiveFields:
    """Every map position's box in network-input pixels: `boxes[row, col] = (x0, y0, x1, y1)`, x1 and y1 excluded."""

    layer: str
    input_size: int | tuple[int, int]
    """S for the square S x S input of a photo, (H, W) for a tensor input of its own size."""
    boxes: np.ndarray

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = (int(v) for v in self.boxes[row, col])
        return x0, y0, x1, y1

    def in_image(self, row: int, col: int, crop: CropRect) -> tuple[int, int, int, int]:
        """The box as (x, y, w, h) in the original image's pixels, through the centre crop and the resize."""
        return box_in_image(self.box(row, col), crop, self.input_size)


def input_shape(input_size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the network input: S x S for a photo's square, a tensor input's own H x W."""
    return (input_size, input_size) if isinstance(input_size, int) else (int(input_size[0]), int(input_size[1]))


def box_in_image(
    box: tuple[int, int, int, int], crop: CropRect, input_size: int | tuple[int, int]
) -> tuple[int, int, int, int]:
    """Network-input pixel edges scaled by the resize, then shifted by the crop; rounded outwards.
    `input_size`: S (square input) or (H, W); a tensor input's crop is the whole input: its boxes stay as they are."""
    x0, y0, x1, y1 = box
    height, width = input_shape(input_size)
    scale_x, scale_y = crop.w / width, crop.h / height
    left, top = int(np.floor(crop.x + x0 * scale_x)), int(np.floor(crop.y + y0 * scale_y))
    right = min(crop.x + crop.w, int(np.ceil(crop.x + x1 * scale_x)))
    bottom = min(crop.y + crop.h, int(np.ceil(crop.y + y1 * scale_y)))
    return left, top, right - left, bottom - top


class _ReachedLayer(Exception):
    """Stops the probe's forward at the layer: nothing after it matters."""


class _Detached(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).detach()


_NORMS_MIXING_POSITIONS = (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.LocalResponseNorm)


UNDERFLOW_GUARD = {torch.float32: 1e-30, torch.float64: 0.0}
"""Below this smallest non-zero gradient the probe's precision is not trusted (float32's tiniest normal is 1e-38)."""


class _Underflow(Exception):
    pass


def _probe_model(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    probe = copy.deepcopy(model).cpu().to(dtype).eval()
    for parent in list(probe.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
            elif isinstance(child, nn.AdaptiveMaxPool2d | nn.AdaptiveAvgPool2d):
                size = child.output_size
                if size == 1 or size == (1, 1):
                    setattr(parent, name, _Detached(nn.AdaptiveAvgPool2d(1)))
                else:
                    setattr(parent, name, nn.AdaptiveAvgPool2d(size))
            elif isinstance(child, _NORMS_MIXING_POSITIONS):
                setattr(parent, name, nn.Identity())
    with torch.no_grad():
        for name, parameter in probe.named_parameters():
            if parameter.dim() >= 2:
                parameter.fill_(1.0 / parameter[0].numel())
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.fill_(1.0)
        for name, buffer in probe.named_buffers():
            if name.endswith("running_mean"):
                buffer.zero_()
            elif name.endswith("running_var"):
                buffer.fill_(1.0)
    return probe.requires_grad_(False)


def _supports(
    probe: nn.Module,
    layer: str,
    in_shape: tuple[int, int, int],
    positions: list[tuple[int, int]],
    layout: TokenLayout | None = None,
):
    """The bounding boxes of the probe's input-gradient support, one per (row, col), in one batched pass; a
    transformer's tokens are read as maps through `layout`."""
    captured: dict[str, torch.Tensor] = {}

    def stop(_module, _inputs, output):
        captured["out"] = as_maps(output, layout)
        raise _ReachedLayer

    handle = probe.get_submodule(layer).register_forward_hook(stop)
    dtype = next(probe.parameters()).dtype
    x = torch.full((len(positions), *in_shape), PROBE_INPUT, dtype=dtype, requires_grad=True)
    try:
        with torch.enable_grad(), contextlib.suppress(_ReachedLayer):
            probe(x)
        out = captured["out"]
        rows = torch.tensor([r for r, _ in positions])
        cols = torch.tensor([c for _, c in positions])
        units = out[torch.arange(len(positions)), 0, rows, cols]
        (gradient,) = torch.autograd.grad(units.sum(), x)
    finally:
        handle.remove()
    magnitude = gradient.abs().amax(1)  # N x S x S
    support = magnitude > 0
    if support.any() and float(magnitude[support].min()) < UNDERFLOW_GUARD[dtype]:
        raise _Underflow
    boxes = []
    for mask in support:
        ys, xs = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
        if len(ys) == 0:  # a unit of global context only: it sees everything
            boxes.append((0, 0, in_shape[2], in_shape[1]))
        else:
            boxes.append((int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1))
    return boxes


def compute_receptive_fields(
    model: nn.Module, layer: str, map_size: tuple[int, int], input_size: int | tuple[int, int], in_channels: int = 3
) -> ReceptiveFields:
    """Every position's box for the layer's (H, W) map, for an S x S input or an (H, W) one; see the module's
    docstring for the method."""
    layout = layout_of(model, layer)
    try:
        return _compute(_probe_model(model, torch.float32), layer, map_size, input_size, in_channels, layout)
    except _Underflow:
        return _compute(_probe_model(model, torch.float64), layer, map_size, input_size, in_channels, layout)


def _compute(
    probe: nn.Module,
    layer: str,
    map_size: tuple[int, int],
    input_size: int | tuple[int, int],
    in_channels: int,
    layout: TokenLayout | None = None,
):
    height, width = map_size
    in_shape = (in_channels, *input_shape(input_size))
    diagonal = [(min(i, height - 1), min(i, width - 1)) for i in range(max(height, width))]
    corners = [(0, width - 1), (height - 1, 0)]
    found = _supports(probe, layer, in_shape, diagonal + corners, layout)
    columns = {c: (box[0], box[2]) for (_, c), box in zip(diagonal, found, strict=False)}
    rows = {r: (box[1], box[3]) for (r, _), box in zip(diagonal, found, strict=False)}
    boxes = np.zeros((height, width, 4), np.int64)
    for r in range(height):
        for c in range(width):
            boxes[r, c] = (columns[c][0], rows[r][0], columns[c][1], rows[r][1])
    separable = all(tuple(boxes[r, c]) == box for (r, c), box in zip(corners, found[len(diagonal) :], strict=True))
    if not separable:
        every = [(r, c) for r in range(height) for c in range(width)]
        for start in range(0, len(every), 64):
            chunk = every[start : start + 64]
            for (r, c), box in zip(chunk, _supports(probe, layer, in_shape, chunk, layout), strict=True):
                boxes[r, c] = box
    return ReceptiveFields(layer, input_size, boxes)


def architecture_key(model: nn.Module) -> str:
    """The architecture alone (module tree and parameter shapes), never the weights."""
    shapes = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    text = repr(model) + json.dumps(shapes)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_MEMORY: dict[tuple, ReceptiveFields] = {}


def receptive_fields(
    model: nn.Module,
    layer: str,
    map_size: tuple[int, int],
    input_size: int | tuple[int, int],
    in_channels: int = 3,
    cache_folder: Path | None = None,
) -> ReceptiveFields:
    """`compute_receptive_fields`, remembered in memory and, given a folder, on disk."""
    input_size = input_size if isinstance(input_size, int) else input_shape(input_size)
    key = (architecture_key(model), layer, tuple(map_size), input_size, in_channels)
    if key in _MEMORY:
        return _MEMORY[key]
    file = None
    if cache_folder is not None:
        name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        file = Path(cache_folder) / f"{name}.npy"
        boxes = read_entry(file, lambda path: _read_boxes(path, tuple(map_size)), cache=Path(cache_folder))
        if boxes is not None:
            _MEMORY[key] = ReceptiveFields(layer, input_size, boxes)
            return _MEMORY[key]
    fields = compute_receptive_fields(model, layer, map_size, input_size, in_channels)
    _MEMORY[key] = fields
    if file is not None:
        temporary = file.with_suffix(".partial.npy")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            np.save(temporary, fields.boxes)
            temporary.replace(file)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return fields


def _read_boxes(path: Path, map_size: tuple[int, int]) -> np.ndarray:
    """Stored boxes, one (x0, y0, x1, y1) per cell of the map their file name was made for."""
    boxes = np.load(path, allow_pickle=False)
    if boxes.shape != (*map_size, 4) or not np.issubdtype(boxes.dtype, np.integer):
        raise ValueError(f"boxes of {boxes.dtype} {boxes.shape} for a map of {map_size[0]} x {map_size[1]}")
    return boxes
