"""The unit atlas as a result, and its cache: stored atlases, their sidecars, and the checkpoints of a run.

`Atlas` (with its `AtlasEntry` rows) is what mining returns and what is stored; `MinedFolder` describes a
stored run for listings. An atlas is keyed by the model, its weights' fingerprint, the layer, the
preprocessing and the folder, written atomically as an .npz with a JSON sidecar that listings read
without the arrays, and read back only while the folder's signature still matches. A run's running top-k
is checkpointed to the same cache so that an interrupted run resumes where it stopped. A stored file that
cannot be read is set aside and made again (`cache.read_entry`); a damaged sidecar is written again from
its atlas.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..cache import cache_folder, read_entry
from ..data.tensors import TENSOR_SUFFIXES
from ..engine import Engine
from ..errors import InputError, OptionError
from ..layers import LayerInfo
from .folder import FolderListing, Item, list_folder
from .topk import FIELDS, RunningTop

T = TypeVar("T")


def atlas_dir() -> Path:
    """Next to the embeddings cache (LIVEVIS_CACHE, else ~/.cache/livevis)."""
    return cache_folder("atlas")


# ---------------------------------------------------------------------------------------------
# The atlas


@dataclass(frozen=True)
class AtlasEntry:
    image: str
    """Relative to the mined folder."""
    frame: int | None
    value: float
    at: tuple[int, int]
    """(row, col) of the peak in the layer's map."""
    box: tuple[int, int, int, int]
    """(x, y, w, h) of the unit's receptive field in the original image's pixels."""
    input_box: tuple[int, int, int, int]
    """(x0, y0, x1, y1), x1 and y1 excluded, in network-input pixels."""
    path: Path

    @property
    def name(self) -> str:
        return Item(self.image, self.frame).name


@dataclass
class Atlas:
    """Every channel's top images of one layer over one folder. Arrays are channels x k; -1: no entry."""

    model: str
    weights: str
    layer: str
    """Module path."""
    layer_name: str
    folder: Path
    top: int
    video_step: int | None
    images: int
    """Images (and video frames) read."""
    skipped: list[tuple[str, str]]
    """(relative path, why) of every file not mined."""
    item_paths: list[str]
    item_frames: np.ndarray
    """The items the entries refer to: relative path and frame (-1 for an image)."""
    items: np.ndarray
    values: np.ndarray
    at: np.ndarray
    """C x k x 2: (row, col)."""
    boxes: np.ndarray
    """C x k x 4: (x, y, w, h) in the original image."""
    input_boxes: np.ndarray
    """C x k x 4: (x0, y0, x1, y1) in network-input pixels."""
    means: np.ndarray | None = None
    """C: each channel's mean over every cell of every image read (None in an atlas mined before it was kept)."""
    created: float = field(default_factory=time.time)
    cached: bool = False

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    def entries(self, channel: int) -> list[AtlasEntry]:
        """The channel's top images, best first."""
        out = []
        for j in range(self.items.shape[1]):
            index = int(self.items[channel, j])
            if index < 0:
                break
            frame = int(self.item_frames[index])
            out.append(
                AtlasEntry(
                    self.item_paths[index],
                    None if frame < 0 else frame,
                    float(self.values[channel, j]),
                    tuple(int(v) for v in self.at[channel, j]),
                    tuple(int(v) for v in self.boxes[channel, j]),
                    tuple(int(v) for v in self.input_boxes[channel, j]),
                    self.folder / self.item_paths[index],
                )
            )
        return out

    def as_dict(self) -> dict:
        """The `livevis mine --json` object."""
        channels = []
        for channel in range(self.channels):
            top = []
            for entry in self.entries(channel):
                row = {"image": entry.image, "value": entry.value, "at": list(entry.at), "box": list(entry.box)}
                if entry.frame is not None:
                    row["frame"] = entry.frame
                top.append(row)
            channels.append({"channel": channel, "top": top})
        return {
            "model": self.model,
            "weights": self.weights,
            "layer": self.layer_name,
            "layer_path": self.layer,
            "folder": str(self.folder),
            "images": self.images,
            "skipped": [name for name, _ in self.skipped],
            "channels": channels,
        }


