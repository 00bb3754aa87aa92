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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .embeddings import cache_dir
from .engine import CropRect, Engine
from .errors import InputError, OptionError
from .images import IMAGE_SUFFIXES, read_image
from .layers import INPUT, OUTPUT, PROB, ActivationCapture, LayerInfo, this_thread_only
from .progress import Progress, report
from .receptive_field import box_in_image, receptive_fields
from .tensors import TENSOR_SUFFIXES, is_tensor_frame, read_tensor

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
"""The videos mined when the caller does not say; the app passes its own readers' suffixes (a test keeps them equal)."""

CHECKPOINT_EVERY = 512
"""Images between checkpoints: a crash costs at most this many images again."""

Reader = Callable[[Path, int], np.ndarray]
"""(file, frame index; 0 for an image) -> RGB uint8 HxWx3, or float32 C x H x W for a tensor file; raises for a
file it cannot read."""


def atlas_dir() -> Path:
    """Next to the embeddings cache (LIVEVIS_CACHE, else ~/.cache/livevis)."""
    return cache_dir().parent / "atlas"


# ---------------------------------------------------------------------------------------------
# The folder


@dataclass(frozen=True)
class Item:
    """One image to mine: an image file, or one frame of a video file."""

    path: str
    """Relative to the folder, with forward slashes."""
    frame: int | None = None

    @property
    def name(self) -> str:
        return self.path if self.frame is None else f"{self.path}#{self.frame}"


@dataclass
class FolderListing:
    folder: Path
    items: list[Item]
    skipped: list[tuple[str, str]]
    """(relative path, why) of files that are not mined: not images, videos without a frame step."""
    signature: str
    """Every file's relative path, size and modification time, and how they are read, hashed."""
    tensors: list[int] = field(default_factory=list)
    """Indices of the items that are tensor files (the network input as it is)."""


