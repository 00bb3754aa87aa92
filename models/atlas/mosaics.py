"""The atlas as pictures: per unit, a mosaic of the receptive-field crops of its top images, and a
mosaic of what in each drives the unit: their Zeiler-Fergus deconvolutions (the unit alone seeded with 1.0),
or their guided backpropagation where a network's deconvolution does not depend on the image."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..data.tensors import is_tensor_frame, tensor_display
from ..engine import Engine
from .mining import Atlas, AtlasEntry, crop_and_resize

TILE = 96
GAP = 2


def fit_tile(image: np.ndarray, tile: int = TILE) -> np.ndarray:
    """The image scaled to fit a tile x tile square (aspect kept), centred on black."""
    height, width = image.shape[:2]
    scale = tile / max(height, width, 1)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((tile, tile, 3), np.uint8)
    y, x = (tile - size[1]) // 2, (tile - size[0]) // 2
    out[y : y + size[1], x : x + size[0]] = resized if resized.ndim == 3 else resized[..., None]
    return out


def crop_tile(image: np.ndarray, box: tuple[int, int, int, int], tile: int = TILE) -> np.ndarray:
    """The (x, y, w, h) box of an RGB image, as a tile."""
    x, y, w, h = box
    return fit_tile(np.ascontiguousarray(image[y : y + h, x : x + w]), tile)


def atlas_crops(atlas, index: int, read, tile: int = TILE) -> list[np.ndarray]:
    """The receptive-field crops of a unit's top images in its folder (an atlas's `index`-th channel, concept
    or feature), strongest first, as tiles; `read(entry)` gives an entry's image or tensor."""
    tiles = []
    for entry in atlas.entries(index):
        frame = read(entry)
        tiles.append(crop_tile(tensor_display(frame) if is_tensor_frame(frame) else frame, entry.box, tile))
    return tiles


SATURATED = 0.01
"""The share of a gradient picture's largest magnitudes drawn at full strength: gradients are heavy-tailed
(a few pixels several times the rest), and scaled by their very largest value they come out a flat grey."""


def gradient_picture(gradient: torch.Tensor | np.ndarray) -> np.ndarray:
    """C x H x W gradient as RGB uint8: grey is zero, signs and order kept, scaled so that the largest
    SATURATED of the magnitudes reach full strength (the Toolbox's view, with its outliers clipped as
    Captum's `visualize_image_attr` clips them). One channel is grey; two (a tensor input's) are red and
    green over zero blue; past three, the first three."""
    g = gradient.detach().float().cpu().numpy() if isinstance(gradient, torch.Tensor) else np.asarray(gradient)
    g = np.transpose(g, (1, 2, 0))
    if g.shape[2] == 1:
        g = np.repeat(g, 3, axis=2)
    elif g.shape[2] == 2:
        g = np.concatenate([g, np.zeros_like(g[..., :1])], axis=2)
    else:
        g = g[..., :3]
    magnitudes = np.abs(g)
    peak = float(np.quantile(magnitudes, 1.0 - SATURATED)) or float(magnitudes.max())  # mostly zero: the max
    scaled = 0.5 + 0.5 * np.clip(g / peak, -1.0, 1.0) if peak > 0 else np.full_like(g, 0.5)
    return np.clip(scaled * 255 + 0.5, 0, 255).astype(np.uint8)


def mosaic(tiles: list[np.ndarray], columns: int = 3, tile: int = TILE) -> np.ndarray:
    """Tiles in rows of `columns` (3 x 3 for nine), empty places black."""
    rows = max(1, math.ceil(len(tiles) / columns))
    out = np.zeros((rows * tile + (rows - 1) * GAP, columns * tile + (columns - 1) * GAP, 3), np.uint8)
    for i, image in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (tile + GAP) : r * (tile + GAP) + tile, c * (tile + GAP) : c * (tile + GAP) + tile] = image
    return out


def unit_backprop(
    engine: Engine, frame: np.ndarray, layer: str, channel: int, at: tuple[int, int] | None, mode: str = "deconv"
) -> torch.Tensor:
    """One unit's (channel at row, col) input gradient under `mode`'s ReLU rule for one image, preprocessed as
    the live view does: C x S x S; for a tensor input (float32 C x H x W), on the tensor as it is."""
    from ..attribution.backprop import unit_gradient

    if is_tensor_frame(frame):
        x = engine.tensor_input(frame)
    else:
        resized, _ = crop_and_resize(frame, engine.spec.input_size)
        x, _ = engine.preprocess(resized.to(engine.device))
    return unit_gradient(engine.model, x, layer, channel, mode, at=at).gradient[0]


def deconvolution_sees_the_image(engine: Engine, layer: str) -> bool:
    """Whether a unit's deconvolution at `layer` depends on the image at all (see
    `attribution.deconvolution_sees_the_input`)."""
    from ..attribution.backprop import deconvolution_sees_the_input

    return deconvolution_sees_the_input(engine.model, layer, engine.layers[0].shape, engine.layer(layer).shape)


@dataclass(frozen=True)
class UnitMosaics:
    crops: np.ndarray
    """The receptive-field crops of the unit's top images."""
    gradients: np.ndarray | None
    """What drives the unit in each (None without an engine)."""
    method: str
    """deconv, or guided where the network's deconvolution does not depend on the image."""


def unit_mosaics(
    engine: Engine | None,
    atlas: Atlas,
    channel: int,
    read: Callable[[AtlasEntry], np.ndarray],
    tile: int = TILE,
) -> UnitMosaics:
    """The crops of one channel's top images and what drives the unit in each (no gradients without an
    engine). `read` gives an RGB photo, or a tensor input (float32 C x H x W) whose crops are cut from a
    picture of it."""
    method = "deconv" if engine is None or deconvolution_sees_the_image(engine, atlas.layer) else "guided"
    crops, gradients = [], []
    columns = max(1, math.ceil(math.sqrt(atlas.top)))
    for entry in atlas.entries(channel):
        frame = read(entry)
        crops.append(crop_tile(tensor_display(frame) if is_tensor_frame(frame) else frame, entry.box, tile))
        if engine is not None:
            gradient = unit_backprop(engine, frame, atlas.layer, channel, entry.at, method)
            x0, y0, x1, y1 = entry.input_box
            gradients.append(fit_tile(gradient_picture(gradient[:, y0:y1, x0:x1]), tile))
    mosaic_of_gradients = mosaic(gradients, columns, tile) if engine is not None else None
    return UnitMosaics(mosaic(crops, columns, tile), mosaic_of_gradients, method)


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        from ..errors import OutputError

        raise OutputError(f"cannot write {path}")
