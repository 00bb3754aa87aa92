"""Cameras: listed by name without opening them, opened at a resolution and frame rate, mirrored (OpenCV,
no Qt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livevis.app.sources.base import OnFailure
from livevis.app.sources.synthetic import Resolution
from livevis.models.errors import InputError

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

    on_failure = OnFailure.RECONNECT
    paced_by_consumer = False

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


def probe_cameras(max_index: int = 5) -> list[int]:
    """Indices of the cameras that open (slow for cameras that exist: call off the GUI thread)."""
    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append(index)
        capture.release()
    return found