def _video_frame_count(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def list_folder(
    folder: str | Path, video_step: int | None = None, *, image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    video_suffixes: Sequence[str] = VIDEO_SUFFIXES, tensor_suffixes: Sequence[str] = TENSOR_SUFFIXES,
) -> FolderListing:  # fmt: skip
    """Every file under `folder` (hidden ones aside), sorted; images, tensor files, and every k-th frame of videos."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder" if folder.exists() else f"{folder}: no such folder")
    if video_step is not None and video_step < 1:
        raise OptionError(f"--video-step must be 1 or more, got {video_step}")
    image_suffixes, video_suffixes = {s.lower() for s in image_suffixes}, {s.lower() for s in video_suffixes}
    tensor_suffixes = {s.lower() for s in tensor_suffixes} - image_suffixes - video_suffixes
    files: list[tuple[str, Path, os.stat_result]] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith("."):
                path = Path(root) / name
                with contextlib.suppress(OSError):
                    files.append((path.relative_to(folder).as_posix(), path, path.stat()))
    files.sort(key=lambda entry: entry[0])
    items, skipped, described, tensors = [], [], [], []
    for relative, path, stat in files:
        described.append([relative, stat.st_size, stat.st_mtime_ns])
        suffix = path.suffix.lower()
        if suffix in image_suffixes:
            items.append(Item(relative))
        elif suffix in tensor_suffixes:
            tensors.append(len(items))
            items.append(Item(relative))
        elif suffix in video_suffixes and video_step:
            count = _video_frame_count(path)
            if count <= 0:
                skipped.append((relative, "cannot open this video (unsupported codec or not a video file)"))
            items.extend(Item(relative, frame) for frame in range(0, count, video_step))
        elif suffix in video_suffixes:
            skipped.append((relative, "a video: mine its frames with --video-step K"))
        else:
            skipped.append((relative, "not an image, tensor or video"))
    how = {"video_step": video_step, "images": sorted(image_suffixes), "videos": sorted(video_suffixes)}
    if tensors:  # only then: a folder without tensor files keeps the signature it had before tensors were mined
        how["tensors"] = sorted(tensor_suffixes)
    signature = hashlib.sha256(json.dumps([how, described]).encode()).hexdigest()[:24]
    return FolderListing(folder, items, skipped, signature, tensors)


def check_one_kind(listing: FolderListing) -> bool:
    """True for a folder of tensor files, False for one of photos (and videos); both raise InputError naming
    the first file not of the first file's kind: tensors are the input as they are, photos are cropped and resized."""
    if not listing.tensors:
        return False
    if len(listing.tensors) == len(listing.items):
        return True
    tensors = set(listing.tensors)
    first_is_tensor = 0 in tensors
    other = next(i for i in range(len(listing.items)) if (i in tensors) != first_is_tensor)
    kind = "a tensor file" if first_is_tensor else "a photo"
    raise InputError(f"{listing.folder} mixes photos and tensor files ({listing.items[0].name} is {kind}, "
                     f"{listing.items[other].name} is not): mine one kind per folder")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Decoding and preprocessing in the workers


def crop_and_resize(frame: np.ndarray | torch.Tensor, input_size: int) -> tuple[torch.Tensor, CropRect]:
    """`Engine.preprocess`'s centre square crop and antialiased resize, on the CPU, kept in uint8.

    The same kernel on the same pixels as the live view on the CPU, so that `engine.preprocess` of
    the result (a crop of the whole square and a resize to its own size, both identities) equals
    `engine.preprocess` of the original frame bit for bit.
    """
    if isinstance(frame, np.ndarray):
        frame = frame if frame.flags.c_contiguous and frame.flags.writeable else np.ascontiguousarray(frame).copy()
    host = torch.from_numpy(frame) if isinstance(frame, np.ndarray) else frame
    crop = CropRect.centre_square(host.shape[0], host.shape[1])
    square = host[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w].permute(2, 0, 1).unsqueeze(0)
    square = square.contiguous(memory_format=torch.channels_last)
    size = (input_size, input_size)
    resized = F.interpolate(square, size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].permute(1, 2, 0).contiguous(), crop


def read_with_opencv(path: Path, frame: int = 0) -> np.ndarray:
    """The reader used when the caller passes none: an image (livevis's one image reader), or frame
    `frame` of a video, as RGB; a tensor file's float32 C x H x W array."""
    import cv2

    path = Path(path)
    if path.suffix.lower() in TENSOR_SUFFIXES:
        return read_tensor(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(path))
        try:
            if frame:
                capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, decoded = capture.read()
        finally:
            capture.release()
        if not ok or decoded is None:
            raise InputError(f"{path}: cannot decode frame {frame}")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return read_image(path)


class FrameDataset(torch.utils.data.Dataset):
    """Items of a folder, decoded, cropped and resized to the network's input in a worker.

    An unreadable item comes back as a black image with its error message, so that one broken file
    skips itself and never stops the run. With `in_channels` (a folder of tensor files), items are the
    tensors as they are (float32 C x H x W, any size) and one with another channel count is skipped.
    """

    def __init__(self, folder: Path, items: Sequence[tuple[int, Item]], input_size: int, reader: Reader,
                 in_channels: int | None = None):  # fmt: skip
        self.folder, self.items, self.input_size, self.reader = folder, list(items), input_size, reader
        self.in_channels = in_channels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int):
        if self.in_channels is not None:
            return self._tensor(position)
        index, item = self.items[position]
        try:
            frame = self.reader(self.folder / item.path, item.frame or 0)
            if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise InputError(f"{item.name}: not an RGB image")
            resized, _ = crop_and_resize(frame, self.input_size)
            return index, resized, frame.shape[0], frame.shape[1], ""
        except Exception as exc:  # any reader failure skips the file; the message names it
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            blank = torch.zeros((self.input_size, self.input_size, 3), dtype=torch.uint8)
            return index, blank, 0, 0, message

    def _tensor(self, position: int):
        index, item = self.items[position]
        try:
            array = self.reader(self.folder / item.path, 0)
            if not isinstance(array, np.ndarray) or not is_tensor_frame(array):
                raise InputError(f"{item.name}: not a float32 C x H x W tensor")
            if array.shape[0] != self.in_channels:
                raise InputError(f"{item.name} has {array.shape[0]} channels but the model takes {self.in_channels}")
            return index, torch.from_numpy(np.ascontiguousarray(array)), array.shape[1], array.shape[2], ""
        except Exception as exc:  # as for images: the message names the file, the run goes on
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return index, torch.zeros(0), 0, 0, message


