"""Concepts of a folder: fitted once on a mined folder's maps at a layer, then only placed on each frame.

As CRAFT (Fel et al. 2023) and Lucid's ChannelReducer do, a layer's maps over a whole folder are factorised
once: each image's map made non-negative as a live frame's is (its channels' minima subtracted), a bounded
sample of its cells taken, and the sample factorised by the same NMF as a frame. The K channel vectors are
then fixed: a frame is only placed on them (non-negative least squares), so a concept keeps its identity and
its colour for good. A second pass places every image of the folder and keeps, per concept, the images where
it is strongest, with the box of the image its strongest cell sees (the atlas's running top-k and receptive
fields); its mean strength there is the concept's full scale on a frame.

Stored beside the atlas in the cache folder, keyed by the model, its weights, the layer, the preprocessing,
the folder and K, and read back only while the folder's files are those that were fitted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atlas.data import FrameDataset, Reader, _collate_tensors, _quiet_worker, _worker_context, read_with_opencv
from ..atlas.folder import FolderListing, check_one_kind, list_folder
from ..atlas.mining import _build_atlas
from ..atlas.store import (
    Atlas,
    _hash,
    _identity,
    atlas_arrays,
    atlas_dir,
    atlas_from,
    atlas_meta,
    read_stored,
    store_with_sidecar,
)
from ..atlas.topk import RunningTop, batch_candidates, capture_layers, weights_fingerprint
from ..cache import read_per_version
from ..engine import Engine
from ..errors import InputError, OptionError
from ..layers import LayerInfo
from ..progress import Progress, report
from .nmf import EPSILON, Factors, check_concept_count, factorise, like, min_shifted, project, relative_error

SAMPLE_ROWS = 60_000
"""Map cells factorised at most (spread evenly over the images): memory and time stay bounded."""
TOP = 9
VERSION = 1
"""Bumped when a change makes stored concepts wrong."""


def concepts_dir() -> Path:
    """Beside the atlases they are fitted on."""
    return atlas_dir() / "concepts"


def check_layer(layer: LayerInfo, k: int) -> None:
    """Concepts cut a map into parts: a layer without one (a vector), or with fewer cells than concepts, is
    refused with what to do."""
    check_concept_count(k)
    if not layer.is_spatial or layer.shape[1] * layer.shape[2] < 2:
        what = f"outputs {layer.shape[0]} values" if not layer.is_spatial else "has a 1 x 1 map"
        raise OptionError(f"concepts need a layer with spatial maps; {layer.name} {what}: choose an earlier layer")
    cells = layer.shape[1] * layer.shape[2]
    if cells < k:
        raise OptionError(
            f"{layer.name} has {cells} map cells, fewer than {k} concepts: ask for fewer concepts "
            "or choose an earlier layer"
        )


@dataclass
class ConceptSet:
    """K concepts of one layer fitted on one folder, fixed for good."""

    model: str
    weights: str
    layer: str
    """Module path."""
    layer_name: str
    folder: Path
    channels: np.ndarray
    """K x C float32, non-negative: the channels each concept is made of."""
    scales: np.ndarray
    """(K,) float32: each concept's mean peak strength on its top images, its full opacity on a frame."""
    error: float
    """Relative error of the fit on its sample of cells."""
    images: int
    atlas: Atlas
    """Per concept (as per channel in a unit atlas), its top images in the folder and where."""
    file: Path | None = None
    created: float = field(default_factory=time.time)
    cached: bool = False

    @property
    def k(self) -> int:
        return self.channels.shape[0]

    def place(self, V) -> Factors:
        """A frame's V (C x N, non-negative) on the fixed concepts: maps on the concepts' own scale (1: as
        strong as on its top images), the channels rescaled so that their product still rebuilds V."""
        if V.shape[0] != self.channels.shape[1]:
            raise OptionError(f"these concepts have {self.channels.shape[1]} channels; the layer has {V.shape[0]}")
        W = like(self.channels.T, V)
        H = project(V, W)
        scales = like(self.scales, V)
        return Factors(W.T * scales.reshape(-1, 1), H / scales.reshape(-1, 1))


# ---------------------------------------------------------------------------------------------
# Fitting


def _maps_of_folder(
    engine: Engine,
    listing: FolderListing,
    layer: LayerInfo,
    *,
    tensors: bool,
    batch_size: int,
    workers: int,
    reader: Reader,
    progress: Progress | None,
    what: str,
    share: slice = slice(None),
):
    """Per batch: [(item indices, layer maps N x C x h x w, image heights, widths)], and the items that failed;
    `share` picks the items read (every world-th from rank under torchrun), indices staying the listing's."""
    items = list(enumerate(listing.items))[share]
    dataset = FrameDataset(
        listing.folder,
        items,
        engine.spec.input_size,
        reader,
        engine.spec.in_channels if tensors else None,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        worker_init_fn=_quiet_worker if workers else None,
        multiprocessing_context=_worker_context() if workers else None,
        collate_fn=_collate_tensors if tensors else None,
    )
    done = 0
    report(progress, what, 0, len(items))
    for indices, frames, heights, widths, errors in loader:
        failed = [(listing.items[int(indices[i])].name, error) for i, error in enumerate(errors) if error]
        groups: dict[tuple, list[int]] = {}
        for i, error in enumerate(errors):
            if not error:
                groups.setdefault(tuple(frames[i].shape) if tensors else (), []).append(i)
        batches = []
        for group in groups.values():
            chosen = torch.tensor(group)
            batch = torch.stack([frames[i] for i in group]) if tensors else frames[chosen]
            maps = capture_layers(engine, batch.to(engine.device), [layer.path], tensors=tensors)[layer.path]
            batches.append((indices[chosen], maps, heights[chosen], widths[chosen]))
        yield batches, failed
        done += len(errors)
        report(progress, what, done, len(items))


