"""The live frame sources the capture thread reads: cameras, video files played at their own rate,
image and tensor files stepped through, and synthetic frames for the benchmark (OpenCV, no Qt).

Every failure is an `InputError` whose message names the source and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.app.sources import (
    VIDEO_SUFFIXES,
    FolderImages,
    SkippedFile,
    SourceGone,
    is_video_path,
    open_video,
    read_image,
    scan_folder,
)
from livevis.models.data.images import check_regular_file
from livevis.models.data.tensors import is_tensor_path, read_tensor
from livevis.models.errors import InputError


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
            if not self._produced and int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 0:
                raise InputError(f"{self.path} has no frames (an empty video)")
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

    def __init__(self, paths: list[Path], start: int = 0, skipped: list[SkippedFile] | None = None):
        if not paths:
            raise InputError("no image files to show")
        self.paths = paths
        self.position = start % len(paths)
        self.skipped = list(skipped or [])
        """What the folder held besides images, for the status bar (`skipped_summary`)."""
        self._pending = True

    @property
    def skipped_summary(self) -> str:
        """'skipped 2 files: notes.txt (not an image (.txt)), ...', or '' when nothing was skipped."""
        return FolderImages(self.paths, self.skipped).skipped_summary()

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
        path = self.paths[self.position]
        if not path.parent.exists():
            raise SourceGone(f"{path.parent} is gone (moved or deleted); open another source")
        return read_tensor(path) if is_tensor_path(path) else read_image(path)

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
        if not (len(paths) == 1 and path.is_dir()):
            check_regular_file(path)
    if len(paths) == 1 and paths[0].is_dir():
        folder = scan_folder(paths[0])
        return ImageListSource(folder.images, skipped=folder.skipped)
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