def _collate_tensors(batch):
    """Tensor inputs may differ in size: kept as a list, stacked per shape before the forward."""
    indices, frames, heights, widths, errors = zip(*batch, strict=True)
    return torch.tensor(indices), list(frames), torch.tensor(heights), torch.tensor(widths), list(errors)


def _worker_context():
    """Workers forked from a clean single-threaded server: forking the main process, whose OpenMP
    and OpenCV thread pools may hold locks at that instant, can leave a worker waiting forever."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None  # Windows, macOS: spawn, which is safe as well
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # torch is imported once, by the server
    return context


def _quiet_worker(_worker_id: int) -> None:
    """One thread per worker: the workers already run in parallel, and the forward needs the cores."""
    import cv2

    cv2.setNumThreads(1)


# ---------------------------------------------------------------------------------------------
# The running top-k


FIELDS = ("values", "items", "rows", "cols", "heights", "widths")


@dataclass
class RunningTop:
    """Per channel, the k best (value, item, row, col, image height, width) so far; rows are ranks."""

    values: torch.Tensor
    items: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    heights: torch.Tensor
    widths: torch.Tensor

    @classmethod
    def empty(cls, k: int, channels: int, device: torch.device | str = "cpu") -> RunningTop:
        def full(value, dtype):
            return torch.full((k, channels), value, dtype=dtype, device=device)

        return cls(full(float("-inf"), torch.float32), full(-1, torch.int64), full(0, torch.int32),
                   full(0, torch.int32), full(0, torch.int32), full(0, torch.int32))  # fmt: skip

    @property
    def k(self) -> int:
        return self.values.shape[0]

    def merged(self, *others: RunningTop) -> RunningTop:
        """The k best of all, a tie ranking the lower item index first whatever order they came in."""
        parts = [self, *others]
        stacked = {name: torch.cat([getattr(p, name).to(self.values.device) for p in parts]) for name in FIELDS}
        by_item = torch.argsort(stacked["items"], dim=0, stable=True)
        values = torch.gather(stacked["values"], 0, by_item)
        best = torch.argsort(values, dim=0, descending=True, stable=True)[: self.k]
        chosen = torch.gather(by_item, 0, best)
        return RunningTop(**{name: torch.gather(stacked[name], 0, chosen) for name in FIELDS})

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).cpu().numpy() for name in FIELDS}

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray], device: torch.device | str = "cpu") -> RunningTop:
        return cls(**{name: torch.as_tensor(np.asarray(arrays[name])).to(device) for name in FIELDS})


def batch_candidates(activation: torch.Tensor, items: torch.Tensor, heights: torch.Tensor,
                     widths: torch.Tensor) -> RunningTop:  # fmt: skip
    """Each image's spatial maximum per channel and where it is (the first such position on a tie)."""
    n, channels = activation.shape[:2]
    if activation.dim() == 4:
        flat = activation.float().flatten(2)
        position = flat.argmax(2)
        values = torch.gather(flat, 2, position.unsqueeze(2)).squeeze(2)
        width = activation.shape[3]
        rows, cols = (position // width).int(), (position % width).int()
    else:
        values = activation.float().reshape(n, channels)
        rows = cols = torch.zeros((n, channels), dtype=torch.int32, device=activation.device)
    values = torch.nan_to_num(values, nan=float("-inf"))

    def per_image(t: torch.Tensor, dtype) -> torch.Tensor:
        return t.to(device=activation.device, dtype=dtype).view(n, 1).expand(n, channels)

    return RunningTop(values, per_image(items, torch.int64), rows, cols, per_image(heights, torch.int32),
                      per_image(widths, torch.int32))  # fmt: skip


class _ReachedLastLayer(Exception):
    pass


def capture_layers(engine: Engine, frames: torch.Tensor, paths: Sequence[str], *,
                   tensors: bool = False) -> dict[str, torch.Tensor]:  # fmt: skip
    """engine.preprocess (not for `tensors`: N x C x H x W network inputs as they are), then the forward up
    to the last layer asked for: nothing after it is computed."""
    x = frames.float() if tensors else engine.preprocess(frames)[0]
    order = {layer.path: i for i, layer in enumerate(engine.layers)}
    hooked = [path for path in paths if path not in (INPUT, PROB, OUTPUT)]
    out: dict[str, torch.Tensor] = {INPUT: x} if INPUT in paths else {}
    with torch.inference_mode(), ActivationCapture(engine.model, hooked) as capture:
        if PROB in paths or OUTPUT in paths:
            output = engine.model(x)
            out[OUTPUT] = output
            if PROB in paths:
                out[PROB] = output.float().softmax(1)
        elif hooked:
            last = max(hooked, key=order.__getitem__)

            def stop(_module, _inputs, _output):
                raise _ReachedLastLayer

            handle = engine.model.get_submodule(last).register_forward_hook(this_thread_only(stop))
            try:
                with contextlib.suppress(_ReachedLastLayer):
                    engine.model(x)
            finally:
                handle.remove()
        out.update(capture.activations)
    return out


# ---------------------------------------------------------------------------------------------
# One process or many (torchrun)


@dataclass
class Processes:
    """This process's place among torchrun's processes; rank 0 of 1 without torchrun's variables."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started_here: bool = False

    @classmethod
    def from_environment(cls) -> Processes:
        """Joins torchrun's process group (nccl with CUDA, else gloo) when WORLD_SIZE > 1."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        started = False
        if not dist.is_initialized():
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(local_rank % torch.cuda.device_count())
            dist.init_process_group("nccl" if cuda else "gloo")
            started = True
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, started)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> str:
        """Each process on a GPU of its own where there are several (LOCAL_RANK)."""
        if self.world > 1 and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def all_gather(self, value):
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        gathered = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value):
        """Rank 0's `value` on every process."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.started_here:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.started_here = False


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A cheap hash of every tensor's strided sample: random weights differ between runs, and so do atlases."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().flatten()
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        digest.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


def _same_weights_everywhere(engine: Engine, processes: Processes) -> None:
    """Random weights differ per process: then every process takes rank 0's."""
    if len(set(processes.all_gather(weights_fingerprint(engine.model)))) > 1:
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in engine.model.state_dict().values():
                dist.broadcast(tensor, src=0)


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
            out.append(AtlasEntry(self.item_paths[index], None if frame < 0 else frame,
                                  float(self.values[channel, j]), tuple(int(v) for v in self.at[channel, j]),
                                  tuple(int(v) for v in self.boxes[channel, j]),
                                  tuple(int(v) for v in self.input_boxes[channel, j]),
                                  self.folder / self.item_paths[index]))  # fmt: skip
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
        return {"model": self.model, "weights": self.weights, "layer": self.layer_name, "layer_path": self.layer,
                "folder": str(self.folder), "images": self.images, "skipped": [name for name, _ in self.skipped],
                "channels": channels}  # fmt: skip


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
    return {"model": engine.name, "weights": engine.weights.source, "fingerprint": fingerprint, "layer": layer.path,
            "input_size": spec.input_size, "mean": list(spec.mean), "std": list(spec.std),
            "in_channels": spec.in_channels}  # fmt: skip


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