@dataclass(frozen=True)
class MinedFolder:
    folder: Path
    images: int
    top: int
    video_step: int | None
    created: float
    current: bool
    """The folder's files are still those that were mined (False: the atlas is stale and would be re-mined)."""


def _identity(engine: Engine, fingerprint: str, layer: LayerInfo) -> dict:
    """What an atlas depends on besides the folder: the model, its weights, the layer, the preprocessing."""
    spec = engine.spec
    return {
        "model": engine.name,
        "weights": engine.weights.source,
        "fingerprint": fingerprint,
        "layer": layer.path,
        "input_size": spec.input_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "in_channels": spec.in_channels,
    }


def _run_key(identity: dict, folder: Path, top: int, video_step: int | None, suffixes: dict) -> dict:
    return {**identity, "folder": str(folder.resolve()), "top": top, "video_step": video_step, "suffixes": suffixes}


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:24]


def _save_npz(file: Path, **arrays) -> None:
    """Written to a temporary file and renamed: a reader never sees half a file."""
    temporary = file.with_name(file.name + ".partial.npz")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, **arrays)
        temporary.replace(file)
    except OSError:  # a cache that cannot be written costs the next run time, nothing else
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _write_text(file: Path, text: str) -> None:
    temporary = file.with_name(file.name + ".partial")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text)
        temporary.replace(file)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def atlas_meta(atlas: Atlas) -> dict:
    """What an atlas stores besides its arrays (sidecars and listings read it without them)."""
    return {
        "model": atlas.model,
        "weights": atlas.weights,
        "layer": atlas.layer,
        "layer_name": atlas.layer_name,
        "folder": str(atlas.folder),
        "top": atlas.top,
        "video_step": atlas.video_step,
        "images": atlas.images,
        "skipped": atlas.skipped,
        "created": atlas.created,
    }


def atlas_arrays(atlas: Atlas) -> dict[str, np.ndarray]:
    paths = np.array(atlas.item_paths, dtype=str) if atlas.item_paths else np.zeros(0, dtype="<U1")
    return {
        "item_paths": paths,
        "item_frames": atlas.item_frames,
        "items": atlas.items,
        "values": atlas.values,
        "at": atlas.at,
        "boxes": atlas.boxes,
        "input_boxes": atlas.input_boxes,
        **({} if atlas.means is None else {"means": atlas.means}),
    }


def atlas_from(meta: dict, arrays: dict[str, np.ndarray]) -> Atlas:
    """The stored atlas back from what `atlas_meta` and `atlas_arrays` wrote."""
    return Atlas(
        meta["model"],
        meta["weights"],
        meta["layer"],
        meta["layer_name"],
        Path(meta["folder"]),
        meta["top"],
        meta["video_step"],
        meta["images"],
        [tuple(s) for s in meta["skipped"]],
        [str(p) for p in arrays["item_paths"]],
        arrays["item_frames"],
        arrays["items"],
        arrays["values"],
        arrays["at"],
        arrays["boxes"],
        arrays["input_boxes"],
        arrays.get("means"),
        meta["created"],
        cached=True,
    )


