"""Each learnt feature as pictures: its top crops from the folder it was learnt on (the atlas's machinery:
a running top-k of each feature's codes, receptive fields, crop boxes), an image optimised along its decoder
direction (models.dream), and its top classes where the layer feeds the classifier (as the concepts' head)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..atlas.data import Reader, read_with_opencv
from ..atlas.folder import check_one_kind, list_folder
from ..atlas.mining import _build_atlas
from ..atlas.mosaics import atlas_crops, mosaic, write_png
from ..atlas.store import Atlas, _hash, atlas_arrays, atlas_from, atlas_meta, read_stored, store_with_sidecar
from ..atlas.topk import RunningTop, batch_candidates
from ..cache import cache_folder
from ..concepts.head import classifier_head, concept_classes, feeds_head
from ..dream.objectives import direction
from ..dream.run import optimise
from ..engine import Engine
from ..errors import InputError
from ..progress import Progress
from .sae import SparseAutoencoder, check_fits, read_features

TOP = 9


def feature_atlas(
    engine: Engine,
    sae: SparseAutoencoder,
    file: str | Path,
    *,
    folder: str | Path | None = None,
    top: int = TOP,
    reader: Reader | None = None,
    progress: Progress | None = None,
) -> Atlas:
    """Every feature's `top` images of the folder (the one it was learnt on by default), ranked by the
    feature's strongest code in the image, with the box of the image that cell sees; its `means` are each
    feature's mean code over every cell. Stored in the cache, keyed by the file and the folder's files."""
    from ..concepts.dataset import _maps_of_folder

    info = engine.layer(sae.layer or None)
    check_fits(sae, info, file)
    listing = list_folder(folder or sae.meta.get("folder", ""))
    if not listing.items:
        raise InputError(f"{listing.folder} holds no images to rank the features on")
    stat = Path(file).stat()
    key = {"file": str(Path(file).resolve()), "size": stat.st_size, "modified": stat.st_mtime_ns, "top": top}
    stored_file = cache_folder("features") / "atlas" / f"{_hash(key)}.npz"
    found = read_stored(stored_file, listing.signature, atlas_from)
    if found is not None:
        return found
    tensors = check_one_kind(listing)
    running = RunningTop.empty(top, sae.features, engine.device)
    device_sae = sae.to(engine.device)
    read, failed = 0, []
    passes = {"tensors": tensors, "batch_size": 32, "workers": 0, "reader": reader or read_with_opencv}
    what = f"ranking {listing.folder.name}'s images on {sae.features} features"
    for batches, missed in _maps_of_folder(engine, listing, info, progress=progress, what=what, **passes):
        failed += missed
        for indices, maps, heights, widths in batches:
            with torch.no_grad():
                codes = torch.stack([device_sae.maps(activation)[0] for activation in maps])
            running = running.merged(batch_candidates(codes, indices, heights, widths))
            read += len(maps)
    atlas = _build_atlas(engine, info, listing, running, read, sorted([*listing.skipped, *failed]), None, tensors)
    store_with_sidecar(
        stored_file, {"key": key, "signature": listing.signature, **atlas_meta(atlas)}, atlas_arrays(atlas)
    )
    return atlas


def most_used(atlas: Atlas, count: int) -> list[int]:
    """The features with the largest mean code over the folder."""
    means = atlas.means if atlas.means is not None else np.nan_to_num(atlas.values[:, 0], nan=0.0)
    return [int(j) for j in np.argsort(-means, kind="stable")[:count]]


def feature_classes(engine: Engine, sae: SparseAutoencoder, strengths: np.ndarray, k: int = 3):
    """Each feature's top classes where the layer feeds the classifier directly: a cell holding b_dec plus the
    feature at `strengths` (F: its typical peak) through the head, as a concept's channel vector goes; None
    elsewhere. Whether the layer feeds the head is checked on a real forward."""
    head = classifier_head(engine)
    if head is None:
        return None
    grey = np.full((engine.spec.input_size, engine.spec.input_size, 3), 128, np.uint8)
    result = engine.run(grey, [sae.layer])
    if not feeds_head(result.activations[sae.layer], result.logits[0], head):
        return None
    vectors = sae.W_dec * torch.as_tensor(strengths, dtype=torch.float32).reshape(-1, 1)
    return concept_classes(head, vectors, sae.b_dec, k)


def optimised_feature(
    engine: Engine, sae: SparseAutoencoder, index: int, *, steps: int = 128, progress: Progress | None = None
) -> np.ndarray:
    """An image that maximises the feature's decoder direction at its layer (Lucid's recipe)."""
    return optimise(engine, direction(sae.layer, sae.W_dec[index]), steps=steps, progress=progress).image


LABEL = 18


def feature_picture(
    index: int, crops: list[np.ndarray], image: np.ndarray | None, classes: str = "", tile: int = 64
) -> np.ndarray:
    """One row: the feature's number and classes over its top crops and its optimised image."""
    tiles = [cv2.resize(c, (tile, tile), interpolation=cv2.INTER_AREA) for c in crops]
    if image is not None:
        tiles.append(cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA))
    strip = mosaic(tiles, columns=max(1, len(tiles)), tile=tile)
    canvas = np.full((LABEL + strip.shape[0], max(strip.shape[1], 320), 3), 24, np.uint8)
    canvas[LABEL:, : strip.shape[1]] = strip
    text = f"feature {index}" + (f": {classes}" if classes else "")
    cv2.putText(canvas, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (235, 235, 235), 1, cv2.LINE_AA)
    return canvas


def write_gallery(
    engine: Engine,
    file: Path,
    out: Path,
    chosen: Sequence[int] | None = None,
    *,
    steps: int = 128,
    reader: Reader | None = None,
    count: int = 8,
    progress: Progress | None = None,
) -> list[Path]:
    """feature_J.png for each feature chosen (default: the `count` most used) and features.png (them all, one row
    each), with features.json (each one's top images, boxes and classes)."""
    sae = read_features(file)
    atlas = feature_atlas(engine, sae, file, reader=reader, progress=progress)
    chosen = list(chosen) if chosen else most_used(atlas, count)
    if any(not 0 <= j < sae.features for j in chosen):
        raise InputError(f"features {chosen} are not all among the {sae.features} of {file.name}")
    strengths = np.nan_to_num(np.nanmean(np.where(np.isfinite(atlas.values), atlas.values, np.nan), 1), nan=1.0)
    classes = feature_classes(engine, sae, strengths)
    read: Callable = lambda entry: (reader or read_with_opencv)(entry.path, entry.frame or 0)  # noqa: E731
    rows, written, about = [], [], []
    for j in chosen:
        crops = atlas_crops(atlas, j, read)
        image = optimised_feature(engine, sae, j, steps=steps) if steps else None
        named = ""
        if classes is not None:
            indices, probabilities = classes
            pairs = zip(indices[j], probabilities[j], strict=True)
            named = ", ".join(f"{engine.categories[c]} {p:.2f}" for c, p in pairs)
        row = feature_picture(j, crops, image, named)
        rows.append(row)
        path = out / f"feature_{j}.png"
        write_png(path, row)
        written.append(path)
        about.append({"feature": j, "classes": named, "top": [e.image for e in atlas.entries(j)]})
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows])
    write_png(out / "features.png", sheet)
    (out / "features.json").write_text(json.dumps(about, indent=1))
    return [*written, out / "features.png"]
