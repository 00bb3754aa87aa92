"""The unit atlas: for every unit (channel) of a layer, the images of a folder that excite it most.

Each image is preprocessed exactly as the live view preprocesses a frame (centre square crop,
antialiased resize, mean/std), the layer's map is captured, and a unit's score for the image is the
map's spatial maximum (the Deep Visualization Toolbox's measure), kept with where it occurred. A
running top-k per channel, merged per batch on the device, bounds memory by channels x k however
large the folder is. Decoding and resizing run in DataLoader workers, so the device never waits on
JPEG decoding. Ties rank the earlier file first, so every run (resumed, or split over processes
under torchrun) ranks alike.

Tensor files (.npy, .pt: float32 C x H x W) are mined as the network input as they are: no crop, resize or
normalisation, each at its own size, batched with the tensors of the same shape; their boxes are in the
tensor's own pixels. A run mines photos (and video frames) or tensors, not both.

Results are cached under livevis's cache folder, keyed by the model, its weights, the layer, the
preprocessing and the folder's content; a run checkpoints its running top-k every few hundred
images, so an interrupted one resumes where it stopped.

The parts live in sibling modules: `mining_folder` lists a folder, `mining_data` decodes and resizes in the
workers, `mining_topk` keeps the running top-k and the torchrun processes, `atlas_store` holds the atlas and
its cache; this module runs a mining pass and re-exports their public names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..data.tensors import TENSOR_SUFFIXES
from ..engine import CropRect, Engine
from ..errors import InputError, OptionError
from ..layers import INPUT, OUTPUT, LayerInfo
from ..progress import Progress, report
from .data import (
    FrameDataset,
    Reader,
    _collate_tensors,
    _quiet_worker,
    _worker_context,
    crop_and_resize,
    read_with_opencv,
)
from .folder import FolderListing, Item, check_one_kind, list_folder
from .receptive_field import box_in_image, receptive_fields
from .store import (
    Atlas,
    AtlasEntry,
    MinedFolder,
    _hash,
    _identity,
    _listing_of,
    _load_checkpoint,
    _Progress,
    _read_atlas,
    _run_key,
    _save_checkpoint,
    _store_atlas,
    _stored_runs,
    atlas_dir,
)
from .topk import (
    FIELDS,
    Processes,
    RunningTop,
    _same_weights_everywhere,
    batch_candidates,
    capture_layers,
    weights_fingerprint,
)

__all__ = [
    "CHECKPOINT_EVERY",
    "FIELDS",
    "IMAGE_SUFFIXES",
    "TENSOR_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Atlas",
    "AtlasEntry",
    "FolderListing",
    "FrameDataset",
    "Item",
    "MinedFolder",
    "Processes",
    "Reader",
    "RunningTop",
    "atlas_dir",
    "batch_candidates",
    "capture_layers",
    "check_one_kind",
    "crop_and_resize",
    "list_folder",
    "load_atlas",
    "mine",
    "mined_folders",
    "read_with_opencv",
    "weights_fingerprint",
]

CHECKPOINT_EVERY = 512
"""Images between checkpoints: a crash costs at most this many images again."""


def load_atlas(engine: Engine, folder: str | Path, layer: str, *, top: int | None = None) -> Atlas | None:
    """The newest cached atlas of `folder` for the running model, weights and layer, if the folder's files
    are still those that were mined; else None (mine it)."""
    info = engine.layer(layer)
    identity = {**_identity(engine, weights_fingerprint(engine.model), info), "folder": str(Path(folder).resolve())}
    if top is not None:
        identity["top"] = top
    for meta in _stored_runs(identity):
        listing = _listing_of(meta)
        if listing is not None and listing.signature == meta["signature"]:
            atlas = _read_atlas(meta["file"], meta["signature"])
            if atlas is not None:
                return atlas
    return None


def mined_means(engine: Engine, layer: str, channels: Sequence[int]) -> tuple[float, ...] | None:
    """The channels' means over the latest folder mined for the layer that kept them (every cell of every image
    read); None where there is none."""
    for mined in sorted(mined_folders(engine, layer), key=lambda m: -m.created):
        atlas = load_atlas(engine, mined.folder, layer)
        if atlas is not None and atlas.means is not None:
            return tuple(float(atlas.means[c]) for c in channels)
    return None


def mined_folders(engine: Engine, layer: str, *, check: bool = True) -> list[MinedFolder]:
    """The folders mined for the running model, weights and layer, newest first; `check` relists each
    folder to say whether its atlas is current."""
    identity = _identity(engine, weights_fingerprint(engine.model), engine.layer(layer))
    out = []
    for meta in _stored_runs(identity):
        current = True
        if check:
            listing = _listing_of(meta)
            current = listing is not None and listing.signature == meta["signature"]
        out.append(
            MinedFolder(Path(meta["folder"]), meta["images"], meta["top"], meta["video_step"], meta["created"], current)
        )
    return out


# ---------------------------------------------------------------------------------------------
# Mining


def _mine_shard(
    engine: Engine,
    listing: FolderListing,
    layers: list[LayerInfo],
    key: dict,
    *,
    top: int,
    batch_size: int,
    workers: int,
    reader: Reader,
    progress: Progress | None,
    processes: Processes,
    checkpoint_every: int,
    tensors: bool = False,
) -> _Progress:
    """This process's share of the items (every world-th), resumed from its checkpoint if it has one."""
    shard = list(enumerate(listing.items))[processes.rank :: processes.world]
    paths = [layer.path for layer in layers]
    checkpoint = atlas_dir() / "partial" / f"{_hash(key)}-{processes.rank}of{processes.world}.npz"
    state = _load_checkpoint(checkpoint, paths, listing.signature, engine.device)
    if state is None:
        state = _Progress(
            {layer.path: RunningTop.empty(top, layer.channels, engine.device) for layer in layers}, 0, 0, ()
        )
    dataset = FrameDataset(
        listing.folder,
        shard[state.done :],
        engine.spec.input_size,
        reader,
        engine.spec.in_channels if tensors else None,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        worker_init_fn=_quiet_worker if workers else None,
        pin_memory=engine.device.type == "cuda",
        multiprocessing_context=_worker_context() if workers else None,
        collate_fn=_collate_tensors if tensors else None,
    )
    what = "mining " + ", ".join(layer.name for layer in layers)
    report(progress, what, state.done, len(shard))
    saved_at = state.done
    try:
        for indices, frames, heights, widths, errors in loader:
            readable = [i for i, error in enumerate(errors) if not error]
            failed = [(listing.items[int(indices[i])].name, errors[i]) for i, error in enumerate(errors) if error]
            tops = state.tops
            groups: dict[tuple, list[int]] = {}
            for i in readable:  # photos are all S x S; tensors are batched with those of their shape
                groups.setdefault(tuple(frames[i].shape) if tensors else (), []).append(i)
            for group in groups.values():
                chosen = torch.tensor(group)
                batch = torch.stack([frames[i] for i in group]) if tensors else frames[chosen]
                captured = capture_layers(engine, batch.to(engine.device, non_blocking=True), paths, tensors=tensors)
                tops = {
                    path: tops[path].merged(
                        batch_candidates(captured[path], indices[chosen], heights[chosen], widths[chosen])
                    )
                    for path in paths
                }
            state = _Progress(tops, state.done + len(errors), state.read + len(readable), state.failed + tuple(failed))
            if state.done - saved_at >= checkpoint_every:
                _save_checkpoint(checkpoint, state, listing.signature)
                saved_at = state.done
            report(progress, what, state.done, len(shard))
    except BaseException:  # cancelled, interrupted or crashed: what is done so far is kept for the next run
        if state.done > saved_at:
            _save_checkpoint(checkpoint, state, listing.signature)
        raise
    return state