def _store_atlas(atlas: Atlas, key: dict, signature: str) -> None:
    name = _hash(key)
    meta = {"key": key, "signature": signature, "model": atlas.model, "weights": atlas.weights, "layer": atlas.layer,
            "layer_name": atlas.layer_name, "folder": str(atlas.folder), "top": atlas.top,
            "video_step": atlas.video_step, "images": atlas.images, "skipped": atlas.skipped,
            "created": atlas.created}  # fmt: skip
    paths = np.array(atlas.item_paths, dtype=str) if atlas.item_paths else np.zeros(0, dtype="<U1")
    _save_npz(atlas_dir() / f"{name}.npz", meta=np.array(json.dumps(meta)), item_paths=paths,
              item_frames=atlas.item_frames, items=atlas.items, values=atlas.values, at=atlas.at, boxes=atlas.boxes,
              input_boxes=atlas.input_boxes)  # fmt: skip
    _write_text(atlas_dir() / f"{name}.json", json.dumps(meta))  # read by listings without the arrays


def _read_atlas(file: Path, signature: str | None = None) -> Atlas | None:
    """The stored atlas; None where there is none, it cannot be read, or the folder changed since."""
    try:
        with np.load(file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if signature is not None and meta["signature"] != signature:
                return None
            arrays = {name: data[name] for name in data.files if name != "meta"}
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError):
        return None
    except Exception:  # a damaged zip raises zipfile's own errors: the atlas is remade
        return None
    return Atlas(meta["model"], meta["weights"], meta["layer"], meta["layer_name"], Path(meta["folder"]),
                 meta["top"], meta["video_step"], meta["images"], [tuple(s) for s in meta["skipped"]],
                 [str(p) for p in arrays["item_paths"]], arrays["item_frames"], arrays["items"], arrays["values"],
                 arrays["at"], arrays["boxes"], arrays["input_boxes"], meta["created"], cached=True)  # fmt: skip


