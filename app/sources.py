"""Frames from cameras, video files, image files and folders, as RGB uint8 arrays (OpenCV, no Qt).

Every failure is an `InputError` whose message names the file and what to do; nothing here raises
an OpenCV error at a user. Images are read by `livevis.models.data.images` (EXIF orientation, transparency,
16-bit, huge JPEGs), the same reader the embeddings datasets use.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.models.data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_regular_file, not_a_file, read_image
from livevis.models.data.tensors import TENSOR_SUFFIXES, is_tensor_path, read_tensor
from livevis.models.errors import InputError

# OpenCV warns on stderr for every camera index that does not open, and FFmpeg for every file it
# cannot parse; livevis says what went wrong itself. FFmpeg reads its level when it first opens a file.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET



def _to_rgb(decoded: np.ndarray) -> np.ndarray:
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def open_video(path: Path) -> cv2.VideoCapture:
    path = check_regular_file(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        if _mp4_without_tracks(path):
            raise InputError(f"{path} has no frames (a video container with no video track)")
        raise InputError(f"{path}: cannot open this video (unsupported codec or not a video file)")
    return capture


def _mp4_without_tracks(path: Path) -> bool:
    """An MP4/MOV whose movie box holds no track: what a writer leaves when it was given no frames.
    FFmpeg will not open it; walking the top-level boxes tells it apart from an unsupported codec."""
    try:
        with open(path, "rb") as handle:
            size = path.stat().st_size
            pos = 0
            while pos + 8 <= size:
                handle.seek(pos)
                length, kind = struct.unpack(">I4s", handle.read(8))
                header = 8
                if length == 1:
                    length, header = struct.unpack(">Q", handle.read(8))[0], 16
                elif length == 0:
                    length = size - pos
                if length < header:
                    return False
                if kind == b"moov":
                    return b"trak" not in handle.read(min(length - header, 1 << 20))
                pos += length
    except (OSError, struct.error):
        pass
    return False


def read_video_frame(path: str | Path, index: int = 0) -> np.ndarray:
    """Frame `index` of a video file as RGB uint8."""
    path = Path(path)
    if index < 0:
        raise InputError(f"frame index must be 0 or more, got {index}")
    capture = open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if index and count > 0 and index >= count:
            raise InputError(f"{path} has {count} frames; frame {index} does not exist (use 0..{count - 1})")
        if index:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok and count == 0:
        raise InputError(f"{path} has no frames (an empty video)")
    if not ok or frame is None:
        raise InputError(f"{path}: cannot decode frame {index} (the file may be truncated or not a video)")
    return _to_rgb(frame)


def read_frame(path: str | Path, index: int = 0) -> np.ndarray:
    """An image file, or frame `index` of a video file, chosen by suffix (images first otherwise), or the
    current frame of a stream URL. Named pipes, sockets and devices are refused before they are opened
    (reading one would block)."""
    from livevis.app.network_sources import display_url, is_stream_url, read_stream_frame

    if is_stream_url(path):
        if index != 0:
            raise InputError(f"{display_url(path)} is a live stream: it has no frame {index} (--frame is for videos)")
        return read_stream_frame(path)
    path = check_regular_file(path)
    if is_tensor_path(path):
        if index != 0:
            raise InputError(f"{path} is a tensor input: it has no frame {index} (--frame is for videos)")
        return read_tensor(path)
    if is_video_path(path):
        return read_video_frame(path, index)
    if path.suffix.lower() in IMAGE_SUFFIXES and index != 0:
        raise InputError(f"{path} is an image: it has no frame {index} (--frame is for videos)")
    if path.suffix.lower() in IMAGE_SUFFIXES or index == 0:
        try:
            return read_image(path)
        except InputError:
            if path.suffix.lower() in IMAGE_SUFFIXES or not path.is_file():
                raise
    return read_video_frame(path, index)


class SourceGone(InputError):
    """The folder or file being shown was moved or deleted."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str
    """Why it is not shown, e.g. 'a named pipe (FIFO)', 'not an image (.txt)'."""

    def __str__(self) -> str:
        return f"{self.path.name} ({self.reason})"


@dataclass(frozen=True)
class FolderImages:
    """A folder's readable images in name order, and what else it holds that will not be shown."""

    images: list[Path]
    skipped: list[SkippedFile]

    def skipped_summary(self, limit: int = 10) -> str:
        """One line for a status bar or the end of a run: 'skipped 2 files: a.txt (not an image (.txt)), ...'."""
        if not self.skipped:
            return ""
        names = ", ".join(str(s) for s in self.skipped[:limit])
        more = f" and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"skipped {len(self.skipped)} file{'s' if len(self.skipped) != 1 else ''}: {names}{more}"


def scan_folder(folder: str | Path) -> FolderImages:
    """The images of a folder (not its sub-folders) and every other entry, each with why it is skipped:
    other suffixes, videos, sub-folders, named pipes and devices (never opened: reading one blocks),
    broken links. Hidden entries (.DS_Store, ._photo.jpg) are left out of both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    images, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        problem = not_a_file(path)
        suffix = path.suffix.lower()
        if problem == "a folder":
            skipped.append(SkippedFile(path, "a sub-folder; its images are not shown"))
        elif problem is not None:
            skipped.append(SkippedFile(path, problem))
        elif suffix in IMAGE_SUFFIXES or suffix in TENSOR_SUFFIXES:
            images.append(path)
        elif suffix in VIDEO_SUFFIXES:
            skipped.append(SkippedFile(path, "a video; open it on its own"))
        else:
            skipped.append(SkippedFile(path, f"not an image ({suffix or 'no suffix'})"))
    if not images:
        also = f"; {FolderImages(images, skipped).skipped_summary()}" if skipped else ""
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}){also}")
    return FolderImages(images, skipped)


def list_images(folder: str | Path) -> list[Path]:
    """The images of a folder in name order; `scan_folder` also says which files were skipped and why."""
    return scan_folder(folder).images
