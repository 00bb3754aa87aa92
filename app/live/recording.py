"""Recording what is shown: one MP4 file per view (OpenCV's mp4v), written off the GUI thread.

`ViewVideos` writes frames of named views; `Recorder` runs it on a thread of its own behind a bounded
queue, so a disk that cannot keep up drops frames (counted) instead of queueing them without bound.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from livevis import views as declared
from livevis.app.live.jobs import describe_failure
from livevis.app.live.threads import keep_until_finished
from livevis.models.data.output import new_output_folder
from livevis.models.data.videos import ViewVideos


class Recorder(QThread):
    """Records the views offered to it until stopped, into a new folder named after `folder` (`-2`, `-3`, ...
    added where that one exists); `recording_to` and `finished_recording` name the folder."""

    error = pyqtSignal(str)
    recording_to = pyqtSignal(str)
    finished_recording = pyqtSignal(str, object)  # folder, {view: frames written}

    QUEUE_FRAMES = 8

    def __init__(self, folder: Path, fps: float, parent=None):
        super().__init__(parent)
        self.folder, self.fps = folder, fps
        self._queue: queue.Queue = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._stop = threading.Event()
        self.dropped = 0

    def offer(self, images: Mapping[str, np.ndarray], edits: tuple[str, ...] = ()) -> None:
        """Called on the GUI thread for each result shown, with the edits it ran with (described); never
        blocks."""
        try:
            self._queue.put_nowait((dict(images), tuple(edits)))
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        self._stop.set()

    def _write_edits(self, edited: list[dict]) -> None:
        try:
            (self.folder / "edits.json").write_text(json.dumps(edited, indent=1))
        except OSError as exc:
            self.error.emit(f"could not write {self.folder / 'edits.json'}: {exc.strerror or exc}")

    def run(self) -> None:
        videos = None
        edited: list[dict] = []
        """From which frame on which edits ran: a recording keeps what the network was shown with."""
        try:
            self.folder = new_output_folder(self.folder)
            self.recording_to.emit(str(self.folder))
            videos = ViewVideos(self.folder, self.fps)
            while not (self._stop.is_set() and self._queue.empty()):
                try:
                    images, edits = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if not edited or edited[-1]["edits"] != list(edits):
                    edited.append({"from_frame": max(videos.frames.values(), default=0), "edits": list(edits)})
                videos.write(images)
        except Exception as exc:  # an exception escaping QThread.run would abort the whole app
            self.error.emit(f"recording stopped: {describe_failure(exc)}")
        finally:
            if videos is not None:
                videos.close()
            if any(entry["edits"] for entry in edited):
                self._write_edits(edited)
            self.finished_recording.emit(str(self.folder), dict(videos.frames) if videos is not None else {})


class RecordingControl:
    """`r` in the window: records what the views shown declare for recordings (`ViewSpec.recorded`: the
    overlay, the grid, backprop, concepts, a transformer's attention and token norms on the frame) into a new
    folder beside the snapshots, one video per picture, until pressed again."""

    def __init__(self, window):
        self.window = window
        self.recorder: Recorder | None = None
        self.started_at = 0.0
        self.last_folder: str | None = None
        self.last_frames: dict[str, int] = {}

    @property
    def recording(self) -> bool:
        return self.recorder is not None and not self.recorder.isFinished()

    def seconds(self) -> float | None:
        return time.perf_counter() - self.started_at if self.recording else None

    def toggle(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()  # it writes what is queued, closes the files, then says where
            self.window.actions_by_name["record"].setChecked(True)  # until the files are closed
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = self.window.snapshot_folder() / f"livevis-recording-{stamp}"
        self.recorder = Recorder(folder, self.window.stats.fps() or 25.0, self.window)
        self.recorder.error.connect(self.window.show_error)
        self.recorder.finished_recording.connect(self._finished)
        self.recorder.recording_to.connect(
            lambda where: self.window.status.message(f"recording to {where} (r stops)", 4000)
        )
        self.started_at = time.perf_counter()
        self.recorder.start()
        self.window.actions_by_name["record"].setChecked(True)

    def offer(self, result) -> None:
        if self.recorder is not None:
            views = result.views
            kept = {name for view in views.views for name in declared.view(view).recorded}
            edits = tuple(edit.describe() for edit in result.options.edits)
            self.recorder.offer({name: image for name, image in views.images.items() if name in kept}, edits)

    def _finished(self, folder: str, frames: dict) -> None:
        self.last_folder, self.last_frames = folder, frames
        dropped = f", {self.recorder.dropped} frames dropped (the disk was slower)" if self.recorder.dropped else ""
        self.recorder.wait()
        self.recorder = None
        self.window.actions_by_name["record"].setChecked(False)
        if frames:
            counts = ", ".join(f"{name} {count}" for name, count in frames.items())
            self.window.status.message(f"recorded to {folder}: {counts} frames{dropped}", 10000)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        if self.recorder is not None:
            self.recorder.stop()
            if not self.recorder.wait(timeout_ms):
                keep_until_finished(self.recorder)
