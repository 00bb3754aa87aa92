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

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from livevis.app.jobs import describe_failure
from livevis.app.live_sources import CameraSource, ImageListSource, open_source, probe_cameras
from livevis.app.sources import SourceGone
from livevis.models.errors import InputError


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    captured_at: float
    """time.perf_counter() when the frame was read."""
    sequence: int
    source: str
    still: bool = False
    """A still image (a file of a folder, a drawing): no frame rate to speak of."""


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

    def resume(self, saved: str | None) -> None:
        """The files shown last time if they are still there, else `AUTO` (checked on this thread)."""
        self._requests.put(("resume", saved))

    def step(self, delta: int) -> None:
        self._requests.put(("step", delta))

    def probe_cameras(self) -> None:
        """Answered by `cameras_found`: opening cameras can take a second each."""
        self._requests.put(("probe", None))

    def close_source(self, label: str = "no source") -> None:
        """No frames from here: another producer (the drawing pad) fills the slot meanwhile."""
        self._requests.put(("close", label))

    def set_mirror(self, mirror: bool) -> None:
        self._requests.put(("mirror", mirror))

    def stop(self) -> None:
        self._stop.set()
        self._requests.put(("stop", None))

    # --- the thread ---
    def run(self) -> None:
        self._next_due = time.perf_counter()
        self._retry_spec = None
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # an exception escaping QThread.run would abort the whole app
                self._close_source()
                self.error.emit(f"{describe_failure(exc)} (reading frames stopped; open a source again)")
        self._close_source()

    def _step(self) -> None:
        timeout = max(0.0, self._next_due - time.perf_counter()) if self._source else 0.25
        try:
            kind, value = self._requests.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            if kind == "source":
                self._retry_spec = None
            self._next_due = time.perf_counter()
            self._handle(kind, value)
            return
        if self._source is None:
            if self._retry_spec is not None:
                self._retry_spec = self._retry(self._retry_spec)
            return
        if getattr(self._source, "paced_by_consumer", False) and not self.slot.wait_until_taken(0.05):
            return  # a file waits for the worker instead of decoding frames nobody will see
        read_at = time.perf_counter()
        try:
            image = self._source.read()
        except InputError as exc:
            if self._source.on_failure == "retry":
                self._retry_spec = str(self._source.index)
                self.error.emit(f"{exc}; retrying every second, keeping the last frame")
            else:
                self.error.emit(str(exc))
            if isinstance(exc, SourceGone):
                self.source_changed.emit(f"{self._source.label} (gone)")
            if self._source.on_failure != "skip":
                self._close_source()
            return
        if image is not None:
            self._sequence += 1
            still = isinstance(self._source, ImageListSource)
            self.slot.put(CapturedFrame(image, time.perf_counter(), self._sequence, self._source.label, still))
            if isinstance(self._source, ImageListSource):
                self.source_changed.emit(self._source.label)
        # a late frame (the worker was busy) does not make the next ones hurry to catch up
        self._next_due = max(self._next_due, read_at) + self._source.wait_s()

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
        if kind == "resume":
            kind, value = "source", value if value and Path(value).exists() else AUTO
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
            if isinstance(source, ImageListSource) and source.skipped_summary:
                self.status.emit(f"{source.label}: {source.skipped_summary}")
        elif kind == "step" and isinstance(self._source, ImageListSource):
            self._source.step(value)
        elif kind == "probe":
            self.cameras_found.emit(probe_cameras())
        elif kind == "close":
            self._close_source()
            self.source_changed.emit(value)
        elif kind == "mirror":
            self.mirror = value
            if isinstance(self._source, CameraSource):
                self._source.mirror = value

    def _auto_source(self) -> str:
        """Camera 0 if it opens, else the bundled sample photos."""
        if probe_cameras(1):
            return "0"
        from livevis.assets import SAMPLES_DIR

        self.status.emit("No camera found: showing the bundled sample photos (PgUp/PgDown to step, File to open yours)")
        return str(SAMPLES_DIR)

    def _close_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def source_kind(self) -> str:
        source = self._source
        return "camera" if isinstance(source, CameraSource) else "files" if source is not None else "none"
