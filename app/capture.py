"""Frames in: a capture thread owns the OpenCV source and writes into one latest-frame slot.

The slot holds at most one frame: a frame nobody took before the next one arrives is dropped and
counted, never queued.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from app.sources import VIDEO_SUFFIXES, is_video_path, list_images, read_image
from models.errors import InputError


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    captured_at: float
    """time.perf_counter() when the frame was read."""
    sequence: int
    source: str


class LatestFrameSlot:
    """One slot between a producer and a consumer thread; putting replaces, taking waits."""

    def __init__(self):
        self._condition = threading.Condition()
        self._frame: CapturedFrame | None = None
        self.captured = 0
        self.dropped = 0

    def put(self, frame: CapturedFrame) -> None:
        with self._condition:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.captured += 1
            self._condition.notify_all()

    def take(self, timeout: float | None = None) -> CapturedFrame | None:
        with self._condition:
            if self._frame is None:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self._condition.notify_all()
            return frame

    def wait_until_taken(self, timeout: float) -> bool:
        """True once the slot is empty (the consumer took the frame), False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._frame is None, timeout)

    def wake(self) -> None:
        """Wake a waiting consumer without a frame (something else needs its attention)."""
        with self._condition:
            self._condition.notify_all()


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
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(frame[:, ::-1]) if self.mirror else frame

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
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise InputError(f"{path}: cannot open this video (unsupported codec or not a video file)")
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
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

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


AUTO = "auto"
"""Source spec: camera 0 if there is one, else the bundled sample photos."""


class CaptureThread(QThread):
    """Owns the frame source; reads at the source's pace into the latest-frame slot.

    Requests (new source, step, mirror) are queued from the GUI thread and applied between reads.
    A camera that fails is retried every second; the last frame stays on screen meanwhile.
    """

    status = pyqtSignal(str)
    error = pyqtSignal(str)
    source_changed = pyqtSignal(str)
    cameras_found = pyqtSignal(list)

    RETRY_S = 1.0

    def __init__(self, slot: LatestFrameSlot, parent=None):
        super().__init__(parent)
        self.slot = slot
        self._requests: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._source = None
        self._sequence = 0
        self.mirror = True

    # --- requests from the GUI thread ---
    def set_source(self, spec: str | list[str]) -> None:
        self._requests.put(("source", spec))

    def step(self, delta: int) -> None:
        self._requests.put(("step", delta))

    def probe_cameras(self) -> None:
        """Answered by `cameras_found`: opening cameras can take a second each."""
        self._requests.put(("probe", None))

    def set_mirror(self, mirror: bool) -> None:
        self._requests.put(("mirror", mirror))

    def stop(self) -> None:
        self._stop.set()
        self._requests.put(("stop", None))

    # --- the thread ---
    def run(self) -> None:
        next_due = time.perf_counter()
        retry_spec = None
        while not self._stop.is_set():
            timeout = max(0.0, next_due - time.perf_counter()) if self._source else 0.25
            try:
                kind, value = self._requests.get(timeout=timeout)
                self._handle(kind, value)
                if kind == "source":
                    retry_spec = None
                next_due = time.perf_counter()
                continue
            except queue.Empty:
                pass
            if self._source is None:
                if retry_spec is not None:
                    retry_spec = self._retry(retry_spec)
                continue
            if getattr(self._source, "paced_by_consumer", False) and not self.slot.wait_until_taken(0.05):
                continue  # a file waits for the worker instead of decoding frames nobody will see
            read_at = time.perf_counter()
            try:
                image = self._source.read()
            except InputError as exc:
                if self._source.on_failure == "retry":
                    retry_spec = str(self._source.index)
                    self.error.emit(f"{exc}; retrying every second, keeping the last frame")
                else:
                    self.error.emit(str(exc))
                if self._source.on_failure != "skip":
                    self._close_source()
                continue
            if image is not None:
                self._sequence += 1
                self.slot.put(CapturedFrame(image, time.perf_counter(), self._sequence, self._source.label))
                if isinstance(self._source, ImageListSource):
                    self.source_changed.emit(self._source.label)
            # a late frame (the worker was busy) does not make the next ones hurry to catch up
            next_due = max(next_due, read_at) + self._source.wait_s()
        self._close_source()

    def _retry(self, spec: str):
        try:
            self._source = open_source(spec, self.mirror)
        except InputError:
            self._stop.wait(self.RETRY_S)
            return spec
        self.status.emit(f"{self._source.label} is back")
        self.source_changed.emit(self._source.label)
        return None

    def _handle(self, kind: str, value) -> None:
        if kind == "source" and value == AUTO:
            value = self._auto_source()
        if kind == "source":
            try:
                source = open_source(value, self.mirror)
            except InputError as exc:
                self.error.emit(str(exc))  # the previous source keeps running
                return
            self._close_source()
            self._source = source
            self.source_changed.emit(source.label)
        elif kind == "step" and isinstance(self._source, ImageListSource):
            self._source.step(value)
        elif kind == "probe":
            self.cameras_found.emit(probe_cameras())
        elif kind == "mirror":
            self.mirror = value
            if isinstance(self._source, CameraSource):
                self._source.mirror = value

    def _auto_source(self) -> str:
        """Camera 0 if it opens, else the bundled sample photos."""
        if probe_cameras(1):
            return "0"
        from assets import SAMPLES_DIR

        self.status.emit("No camera found: showing the bundled sample photos (PgUp/PgDown to step, File to open yours)")
        return str(SAMPLES_DIR)

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def source_kind(self) -> str:
        source = self._source
        return "camera" if isinstance(source, CameraSource) else "files" if source is not None else "none"


def probe_cameras(max_index: int = 5) -> list[int]:
    """Indices of the cameras that open (slow for cameras that exist: call off the GUI thread)."""
    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append(index)
        capture.release()
    return found