def _map_size(engine: Engine, layer: str, height: int, width: int) -> tuple[int, int]:
    """The layer's (H, W) map for a tensor input of that size (the listed shape is for the S x S input)."""
    zeros = torch.zeros((1, engine.spec.in_channels, height, width), device=engine.device)
    return tuple(capture_layers(engine, zeros, [layer], tensors=True)[layer].shape[2:])


def _build_atlas(
    engine: Engine,
    layer: LayerInfo,
    listing: FolderListing,
    top: RunningTop,
    read: int,
    skipped: list[tuple[str, str]],
    video_step: int | None,
    tensors: bool = False,
) -> Atlas:
    """Channels x k arrays, the receptive-field boxes mapped into each original image (a tensor input's
    boxes: in its own pixels, its receptive fields computed at its own size)."""
    arrays = {name: value.T.copy() for name, value in top.to_numpy().items()}
    channels, k = arrays["items"].shape
    spatial = layer.path not in (INPUT, OUTPUT) and layer.is_spatial
    known: dict[tuple[int, int], object] = {}

    def fields_of(height: int, width: int):
        """None where boxes need no probe: the input's units see one pixel, a model's own output the whole crop."""
        size = (height, width) if tensors else engine.spec.input_size
        if size not in known:
            known[size] = None
            if spatial:
                map_size = _map_size(engine, layer.path, height, width) if tensors else layer.shape[1:]
                known[size] = receptive_fields(
                    engine.model,
                    layer.path,
                    map_size,
                    size,
                    engine.spec.in_channels,
                    cache_folder=atlas_dir() / "fields",
                )
        return size, known[size]

    used = sorted({int(i) for i in arrays["items"].ravel() if i >= 0})
    table = {index: position for position, index in enumerate(used)}
    items = np.full((channels, k), -1, np.int64)
    boxes = np.zeros((channels, k, 4), np.int64)
    input_boxes = np.zeros((channels, k, 4), np.int64)
    at = np.stack([arrays["rows"], arrays["cols"]], axis=2).astype(np.int64)
    for c in range(channels):
        for j in range(k):
            index = int(arrays["items"][c, j])
            if index < 0:
                continue
            items[c, j] = table[index]
            row, col = int(at[c, j, 0]), int(at[c, j, 1])
            height, width = int(arrays["heights"][c, j]), int(arrays["widths"][c, j])
            size, fields = fields_of(height, width)
            if layer.path == INPUT:
                box = (col, row, col + 1, row + 1)
            elif fields is not None:
                box = fields.box(row, col)
            else:
                box = (0, 0, width, height) if tensors else (0, 0, size, size)
            crop = CropRect(0, 0, width, height) if tensors else CropRect.centre_square(height, width)
            input_boxes[c, j] = box
            boxes[c, j] = box_in_image(box, crop, size)
    item_paths = [listing.items[i].path for i in used]
    item_frames = np.array([-1 if listing.items[i].frame is None else listing.items[i].frame for i in used], np.int64)
    values = np.where(items >= 0, arrays["values"], np.nan).astype(np.float32)
    return Atlas(
        engine.name,
        engine.weights.source,
        layer.path,
        layer.name,
        listing.folder,
        k,
        video_step,
        read,
        skipped,
        item_paths,
        item_frames,
        items,
        values,
        at,
        boxes,
        input_boxes,
        top.means(),
    )


