"""Frames from cameras, video files, image files and folders, as RGB uint8 arrays (OpenCV, no Qt).

Every failure is an `InputError` whose message names the file and what to do; nothing here raises
an OpenCV error at a user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.models.errors import InputError

# OpenCV warns on stderr for every camera index that does not open, and FFmpeg for every file it
# cannot parse; livevis says what went wrong itself. FFmpeg reads its level when it first opens a file.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


def _to_rgb(decoded: np.ndarray) -> np.ndarray:
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8; missing, empty, truncated and non-image files raise InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give an image or video file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    if _is_truncated_jpeg(data):
        raise InputError(f"{path} is a truncated JPEG (the file ends before the image does)")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise InputError(f"{path} is not an image OpenCV can decode (corrupt, truncated or another format)")
    if decoded.dtype != np.uint8:
        decoded = cv2.normalize(decoded, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return _to_rgb(decoded)


def _is_truncated_jpeg(data: np.ndarray) -> bool:
    """OpenCV decodes a cut-off JPEG with a grey bottom and a warning; its end-of-image marker says."""
    if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return False
    tail = data[-1024:].tobytes()
    return b"\xff\xd9" not in tail


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def open_video(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{path}: cannot open this video (unsupported codec or not a video file)")
    return capture


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
    if not ok or frame is None:
        raise InputError(f"{path}: cannot decode frame {index} (the file may be truncated or not a video)")
    return _to_rgb(frame)


def read_frame(path: str | Path, index: int = 0) -> np.ndarray:
    """An image file, or frame `index` of a video file, chosen by suffix (images first otherwise)."""
    path = Path(path)
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


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


@dataclass(frozen=True)
class Resolution:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Resolution:
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise InputError(f"resolution {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
        if width < 16 or height < 16 or width > 8192 or height > 8192:
            raise InputError(f"resolution {text!r} is out of range (16..8192 per side)")
        return cls(width, height)


def synthetic_frames(resolution: Resolution, count: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Frames of bright blobs moving over a textured background: real work for every layer,
    no file needed. Generated once up front so that the benchmark's decode stage costs nothing."""
    rng = np.random.default_rng(seed)
    h, w = resolution.height, resolution.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(count):
        t = 2 * np.pi * i / count
        frame = background.astype(np.float32) * 0.5
        for k, color in enumerate(((255, 64, 32), (32, 200, 255), (240, 240, 64))):
            cx = w * (0.5 + 0.3 * np.cos(t + 2.1 * k))
            cy = h * (0.5 + 0.3 * np.sin(1.3 * t + 2.1 * k))
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.08 * min(h, w)) ** 2))
            frame += blob[..., None] * np.array(color, dtype=np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


class CameraSource:
    """A webcam by index, mirrored by default so that moving left moves left on screen."""

    on_failure = "retry"
    """What the capture thread does when a read fails: retry (reopen every second), skip, or stop."""

    def __init__(self, index: int, mirror: bool = True):
        self.index = index
        self.mirror = mirror
        self.label = f"camera {index}"
        self._capture: cv2.VideoCapture | None = None
        self.open()

    def open(self) -> None:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"no camera at index {self.index} (unplugged, or used by another program)")
        self._capture = capture

    def read(self) -> np.ndarray:
        if self._capture is None:
            self.open()
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self.close()
            raise InputError(f"camera {self.index} stopped delivering frames (disconnected?)")
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)  # in place: the decoder's array is ours
        return cv2.flip(frame, 1) if self.mirror else frame

    def wait_s(self) -> float:
        return 0.0  # reading blocks until the camera's next frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class VideoFileSource:
    """A video file played at its own frame rate, looping; slower when the model cannot keep up
    (a file, unlike a camera, can wait, so no frame is decoded only to be dropped)."""

    paced_by_consumer = True
    on_failure = "stop"

    def __init__(self, path: Path):
        self.path = path
        self.label = path.name
        self._capture = open_video(path)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.interval = 1.0 / fps if 1 <= fps <= 1000 else 1.0 / 25
        self._produced = False

    def read(self) -> np.ndarray:
        ok, frame = self._capture.read()
        if not ok:
            if not self._produced:
                raise InputError(f"{self.path}: no frame could be decoded")
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
            if not ok:
                raise InputError(f"{self.path}: cannot rewind this video")
        self._produced = True
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)  # in place: the decoder's array is ours

    def wait_s(self) -> float:
        return self.interval

    def close(self) -> None:
        self._capture.release()


class ImageListSource:
    """Image files shown one at a time (a slideshow stepped by keys); a bad file is reported and skipped."""

    on_failure = "skip"

    def __init__(self, paths: list[Path], start: int = 0):
        if not paths:
            raise InputError("no image files to show")
        self.paths = paths
        self.position = start % len(paths)
        self._pending = True

    @property
    def label(self) -> str:
        return f"{self.paths[self.position].name} ({self.position + 1}/{len(self.paths)})"

    def step(self, delta: int) -> None:
        self.position = (self.position + delta) % len(self.paths)
        self._pending = True

    def read(self) -> np.ndarray | None:
        """The current image once after each step; None until the next step."""
        if not self._pending:
            return None
        self._pending = False
        return read_image(self.paths[self.position])

    def wait_s(self) -> float:
        return 0.05

    def close(self) -> None:
        pass


def open_source(spec: str | list[str], mirror: bool = True):
    """`0`-`9`: a camera; a folder: its images; a video file; one or more image files."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) == 1 and specs[0].isdigit():
        return CameraSource(int(specs[0]), mirror)
    paths = [Path(s).expanduser() for s in specs]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        return ImageListSource(list_images(paths[0]))
    if len(paths) == 1 and is_video_path(paths[0]):
        return VideoFileSource(paths[0])
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        raise InputError(f"open one video at a time ({videos[0].name} was given with other files)")
    return ImageListSource(paths)


def probe_cameras(max_index: int = 5) -> list[int]:
    """Indices of the cameras that open (slow for cameras that exist: call off the GUI thread)."""
    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append(index)
        capture.release()
    return found
