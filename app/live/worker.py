"""Compute: a worker thread takes the newest frame, runs the pipeline, hands over one result.

The GUI thread never touches torch: it gives the worker a model (`adopt`), render requests built from
the live state (`set_request`) and snapshot requests, and takes immutable `LiveResult`s from a
one-result mailbox when `result_ready` says there is one. Any exception in the loop (a CUDA
out-of-memory, an OpenCV error) is reported through `error` and the loop goes on.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QThread, pyqtSignal

from livevis.app.live.jobs import describe_failure
from livevis.app.live.slot import CapturedFrame, LatestFrameSlot
from livevis.models import FrameViews, PreparedFrame, ViewOptions, Visualizer
from livevis.models.data.output import output_folder, save_images
from livevis.models.errors import OutputError
from livevis.models.pipeline import save_activations


@dataclass(frozen=True)
class LiveResult:
    views: FrameViews
    captured_at: float
    sequence: int
    source: str
    options: ViewOptions
    still: bool = False


_snapshot_numbers = itertools.count(1)


def save_snapshot(folder: Path, views: FrameViews, source: str = "", edits: tuple = ()) -> Path:
    """The frame, every view present, the activations (.npz) and `snapshot.json` (where the frame came from,
    the layer and channel, the edits the network ran with), in a new folder of its own. `source` is a source's
    label: a stream's URL without its password."""
    now = datetime.now()
    target = folder / f"livevis-{now.strftime('%Y%m%d-%H%M%S-%f')[:-3]}-{next(_snapshot_numbers)}"
    output_folder(target)
    save_images(target, {"frame": views.frame, **views.images})
    save_activations(target / "activations.npz", views)
    about = {
        "source": source,
        "layer": views.layer.path,
        "layer_name": views.layer.name,
        "channel": views.channel,
        "saved": now.isoformat(timespec="milliseconds"),
        "edits": [edit.describe() for edit in edits],
    }
    try:
        (target / "snapshot.json").write_text(json.dumps(about, indent=1))
    except OSError as exc:
        raise OutputError(f"could not write {target / 'snapshot.json'}: {exc.strerror or exc}") from None
    return target


