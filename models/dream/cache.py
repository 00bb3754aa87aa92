"""The cache of optimised images: one file per channel, under a key of everything that makes the image.

The key holds the model, its weights and preprocessing, the layer, the channel and the request's settings,
with `CACHE_VERSION`; a change of recipe that makes old images wrong bumps the version. Writes go through a
temporary file, and an unreadable entry is only a miss (set aside, and made again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cache import cache_folder, read_entry
from ..engine import Engine

if TYPE_CHECKING:
    from .run import DreamRequest

CACHE_VERSION = 2
"""Bumped when a change to the recipe makes old cached images wrong."""


def dreams_dir() -> Path:
    """Beside the embeddings cache: LIVEVIS_CACHE, else the user's cache folder."""
    return cache_folder("dreams")


def cache_file(engine: Engine, request: DreamRequest, unit: int) -> Path:
    key = {
        "version": CACHE_VERSION,
        "model": engine.name,
        "weights": engine.weights.source,
        "input_size": engine.spec.input_size,
        "mean": engine.spec.mean,
        "std": engine.spec.std,
        "layer": request.layer.path,
        "channel": unit,
        **request.settings(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return dreams_dir() / f"{digest}.npz"


def read_cached(path: Path) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A cached channel's image, objective and seconds; None where there is none or it cannot be read."""
    return read_entry(path, _read_dream)


def _read_dream(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    with np.load(path, allow_pickle=False) as data:
        image, objective, seconds = data["image"], data["objective"], float(data["seconds"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or objective.ndim != 1:
        raise ValueError(f"an image of {image.dtype} {image.shape} and an objective of shape {objective.shape}")
    return image, objective, seconds


def write_cached(path: Path, image: np.ndarray, objective: np.ndarray, seconds: float) -> None:
    temporary = path.with_suffix(".partial.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, image=image, objective=objective, seconds=seconds)
        temporary.replace(path)
    except OSError:  # a cache that cannot be written only costs the next run time
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
