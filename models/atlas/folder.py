"""The folder side of the unit atlas: which files of a folder are mined, in what order, and its signature.

A folder is walked once, its files sorted by relative path, and each classed as an image, a tensor file
(the network input as it is), a video (every k-th frame with a frame step) or something skipped with a
reason; every file's path, size and modification time, with how files are read, hash into the signature
that keys the cache and tells a stale atlas from a current one. It holds no tensors and runs no model, so
listings, signatures and the one-kind-per-folder check live here apart from decoding and mining.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..data.tensors import TENSOR_SUFFIXES
from ..errors import InputError, OptionError


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
    folder: str | Path,
    video_step: int | None = None,
    *,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    video_suffixes: Sequence[str] = VIDEO_SUFFIXES,
    tensor_suffixes: Sequence[str] = TENSOR_SUFFIXES,
) -> FolderListing:
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
    raise InputError(
        f"{listing.folder} mixes photos and tensor files ({listing.items[0].name} is {kind}, "
        f"{listing.items[other].name} is not): mine one kind per folder"
    )