def _stored_runs(identity: dict) -> list[dict]:
    """Sidecars of the atlases made with this model, weights, layer and preprocessing, newest first."""
    found = []
    for sidecar in atlas_dir().glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            meta = json.loads(sidecar.read_text())
            if all(meta["key"].get(k) == v for k, v in identity.items()):
                found.append({**meta, "file": sidecar.with_suffix(".npz")})
    return sorted(found, key=lambda meta: -meta["created"])


def _listing_of(meta: dict) -> FolderListing | None:
    suffixes = meta["key"]["suffixes"]
    with contextlib.suppress(InputError, OptionError):
        return list_folder(meta["folder"], meta["video_step"], image_suffixes=suffixes["images"],
                           video_suffixes=suffixes["videos"],
                           tensor_suffixes=suffixes.get("tensors", TENSOR_SUFFIXES))  # fmt: skip
    return None


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
        out.append(MinedFolder(Path(meta["folder"]), meta["images"], meta["top"], meta["video_step"],
                               meta["created"], current))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# Mining


@dataclass(frozen=True)
class _Progress:
    """A consistent point to resume from: replaced whole after every batch, never changed in place."""

    tops: dict[str, RunningTop]
    done: int
    read: int
    failed: tuple[tuple[str, str], ...]


def _save_checkpoint(file: Path, state: _Progress, signature: str) -> None:
    arrays = {f"{i}.{name}": value for i, top in enumerate(state.tops.values())
              for name, value in top.to_numpy().items()}  # fmt: skip
    meta = {"signature": signature, "layers": list(state.tops), "done": state.done, "read": state.read,
            "failed": list(state.failed)}  # fmt: skip
    _save_npz(file, meta=np.array(json.dumps(meta)), **arrays)


def _load_checkpoint(file: Path, layers: list[str], signature: str, device: torch.device) -> _Progress | None:
    try:
        with np.load(file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta["signature"] != signature or meta["layers"] != layers:
                return None
            tops = {path: RunningTop.from_numpy({name: data[f"{i}.{name}"] for name in FIELDS}, device)
                    for i, path in enumerate(layers)}  # fmt: skip
    except Exception:  # none, or unreadable: start from the beginning
        return None
    return _Progress(tops, meta["done"], meta["read"], tuple(tuple(f) for f in meta["failed"]))


def _mine_shard(
    engine: Engine, listing: FolderListing, layers: list[LayerInfo], key: dict, *, top: int, batch_size: int,
    workers: int, reader: Reader, progress: Progress | None, processes: Processes, checkpoint_every: int,
    tensors: bool = False,
) -> _Progress:  # fmt: skip
    """This process's share of the items (every world-th), resumed from its checkpoint if it has one."""
    shard = list(enumerate(listing.items))[processes.rank :: processes.world]
    paths = [layer.path for layer in layers]
    checkpoint = atlas_dir() / "partial" / f"{_hash(key)}-{processes.rank}of{processes.world}.npz"
    state = _load_checkpoint(checkpoint, paths, listing.signature, engine.device)
    if state is None:
        state = _Progress({layer.path: RunningTop.empty(top, layer.channels, engine.device) for layer in layers},
                          0, 0, ())  # fmt: skip
    dataset = FrameDataset(listing.folder, shard[state.done :], engine.spec.input_size, reader,
                           engine.spec.in_channels if tensors else None)  # fmt: skip
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, worker_init_fn=_quiet_worker if workers else None,
        pin_memory=engine.device.type == "cuda", multiprocessing_context=_worker_context() if workers else None,
        collate_fn=_collate_tensors if tensors else None,
    )  # fmt: skip
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
                tops = {path: tops[path].merged(batch_candidates(captured[path], indices[chosen], heights[chosen],
                                                                 widths[chosen]))
                        for path in paths}  # fmt: skip
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


