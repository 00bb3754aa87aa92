"""The live frame sources the capture thread reads: cameras (listed by name), network streams, video files
played at their own rate, image and tensor files stepped through, and synthetic frames for the benchmark
(OpenCV, no Qt).

Every failure is an `InputError` whose message names the source and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.app.network_sources import FrameDemand, StreamSource, is_stream_url
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


V4L2_SYSFS = Path("/sys/class/video4linux")
"""Where Linux lists its video devices by name, without opening them."""


@dataclass(frozen=True)
class CameraMode:
    """A resolution and frame rate asked of a camera; None leaves the camera's own choice."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None

    @classmethod
    def parse(cls, text: str) -> CameraMode:
        """'1280x720@30', '1280x720', '@30' or '' (the camera's defaults)."""
        size, _, rate = text.strip().partition("@")
        resolution = Resolution.parse(size) if size else None
        try:
            fps = float(rate) if rate else None
        except ValueError:
            raise InputError(f"frame rate {rate!r} is not a number (e.g. 1280x720@30)") from None
        if fps is not None and not 1 <= fps <= 240:
            raise InputError(f"frame rate {rate!r} is out of range (1..240)")
        return cls(resolution and resolution.width, resolution and resolution.height, fps)

    def __str__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width and self.height else ""
        return size + (f"@{self.fps:g}" if self.fps else "")


@dataclass(frozen=True)
class CameraInfo:
    index: int
    name: str
    """The device's own name (V4L2's), else 'Camera N'."""

    @property
    def key(self) -> str:
        """What the camera's settings are remembered under: its name, which survives re-plugging into
        another port (the index does not)."""
        return self.name


def list_cameras(sysfs: Path = V4L2_SYSFS, max_index: int = 5) -> list[CameraInfo]:
    """The cameras by name. On Linux the V4L2 devices in sysfs, without opening any (a webcam's metadata
    node, index 1, is left out); elsewhere the indices that open, named 'Camera N'."""
    if sysfs.is_dir():
        cameras = []
        for device in sysfs.glob("video*"):
            number = device.name.removeprefix("video")
            if not number.isdigit() or _read_text(device / "index", "0") != "0":
                continue
            cameras.append(CameraInfo(int(number), _read_text(device / "name", f"Camera {number}")))
        return sorted(cameras, key=lambda camera: camera.index)
    return [CameraInfo(index, f"Camera {index}") for index in probe_cameras(max_index)]


def camera_info(index: int, sysfs: Path = V4L2_SYSFS) -> CameraInfo:
    """One camera's name without opening it: V4L2's where there is one, else 'Camera N'."""
    return CameraInfo(index, _read_text(sysfs / f"video{index}" / "name", f"Camera {index}"))


def _read_text(path: Path, default: str) -> str:
    try:
        return path.read_text().strip() or default
    except OSError:
        return default


class CameraSource:
    """A webcam by index, mirrored by default so that moving left moves left on screen; opened at the
    resolution and frame rate of its `mode` where the camera offers them."""

    on_failure = "reconnect"
    """A read that fails makes the capture thread reconnect with back-off."""

    def __init__(self, index: int, mirror: bool = True, mode: CameraMode | None = None):
        self.index = index
        self.mirror = mirror
        self.mode = mode or CameraMode()
        self.info = camera_info(index)
        self.host = f"camera {index}"
        self.label = self.host if self.info.name == f"Camera {index}" else f"{self.info.name} (camera {index})"
        self.delivered = CameraMode()
        """What the camera delivers after being asked for `mode`."""
        self._capture: cv2.VideoCapture | None = None
        self.open()

    def open(self) -> None:
        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"no camera at index {self.index} (unplugged, or used by another program)")
        if self.mode.width and self.mode.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.mode.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.mode.height)
        if self.mode.fps:
            capture.set(cv2.CAP_PROP_FPS, self.mode.fps)
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.delivered = CameraMode(width or None, height or None, fps if fps and fps > 0 else None)
        self._capture = capture

    def reconnect(self) -> None:
        self.close()
        self.open()

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


def open_source(spec: str | list[str], mirror: bool = True, *, camera_mode: CameraMode | None = None,
                demand: FrameDemand | None = None):
    """`0`-`9`: a camera (at `camera_mode`); a URL: a network stream (decoding the frames `demand` wants);
    a folder: its images; a video file; one or more image files."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) == 1 and specs[0].isdigit():
        return CameraSource(int(specs[0]), mirror, camera_mode)
    if len(specs) == 1 and is_stream_url(specs[0]):
        return StreamSource(specs[0], demand)
    if any(is_stream_url(s) for s in specs):
        raise InputError("open one stream URL at a time, on its own")
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
