"""Video files: reading a frame, and writing one video per view (OpenCV, no Qt).

One reader for every part of livevis that opens a video (the live view, `render`, mining), so that a
frame reads the same everywhere; every failure is an `InputError` that names the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .images import VIDEO_SUFFIXES, check_regular_file
from .output import output_folder

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


class ViewVideos:
    """One video per view name; each file keeps the size of its first frame (later ones are resized)."""

    def __init__(self, folder: Path, fps: float):
        self.folder = output_folder(folder)
        self.fps = max(1.0, min(float(fps), 120.0))
        self._writers: dict[str, tuple[cv2.VideoWriter, tuple[int, int]]] = {}
        self.frames: dict[str, int] = {}

    def write(self, images: Mapping[str, np.ndarray]) -> None:
        for name, image in images.items():
            if image is None or not image.size:
                continue
            writer, size = self._writers.get(name) or self._open(name, image)
            if (image.shape[1], image.shape[0]) != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self.frames[name] = self.frames.get(name, 0) + 1

    def _open(self, name: str, image: np.ndarray):
        size = (image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)  # codecs want even sides
        path = self.folder / f"{name}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
        if not writer.isOpened():
            raise OutputError(f"cannot write the video {path}: is the folder writable?")
        self._writers[name] = (writer, size)
        return writer, size

    def paths(self) -> list[Path]:
        return [self.folder / f"{name}.mp4" for name in self._writers]

    def close(self) -> None:
        for writer, _ in self._writers.values():
            writer.release()