class InferenceWorker(QThread):
    result_ready = pyqtSignal()  # the newest LiveResult waits in take_result()
    error = pyqtSignal(str)
    snapshot_saved = pyqtSignal(str)
    units_ranked = pyqtSignal(object)  # ((row, col), [(channel, value), ...]) at a clicked frame pixel

    def __init__(self, slot: LatestFrameSlot, parent=None):
        super().__init__(parent)
        self.slot = slot
        self._lock = threading.Lock()
        self._options = ViewOptions()
        self._frozen = False
        self._dirty = False
        self._snapshots: list[Path] = []
        self._ranking: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._visualizer: Visualizer | None = None
        self._held: CapturedFrame | None = None
        self._ahead: tuple[CapturedFrame, PreparedFrame | None] | None = None
        self._result_lock = threading.Lock()
        self._result: LiveResult | None = None
        self.processed = 0

    # --- requests from the GUI thread ---
    def take_result(self) -> LiveResult | None:
        """The newest result, once (None when it was taken already)."""
        with self._result_lock:
            result, self._result = self._result, None
        return result

    def set_request(self, options: ViewOptions, frozen: bool) -> None:
        """What to draw, and whether to keep drawing the frame held (frozen) instead of new ones."""
        with self._lock:
            self._options, self._frozen, self._dirty = options, frozen, True
        self.slot.wake()

    def adopt(self, visualizer: Visualizer, options: ViewOptions) -> None:
        """A newly loaded model, with the request that fits it: taken over between two frames."""
        with self._lock:
            self._visualizer, self._options, self._dirty = visualizer, options, True
        self.slot.wake()

    @property
    def visualizer(self) -> Visualizer | None:
        return self._visualizer

    @property
    def frozen(self) -> bool:
        """Whether the worker has taken the last freeze request (it keeps drawing the frame it holds)."""
        with self._lock:
            return self._frozen

    @property
    def held_sequence(self) -> int | None:
        """The sequence number of the frame drawn last: while frozen, the frozen frame."""
        held = self._held
        return None if held is None else held.sequence

    def request_snapshot(self, folder: Path) -> None:
        """Every press is one snapshot, each in a folder of its own."""
        with self._lock:
            self._snapshots.append(folder)
            self._dirty = True
        self.slot.wake()

    def request_ranking(self, frame_xy: tuple[float, float]) -> None:
        """The selected layer's channels ranked at the frame pixel, from the frame shown (no forward)."""
        with self._lock:
            self._ranking = frame_xy
        self.slot.wake()

    def stop(self) -> None:
        self._stop.set()
        self.slot.wake()

    # --- the thread ---
    def _deliver(self, result: LiveResult) -> None:
        """One result waits at a time: a newer one replaces it, so a GUI slower than the worker (a fast
        GPU) shows the newest frame instead of working through a growing queue of old ones."""
        with self._result_lock:
            waiting, self._result = self._result is not None, result
        if not waiting:
            self.result_ready.emit()

    def _prepare_next(self, visualizer: Visualizer) -> None:
        """Take the next frame, if one waits, and preprocess it before the result is handed over.

        Handed over first, the preprocess would run while the GUI thread converts and paints that result,
        waiting for the core and the interpreter that thread holds: 4-5 ms in the app against 1 ms alone on a
        two-core machine. This way the GUI's share overlaps the forward, whose kernels run without the
        interpreter. A frame that cannot be prepared is processed as it is, where its error is reported; one
        taken just before a freeze is dropped (the frame shown stays).
        """
        if self.frozen:
            return
        frame = self.slot.take(timeout=0)
        if frame is None:
            return
        try:
            self._ahead = frame, visualizer.engine.prepare(frame.image)
        except Exception:
            self._ahead = frame, None

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # an exception escaping QThread.run would abort the whole app
                self.error.emit(describe_failure(exc))

    def _step(self) -> None:
        if self._visualizer is None:
            # no model yet: leave frames in the slot, where each one nobody takes counts as dropped
            self._stop.wait(0.02)
            return
        with self._lock:
            frozen, dirty = self._frozen, self._dirty
            ranking, self._ranking = self._ranking, None
        if ranking is not None:
            ranked = self._visualizer.units_at(ranking, self._options.layer)
            if ranked is not None:
                self.units_ranked.emit(ranked)
        ahead, self._ahead = self._ahead, None
        prepared = None
        if not frozen or self._held is None:
            frame, prepared = ahead if ahead is not None else (self.slot.take(timeout=0.05), None)
            if frame is not None:
                self._held, dirty = frame, True
        elif not dirty:
            self.slot.take(timeout=0.05)  # frozen: drop new frames, wait for requests
        if not dirty or self._held is None:
            return
        with self._lock:
            options, visualizer, self._dirty = self._options, self._visualizer, False
            snapshots, self._snapshots = self._snapshots, []
        self._process(visualizer, self._held, options, snapshots, prepared)

    def _process(
        self,
        visualizer: Visualizer,
        frame: CapturedFrame,
        options: ViewOptions,
        snapshots: list[Path],
        prepared: PreparedFrame | None = None,
    ):
        views = visualizer.process(
            prepared or frame.image, options, with_activations=bool(snapshots), frame_key=frame.sequence
        )
        self.processed += 1
        if not snapshots:  # saving takes a while: the frame after it should be the newest then
            self._prepare_next(visualizer)
        self._deliver(LiveResult(views, frame.captured_at, frame.sequence, frame.source, options, frame.still))
        for folder in snapshots:
            try:
                self.snapshot_saved.emit(str(save_snapshot(folder, views, frame.source, options.edits)))
            except OutputError as exc:
                self.error.emit(f"snapshot not saved: {exc}")
