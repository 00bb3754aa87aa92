"""Concepts as pictures: the command line's figure (the segmented frame over its legend), a fitted concept's
top crops from its folder, and an image optimised along a concept's channel vector."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ..atlas.mosaics import atlas_crops, mosaic
from ..atlas.store import AtlasEntry
from ..dream.cache import CACHE_VERSION, read_cached, write_cached
from ..dream.objectives import direction
from ..dream.run import DEFAULT_STEPS, optimise
from ..engine import Engine
from ..progress import Progress
from .dataset import ConceptSet, concepts_dir
from .summary import ConceptsSummary

ROW = 44
"""Height of one legend row in the figure."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, colour=(235, 235, 235)) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def concepts_figure(segmented: np.ndarray, summary: ConceptsSummary, title: str) -> np.ndarray:
    """The segmented frame (enlarged to at least 640 wide) over one legend row per concept: its colour, its
    share of the map, its top channels' tiles and numbers, and its top classes where there are any."""
    height, width = segmented.shape[:2]
    zoom = max(1.0, 640 / width)
    frame = cv2.resize(segmented, (round(width * zoom), round(height * zoom)), interpolation=cv2.INTER_LINEAR)
    width = max(frame.shape[1], 640)
    tile = ROW - 8
    canvas = np.full((28 + frame.shape[0] + ROW * len(summary.concepts) + 30, width, 3), 24, np.uint8)
    _text(canvas, title, 8, 19, 0.5)
    canvas[28 : 28 + frame.shape[0], : frame.shape[1]] = frame
    top = 28 + frame.shape[0]
    for number, concept in enumerate(summary.concepts, 1):
        y = top + (number - 1) * ROW + 4
        canvas[y : y + tile, 8 : 8 + tile] = concept.rgb
        _text(canvas, str(number), 8 + tile // 2 - 5, y + tile // 2 + 6, 0.55, (0, 0, 0))
        _text(canvas, f"{concept.share:4.0%}", 52, y + tile // 2 + 5)
        x = 100
        for picture in concept.tiles:
            canvas[y : y + tile, x : x + tile] = cv2.resize(picture, (tile, tile), interpolation=cv2.INTER_NEAREST)
            x += tile + 3
        channels = "channels " + ", ".join(str(c) for c, _ in concept.channels)
        _text(canvas, channels, x + 8, y + 14)
        if concept.classes:
            classes = ", ".join(f"{label} {p:.2f}" for label, p in concept.classes)
            _text(canvas, classes, x + 8, y + 32, 0.45, concept.rgb)
    _text(canvas, summary.note, 8, canvas.shape[0] - 10, 0.42, (170, 170, 170))
    return canvas


def concept_crops(
    found: ConceptSet, index: int, read: Callable[[AtlasEntry], np.ndarray], tile: int = 96
) -> list[np.ndarray]:
    """The receptive-field crops of a fitted concept's top images in its folder, strongest first, as tiles
    (`atlas.mosaics.mosaic` lays them out)."""
    return atlas_crops(found.atlas, index, read, tile)


def crops_strip(tiles: list[np.ndarray], count: int = 3) -> np.ndarray:
    """The first crops side by side: a legend row's picture of its concept."""
    return mosaic(tiles[:count], columns=count, tile=tiles[0].shape[0]) if tiles else np.zeros((1, 1, 3), np.uint8)


def _image_file(found: ConceptSet, index: int, steps: int, seed: int) -> Path:
    key = {
        "version": CACHE_VERSION,
        "concepts": str(found.file),
        "created": found.created,
        "concept": index,
        "steps": steps,
        "seed": seed,
    }
    return concepts_dir() / "images" / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]}.npz"


def cached_concept_image(
    found: ConceptSet, index: int, *, steps: int = DEFAULT_STEPS, seed: int = 0
) -> np.ndarray | None:
    stored = read_cached(_image_file(found, index, steps, seed))
    return None if stored is None else stored[0]


def concept_image(
    engine: Engine,
    found: ConceptSet,
    index: int,
    *,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    progress: Progress | None = None,
    preview_every: int | None = None,
    on_preview: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """An image that maximises the concept's channel vector (Lucid's recipe), stored beside the concepts."""
    cached = cached_concept_image(found, index, steps=steps, seed=seed)
    if cached is not None:
        return cached
    objective = direction(found.layer, found.channels[index])
    result = optimise(
        engine, objective, steps=steps, seed=seed, progress=progress, preview_every=preview_every, on_preview=on_preview
    )
    write_cached(_image_file(found, index, steps, seed), result.image, result.objective[:, 0], result.seconds)
    return result.image