def _key(engine: Engine, layer: LayerInfo, listing: FolderListing, k: int, top: int, seed: int) -> dict:
    identity = _identity(engine, weights_fingerprint(engine.model), layer)
    return {
        **identity,
        "folder": str(listing.folder.resolve()),
        "k": k,
        "top": top,
        "seed": seed,
        "sample": SAMPLE_ROWS,
        "version": VERSION,
    }


def fit_concepts(
    engine: Engine,
    folder: str | Path,
    layer: str | None,
    k: int,
    *,
    top: int = TOP,
    video_step: int | None = None,
    batch_size: int = 32,
    workers: int = 0,
    reader: Reader | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> ConceptSet:
    """The k concepts of a layer over a folder's images (stored and reused), with each one's top images.

    Two passes over the folder (`progress` hears both, and cancels by answering False): the first samples
    cells and fits, the second places every image on the fitted concepts to rank them."""
    info = engine.layer(layer)
    check_layer(info, k)
    listing = list_folder(folder, video_step)
    if not listing.items:
        raise InputError(f"{folder} holds no images to fit concepts on")
    tensors = check_one_kind(listing)
    key = _key(engine, info, listing, k, top, seed)
    file = concepts_dir() / f"{_hash(key)}.npz"
    if use_cache:
        stored = read_concept_set(file, listing.signature)
        if stored is not None:
            return stored
    reader = reader or read_with_opencv
    rng = np.random.default_rng(seed)
    per_image = max(1, SAMPLE_ROWS // len(listing.items))
    sample, failed = [], []
    passes = {"tensors": tensors, "batch_size": batch_size, "workers": workers, "reader": reader, "progress": progress}
    for batches, missed in _maps_of_folder(engine, listing, info, what=f"sampling {info.name}", **passes):
        failed += missed
        for _, maps, _, _ in batches:
            for activation in maps:
                V, _ = min_shifted(activation.float())
                cells = V.shape[1]
                chosen = rng.choice(cells, per_image, replace=False) if cells > per_image else slice(None)
                sample.append(V[:, chosen].cpu())
    if not sample:
        raise InputError(f"none of the {len(listing.items)} files in {folder} could be read")
    V = torch.cat(sample, dim=1).to(engine.device)
    what = f"factorising {V.shape[1]} cells of {info.name} in {k} concepts"
    fitted = factorise(V, k, progress=progress and (lambda _what, done, total: progress(what, done, total)))
    W = fitted.channels.T
    error = relative_error(V, W, fitted.maps)
    del V, sample
    running = RunningTop.empty(top, k, engine.device)
    read = 0
    for batches, _ in _maps_of_folder(engine, listing, info, what=f"placing the folder on {k} concepts", **passes):
        for indices, maps, heights, widths in batches:
            placed = torch.stack([project(min_shifted(a.float())[0], W) for a in maps])
            placed = placed.reshape(len(maps), k, *maps.shape[2:])
            running = running.merged(batch_candidates(placed, indices, heights, widths))
            read += len(maps)
    skipped = sorted([*listing.skipped, *failed])
    atlas = _build_atlas(engine, info, listing, running, read, skipped, video_step, tensors)
    peaks = np.where(np.isfinite(atlas.values), atlas.values, np.nan)
    scales = np.nan_to_num(np.nanmean(peaks, axis=1), nan=1.0).clip(min=EPSILON).astype(np.float32)
    found = ConceptSet(
        engine.name,
        engine.weights.source,
        info.path,
        info.name,
        listing.folder,
        fitted.channels.float().cpu().numpy(),
        scales,
        error,
        read,
        atlas,
        file,
    )
    _store(found, key, listing.signature)
    return found


# ---------------------------------------------------------------------------------------------
# The store


def _store(found: ConceptSet, key: dict, signature: str) -> None:
    meta = {
        "key": key,
        "signature": signature,
        **atlas_meta(found.atlas),
        "k": found.k,
        "error": found.error,
        "created": found.created,
    }
    store_with_sidecar(
        found.file, meta, {**atlas_arrays(found.atlas), "channels": found.channels, "scales": found.scales}
    )


def read_concept_set(file: str | Path, signature: str | None = None) -> ConceptSet | None:
    """The stored concepts; None where there are none, they cannot be read (the file is then set aside, and
    they are fitted again), or the folder changed since."""

    def make(meta: dict, arrays: dict[str, np.ndarray]) -> ConceptSet:
        return ConceptSet(
            meta["model"],
            meta["weights"],
            meta["layer"],
            meta["layer_name"],
            Path(meta["folder"]),
            arrays["channels"],
            arrays["scales"],
            meta["error"],
            meta["images"],
            atlas_from(meta, arrays),
            Path(file),
            meta["created"],
            cached=True,
        )

    return read_stored(Path(file), signature, make)


_read_once = read_per_version(read_concept_set)


def concept_set_at(file: str | Path) -> ConceptSet:
    """The stored concepts of a file, read once per version of it (every frame places on them)."""
    found = _read_once(file)
    if found is None:
        raise InputError(f"no stored concepts in {file}: fit them again on their folder")
    return found


def load_concepts(
    engine: Engine,
    folder: str | Path,
    layer: str | None,
    k: int,
    *,
    top: int = TOP,
    video_step: int | None = None,
    seed: int = 0,
) -> ConceptSet | None:
    """The stored concepts of a folder for the running model, weights and layer, if its files are still
    those that were fitted; else None (fit them)."""
    info = engine.layer(layer)
    listing = list_folder(folder, video_step)
    return read_concept_set(
        concepts_dir() / f"{_hash(_key(engine, info, listing, k, top, seed))}.npz", listing.signature
    )
