"""Frames in: a capture thread owns the OpenCV source and writes into one latest-frame slot.

The slot holds at most one frame: a frame nobody took before the next one arrives is dropped and
counted, never queued. A camera or stream that stops is reconnected with back-off while it stays selected.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QThread, pyqtSignal

from livevis.app.live.jobs import describe_failure
from livevis.app.live.slot import CapturedFrame, LatestFrameSlot
from livevis.app.sources import open_source
from livevis.app.sources.base import OnFailure
from livevis.app.sources.cameras import CameraMode, CameraSource, camera_info, list_cameras, probe_cameras
from livevis.app.sources.files import ImageListSource, SourceGone
from livevis.app.sources.network import StreamEnded, StreamSource, is_stream_url
from livevis.models.errors import InputError

AUTO = "auto"
"""Source spec: camera 0 if there is one, else the bundled sample photos."""


class Backoff:
    """The waits between reconnect attempts: 0.5 s, doubling up to 8 s, for as long as the source is selected."""

    FIRST_S = 0.5
    MAX_S = 8.0

    def __init__(self):
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.MAX_S, self.FIRST_S * 2**self.attempts)
        self.attempts += 1
        return delay


class CaptureThread(QThread):
    """Owns the frame source; reads at the source's pace into the latest-frame slot.

    Requests (new source, step, mirror, camera mode) are queued from the GUI thread and applied between reads.
    A stream connects on its own thread while the previous source keeps running; it replaces that source
    with its first frame, or fails with one message. A camera or stream that stops is reopened with back-off
    (`Backoff`) while the last frame stays on screen, marked through `stale`.
    """

    status = pyqtSignal(str)
    error = pyqtSignal(str)
    source_changed = pyqtSignal(str)
    cameras_found = pyqtSignal(list)
    """[CameraInfo, ...]"""
    stale = pyqtSignal(str)
    """Why the frame shown is old ('reconnecting to HOST (attempt 2)', 'stream ended'); '' once frames flow."""

    def __init__(self, slot: LatestFrameSlot, parent=None):
        super().__init__(parent)
        self.slot = slot
        self._requests: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._source = None
        self._pending: StreamSource | None = None
        """A stream still connecting; the current source runs until its first frame."""
        self._lost: Backoff | None = None
        """Set while the current source is being reconnected."""
        self._reconnect_at: float | None = None
        self._sequence = 0
        self._camera_modes: dict[str, CameraMode] = {}
        self.mirror = True
        self.reconnects = 0
        """Successful reconnects of a camera or stream (for --stats-json)."""

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

    def set_camera_modes(self, modes: dict[str, CameraMode]) -> None:
        """Resolution and frame rate per camera (by `CameraInfo.key`); the camera running reopens if its changed."""
        self._requests.put(("camera_modes", dict(modes)))

    def stop(self) -> None:
        self._stop.set()
        self._requests.put(("stop", None))

    # --- the thread ---
    def run(self) -> None:
        self._next_due = time.perf_counter()
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # an exception escaping QThread.run would abort the whole app
                self._close_source()
                self.error.emit(f"{describe_failure(exc)} (reading frames stopped; open a source again)")
        self._close_pending()
        self._close_source()

    def _step(self) -> None:
        now = time.perf_counter()
        if self._source is None:
            timeout = 0.0 if self._pending is not None else 0.25
        elif self._reconnect_at is not None:
            timeout = max(0.0, self._reconnect_at - now)
        else:
            timeout = max(0.0, self._next_due - now)
        try:
            kind, value = self._requests.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            self._next_due = time.perf_counter()
            self._handle(kind, value)
            return
        if self._pending is not None:
            self._check_pending()
        if self._source is None:
            return
        if self._reconnect_at is not None:
            if time.perf_counter() < self._reconnect_at:
                return
            self._reconnect_at = None
            try:
                self._source.reconnect()
            except InputError:
                self._schedule_reconnect()
                return
        if self._source.paced_by_consumer and not self.slot.wait_until_taken(0.05):
            return  # a file waits for the worker instead of decoding frames nobody will see
        read_at = time.perf_counter()
        try:
            image = self._source.read()
        except InputError as exc:
            self._read_failed(exc)
            return
        if image is not None:
            if self._lost is not None:
                self._back()
            self._put(image, self._source)
        # a late frame (the worker was busy) does not make the next ones hurry to catch up
        self._next_due = max(self._next_due, read_at) + self._source.wait_s()

    def _put(self, image, source) -> None:
        self._sequence += 1
        still = isinstance(source, ImageListSource)
        self.slot.put(CapturedFrame(image, time.perf_counter(), self._sequence, source.label, still))
        if still:
            self.source_changed.emit(source.label)

    # --- failures and reconnecting ---
    def _read_failed(self, exc: InputError) -> None:
        source = self._source
        if isinstance(exc, StreamEnded):
            self.error.emit(str(exc))
            self.stale.emit("stream ended")
            self.source_changed.emit(f"{source.label} (ended)")
            self._close_source()
            return
        if source.on_failure is OnFailure.RECONNECT:
            if self._lost is None:
                self._lost = Backoff()
                self.error.emit(f"{exc}; reconnecting, keeping the last frame")
            self._schedule_reconnect()
            return
        self.error.emit(str(exc))
        if isinstance(exc, SourceGone):
            self.source_changed.emit(f"{source.label} (gone)")
        if source.on_failure is not OnFailure.SKIP:
            self._close_source()

    def _schedule_reconnect(self) -> None:
        self._reconnect_at = time.perf_counter() + self._lost.next_delay()
        text = f"reconnecting to {self._source.host} (attempt {self._lost.attempts})"
        self.stale.emit(text)
        self.source_changed.emit(text)

    def _back(self) -> None:
        self.reconnects += 1
        self._lost, self._reconnect_at = None, None
        self.stale.emit("")
        self.status.emit(f"{self._source.host} is back")
        self.source_changed.emit(self._source.label)

    # --- streams that are still connecting ---
    def _check_pending(self) -> None:
        pending = self._pending
        try:
            image = pending.read(wait_s=0.0 if self._source is not None else None)
        except InputError as exc:
            self._close_pending()
            self.error.emit(str(exc) + ("" if self._source is None else f"; {self._source.label} goes on"))
            self.source_changed.emit(self._source.label if self._source is not None else "no source")
            return
        if image is None:
            return
        self._pending = None
        self._replace_source(pending)
        self._put(image, pending)

    def _close_pending(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None

    # --- requests ---
    def _handle(self, kind: str, value) -> None:
        if kind == "resume":
            kind, value = "source", value if value and Path(value).exists() else AUTO
        if kind == "source" and value == AUTO:
            value = self._auto_source()
        if kind == "source":
            self._open(value)
        elif kind == "step" and isinstance(self._source, ImageListSource):
            self._source.step(value)
        elif kind == "probe":
            self.cameras_found.emit(list_cameras())
        elif kind == "close":
            self._close_pending()
            self._close_source()
            self.source_changed.emit(value)
        elif kind == "mirror":
            self.mirror = value
            if isinstance(self._source, CameraSource):
                self._source.mirror = value
        elif kind == "camera_modes":
            self._camera_modes = value
            source = self._source
            if isinstance(source, CameraSource) and value.get(source.info.key, CameraMode()) != source.mode:
                source.mode = value.get(source.info.key, CameraMode())
                try:
                    source.reconnect()
                except InputError as exc:
                    self._read_failed(exc)
                    return
                self._say_camera_mode(source)

    def _open(self, spec: str | list[str]) -> None:
        """A stream connects in the background; anything else opens here, and on failure the previous
        source keeps running."""
        self._close_pending()
        if isinstance(spec, str) and is_stream_url(spec):
            try:
                self._pending = open_source(spec, demand=self.slot)
            except InputError as exc:  # a URL that does not parse: the previous source keeps running
                self.error.emit(str(exc))
                return
            self.source_changed.emit(f"connecting to {self._pending.host}...")
            return
        mode = self._camera_modes.get(camera_info(int(spec)).key) if isinstance(spec, str) and spec.isdigit() else None
        try:
            source = open_source(spec, self.mirror, camera_mode=mode)
        except InputError as exc:
            self.error.emit(str(exc))  # the previous source keeps running
            return
        self._replace_source(source)
        if isinstance(source, ImageListSource) and source.skipped_summary:
            self.status.emit(f"{source.label}: {source.skipped_summary}")
        if isinstance(source, CameraSource) and mode is not None:
            self._say_camera_mode(source)

    def _replace_source(self, source) -> None:
        self._close_source()
        self._source = source
        self._lost, self._reconnect_at = None, None
        self.stale.emit("")
        self.source_changed.emit(source.label)

    def _say_camera_mode(self, source: CameraSource) -> None:
        asked, got = str(source.mode) or "its defaults", str(source.delivered) or "unknown"
        self.status.emit(f"{source.label}: asked for {asked}, delivers {got}")

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
        self._lost, self._reconnect_at = None, None

    def source_kind(self) -> str:
        source = self._source
        if isinstance(source, CameraSource):
            return "camera"
        if isinstance(source, StreamSource):
            return "stream"
        return "files" if source is not None else "none"