def mine(
    engine: Engine,
    folder: str | Path,
    layers: Sequence[str] | str | None = None,
    *,
    top: int = 9,
    batch_size: int = 64,
    workers: int = 2,
    video_step: int | None = None,
    reader: Reader | None = None,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    video_suffixes: Sequence[str] = VIDEO_SUFFIXES,
    tensor_suffixes: Sequence[str] = TENSOR_SUFFIXES,
    progress: Progress | None = None,
    use_cache: bool = True,
    processes: Processes | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> list[Atlas]:
    """Every channel's `top` images in `folder` for each layer (None: the model's default layer).

    Cached atlases come back at once; the others are mined in one pass over the folder. `progress`
    (models.progress) hears (what, images done, images in all) after every batch and cancels by
    answering False; a cancelled run resumes from where it stopped. A folder of tensor files (`tensor_suffixes`)
    is mined as network inputs as they are; photos and tensors in one folder raise InputError. Under torchrun
    (`processes`), each process mines every world-th item and every process returns the merged atlases; rank 0
    writes the cache.
    """
    if top < 1 or batch_size < 1 or workers < 0:
        raise OptionError(
            f"--top and --batch-size must be 1 or more and --workers 0 or more (got {top}, {batch_size}, {workers})"
        )
    keys = [layers] if isinstance(layers, str) else list(layers or [engine.layer().path])
    infos = list({info.path: info for info in (engine.layer(key) for key in keys)}.values())
    folder = Path(folder)
    listing = list_folder(
        folder,
        video_step,
        image_suffixes=image_suffixes,
        video_suffixes=video_suffixes,
        tensor_suffixes=tensor_suffixes,
    )
    if not listing.items:
        kinds = "images, tensor files or videos" if video_step else "images or tensor files"
        raise InputError(f"{folder} holds no {kinds} ({len(listing.skipped)} other files)")
    tensors = check_one_kind(listing)
    processes = processes or Processes()
    if processes.world > 1:
        _same_weights_everywhere(engine, processes)
    fingerprint = weights_fingerprint(engine.model)
    suffixes = {
        "images": sorted({s.lower() for s in image_suffixes}),
        "videos": sorted({s.lower() for s in video_suffixes}),
    }
    if tensors:  # only then: the cache keys of photo folders stay as they were
        suffixes["tensors"] = sorted({s.lower() for s in tensor_suffixes})
    run_keys = {
        info.path: _run_key(_identity(engine, fingerprint, info), folder, top, video_step, suffixes) for info in infos
    }
    found: dict[str, Atlas] = {}
    if use_cache and processes.is_main:
        for info in infos:
            atlas = _read_atlas(atlas_dir() / f"{_hash(run_keys[info.path])}.npz", listing.signature)
            if atlas is not None:
                found[info.path] = atlas
    found = processes.broadcast(found)
    missing = [info for info in infos if info.path not in found]
    if missing:
        key = {"layers": [run_keys[info.path] for info in missing]}
        state = _mine_shard(
            engine,
            listing,
            missing,
            key,
            top=top,
            batch_size=batch_size,
            workers=workers,
            reader=reader or read_with_opencv,
            progress=progress,
            processes=processes,
            checkpoint_every=checkpoint_every,
            tensors=tensors,
        )
        shares = processes.all_gather(({p: t.to_numpy() for p, t in state.tops.items()}, state.read, state.failed))
        mined: dict[str, Atlas] = {}
        if processes.is_main:
            read = sum(share[1] for share in shares)
            skipped = sorted([*listing.skipped, *(f for share in shares for f in share[2])])
            for info in missing:
                parts = [RunningTop.from_numpy(share[0][info.path]) for share in shares]
                merged = parts[0].merged(*parts[1:])
                mined[info.path] = _build_atlas(engine, info, listing, merged, read, skipped, video_step, tensors)
                _store_atlas(mined[info.path], run_keys[info.path], listing.signature)
        found.update(processes.broadcast(mined))
        with contextlib.suppress(OSError):
            (atlas_dir() / "partial" / f"{_hash(key)}-{processes.rank}of{processes.world}.npz").unlink(missing_ok=True)
    return [found[info.path] for info in infos]