def _build_atlas(engine: Engine, layer: LayerInfo, listing: FolderListing, top: RunningTop, read: int,
                 skipped: list[tuple[str, str]], video_step: int | None, tensors: bool = False) -> Atlas:  # fmt: skip
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
                known[size] = receptive_fields(engine.model, layer.path, map_size, size, engine.spec.in_channels,
                                               cache_folder=atlas_dir() / "fields")  # fmt: skip
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
    return Atlas(engine.name, engine.weights.source, layer.path, layer.name, listing.folder, k, video_step, read,
                 skipped, item_paths, item_frames, items, values, at, boxes, input_boxes)  # fmt: skip


def mine(
    engine: Engine, folder: str | Path, layers: Sequence[str] | str | None = None, *, top: int = 9,
    batch_size: int = 64, workers: int = 2, video_step: int | None = None, reader: Reader | None = None,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES, video_suffixes: Sequence[str] = VIDEO_SUFFIXES,
    tensor_suffixes: Sequence[str] = TENSOR_SUFFIXES, progress: Progress | None = None, use_cache: bool = True,
    processes: Processes | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> list[Atlas]:  # fmt: skip
    """Every channel's `top` images in `folder` for each layer (None: the model's default layer).

    Cached atlases come back at once; the others are mined in one pass over the folder. `progress`
    (models.progress) hears (what, images done, images in all) after every batch and cancels by
    answering False; a cancelled run resumes from where it stopped. A folder of tensor files (`tensor_suffixes`)
    is mined as network inputs as they are; photos and tensors in one folder raise InputError. Under torchrun
    (`processes`), each process mines every world-th item and every process returns the merged atlases; rank 0
    writes the cache.
    """
    if top < 1 or batch_size < 1 or workers < 0:
        raise OptionError(f"--top and --batch-size must be 1 or more and --workers 0 or more "
                          f"(got {top}, {batch_size}, {workers})")  # fmt: skip
    keys = [layers] if isinstance(layers, str) else list(layers or [engine.layer().path])
    infos = list({info.path: info for info in (engine.layer(key) for key in keys)}.values())
    folder = Path(folder)
    listing = list_folder(folder, video_step, image_suffixes=image_suffixes, video_suffixes=video_suffixes,
                          tensor_suffixes=tensor_suffixes)  # fmt: skip
    if not listing.items:
        kinds = "images, tensor files or videos" if video_step else "images or tensor files"
        raise InputError(f"{folder} holds no {kinds} ({len(listing.skipped)} other files)")
    tensors = check_one_kind(listing)
    processes = processes or Processes()
    if processes.world > 1:
        _same_weights_everywhere(engine, processes)
    fingerprint = weights_fingerprint(engine.model)
    suffixes = {"images": sorted({s.lower() for s in image_suffixes}),
                "videos": sorted({s.lower() for s in video_suffixes})}  # fmt: skip
    if tensors:  # only then: the cache keys of photo folders stay as they were
        suffixes["tensors"] = sorted({s.lower() for s in tensor_suffixes})
    run_keys = {info.path: _run_key(_identity(engine, fingerprint, info), folder, top, video_step, suffixes)
                for info in infos}  # fmt: skip
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
        state = _mine_shard(engine, listing, missing, key, top=top, batch_size=batch_size, workers=workers,
                            reader=reader or read_with_opencv, progress=progress, processes=processes,
                            checkpoint_every=checkpoint_every, tensors=tensors)  # fmt: skip
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