def store_with_sidecar(file: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """`file` (.npz: the arrays and the meta) and its .json sidecar (the meta alone), each written atomically."""
    _save_npz(file, meta=np.array(json.dumps(meta)), **arrays)
    _write_text(file.with_suffix(".json"), json.dumps(meta))  # read by listings without the arrays


def read_stored(
    file: Path, signature: str | None = None, make: Callable[[dict, dict[str, np.ndarray]], T] | None = None
) -> T | None:
    """What `make(meta, arrays)` builds of a stored file (by default the pair itself); None where there is
    none or the folder changed since. A file that cannot be read, or that `make` fails on, is set aside."""

    def read(path: Path):
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if signature is not None and meta["signature"] != signature:
                return None
            arrays = {name: data[name] for name in data.files if name != "meta"}
        return (meta, arrays) if make is None else make(meta, arrays)

    return read_entry(file, read)


def _store_atlas(atlas: Atlas, key: dict, signature: str) -> None:
    store_with_sidecar(
        atlas_dir() / f"{_hash(key)}.npz",
        {"key": key, "signature": signature, **atlas_meta(atlas)},
        atlas_arrays(atlas),
    )


def _read_atlas(file: Path, signature: str | None = None) -> Atlas | None:
    """The stored atlas; None where there is none, it cannot be read, or the folder changed since."""
    return read_stored(file, signature, atlas_from)


SIDECAR_FIELDS = {"key": dict, "signature": str, "folder": str, "images": int, "top": int, "created": (int, float)}
"""What listings read of a sidecar."""


def _checked_meta(meta) -> dict:
    """An atlas's meta as listings need it; ValueError where it is not."""
    if not isinstance(meta, dict):
        raise ValueError(f"a JSON {type(meta).__name__}, not an object")
    for name, kind in SIDECAR_FIELDS.items():
        if not isinstance(meta.get(name), kind):
            raise ValueError(f"{name!r} missing or of the wrong type")
    if "video_step" not in meta:
        raise ValueError("'video_step' missing")
    return meta


def _sidecar(file: Path) -> dict | None:
    """An atlas's sidecar; where it cannot be read, written again from the atlas's own copy of it."""
    meta = read_entry(file, lambda path: _checked_meta(json.loads(path.read_text())))
    if meta is None:
        meta = read_stored(file.with_suffix(".npz"), make=lambda meta, _arrays: _checked_meta(meta))
        if meta is not None:
            _write_text(file, json.dumps(meta))
    return meta


def _stored_runs(identity: dict) -> list[dict]:
    """Sidecars of the atlases made with this model, weights, layer and preprocessing, newest first."""
    found = []
    for sidecar in atlas_dir().glob("*.json"):
        meta = _sidecar(sidecar)
        if meta is not None and all(meta["key"].get(k) == v for k, v in identity.items()):
            found.append({**meta, "file": sidecar.with_suffix(".npz")})
    return sorted(found, key=lambda meta: -meta["created"])


def _listing_of(meta: dict) -> FolderListing | None:
    suffixes = meta["key"]["suffixes"]
    with contextlib.suppress(InputError, OptionError):
        return list_folder(
            meta["folder"],
            meta["video_step"],
            image_suffixes=suffixes["images"],
            video_suffixes=suffixes["videos"],
            tensor_suffixes=suffixes.get("tensors", TENSOR_SUFFIXES),
        )
    return None


# ---------------------------------------------------------------------------------------------
# Checkpoints of a run


@dataclass(frozen=True)
class _Progress:
    """A consistent point to resume from: replaced whole after every batch, never changed in place."""

    tops: dict[str, RunningTop]
    done: int
    read: int
    failed: tuple[tuple[str, str], ...]


def _save_checkpoint(file: Path, state: _Progress, signature: str) -> None:
    arrays = {
        f"{i}.{name}": value for i, top in enumerate(state.tops.values()) for name, value in top.to_numpy().items()
    }
    meta = {
        "signature": signature,
        "layers": list(state.tops),
        "done": state.done,
        "read": state.read,
        "failed": list(state.failed),
    }
    _save_npz(file, meta=np.array(json.dumps(meta)), **arrays)


def _load_checkpoint(file: Path, layers: list[str], signature: str, device: torch.device) -> _Progress | None:
    """None where there is none, it is of another run, or it cannot be read (the run starts from the beginning)."""

    def make(meta: dict, arrays: dict[str, np.ndarray]) -> _Progress | None:
        if meta["layers"] != layers:
            return None
        tops = {
            path: RunningTop.from_numpy(
                {name: arrays[f"{i}.{name}"] for name in (*FIELDS, "sums", "cells") if f"{i}.{name}" in arrays}, device
            )
            for i, path in enumerate(layers)
        }
        return _Progress(tops, meta["done"], meta["read"], tuple(tuple(f) for f in meta["failed"]))

    return read_stored(file, signature, make)
