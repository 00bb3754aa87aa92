"""Compute: a worker thread takes the newest frame, runs the engine and renderer, emits one result.

The GUI thread never touches torch: it sends requests (options, model, freeze, snapshot) and takes
immutable `LiveResult`s from a one-result mailbox when `result_ready` says there is one.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from PyQt6.QtCore import QThread, pyqtSignal

from livevis.app.capture import CapturedFrame, LatestFrameSlot
from livevis.models import Engine, FrameViews, LivevisError, ViewOptions, Visualizer, available_devices, model_names
from livevis.models.errors import OutputError
from livevis.models.pipeline import output_folder, save_activations, save_images


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about a loaded model, as plain data."""

    name: str
    device: str
    weights: str
    trained: bool
    layers: tuple[tuple[str, str, tuple[int, ...]], ...]
    layer: str
    """The path of the layer shown first: the one asked for if the model has it, else its default."""
    channel: int
    notice: str | None = None
    torch_version: str = ""
    devices: tuple[str, ...] = ("cpu",)
    """Where a model can run on this machine (`auto` picks the first accelerator among them)."""

    def find(self, path: str) -> tuple[str, str, tuple[int, ...]] | None:
        """(path, name, shape) of a layer by its path."""
        return next((row for row in self.layers if row[0] == path), None)


@dataclass(frozen=True)
class LiveResult:
    views: FrameViews
    captured_at: float
    sequence: int
    source: str
    options: ViewOptions
    processed_ms: float


def model_info(engine: Engine, options: ViewOptions, notice: str | None = None) -> ModelInfo:
    return ModelInfo(
        name=engine.name,
        device=str(engine.device),
        weights=engine.weights.label,
        trained=engine.weights.trained,
        layers=tuple((layer.path, layer.name, layer.shape) for layer in engine.layers),
        layer=options.layer,
        channel=options.channel,
        notice=notice,
        torch_version=torch.__version__,
        devices=tuple(available_devices()),
    )


def save_snapshot(folder: Path, views: FrameViews) -> Path:
    """Frame, grid, overlay and zoomed channel as PNG, and the activations as .npz, in a new folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    target = output_folder(folder / f"livevis-{stamp}")
    save_images(target, {"frame": views.frame, "grid": views.grid, "overlay": views.overlay,
                         "channel": views.channel_tile, "input_signed": views.input_signed})  # fmt: skip
    save_activations(target / "activations.npz", views)
    return target


class InferenceWorker(QThread):
    result_ready = pyqtSignal()  # the newest LiveResult waits in take_result()
    model_ready = pyqtSignal(object)  # ModelInfo
    model_failed = pyqtSignal(str)
    download_progress = pyqtSignal(str, int, int)  # file, bytes done, bytes in all (0: unknown)
    error = pyqtSignal(str)
    snapshot_saved = pyqtSignal(str)

    def __init__(self, slot: LatestFrameSlot, options: ViewOptions, parent=None):
        super().__init__(parent)
        self.slot = slot
        self._lock = threading.Lock()
        self._options = options
        self._dirty = False
        self._frozen = False
        self._stop = threading.Event()
        self._snapshot_folder: Path | None = None
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livevis-model")
        self._pending_model: Future | None = None
        self._cancel_download = threading.Event()
        self._visualizer: Visualizer | None = None
        self._loaded: dict[str, tuple[str, str, dict]] = {}
        """How each model run so far was loaded, by the name it shows: (name asked for, weights, options)."""
        self._held: CapturedFrame | None = None
        self._result_lock = threading.Lock()
        self._result: LiveResult | None = None
        self.processed = 0

    def take_result(self) -> LiveResult | None:
        """The newest result, once (None when it was taken already); called on the GUI thread."""
        with self._result_lock:
            result, self._result = self._result, None
        return result

    def _deliver(self, result: LiveResult) -> None:
        """One result waits at a time: a newer one replaces it, so a GUI slower than the worker (a fast
        GPU) shows the newest frame instead of working through a growing queue of old ones."""
        with self._result_lock:
            waiting, self._result = self._result is not None, result
        if not waiting:
            self.result_ready.emit()

    # --- requests from the GUI thread ---
    def set_options(self, options: ViewOptions) -> None:
        with self._lock:
            self._options = options
            self._dirty = True
        self.slot.wake()

    def set_frozen(self, frozen: bool) -> None:
        with self._lock:
            self._frozen = frozen
        self.slot.wake()

    def request_snapshot(self, folder: Path) -> None:
        with self._lock:
            self._snapshot_folder = folder
            self._dirty = True
        self.slot.wake()

    def load_model(self, name: str | None, weights: str = "default", device: str = "auto", **custom) -> None:
        """Loads in the background; the current model keeps running until the new one is ready.

        A download reports through `download_progress` and stops at `cancel_download()`.
        `custom`: input_size, mean, std, labels for a user's own model.
        """
        self._cancel_download.clear()

        def progress(_what: str, done: int, total: int, label: str = str(name or "the default model")) -> bool:
            self.download_progress.emit(label, done, total)
            return not self._cancel_download.is_set()

        def load():
            if name is None:
                engine, notice = Engine.load_default(weights, device=device, progress=progress)
                return engine, notice, (engine.name, weights, {})
            engine = Engine.load(name, weights, device=device, progress=progress, **custom)
            return engine, None, (name, weights, custom)

        with self._lock:
            self._pending_model = self._loader.submit(load)
        self.slot.wake()

    def _request_of(self, shown_name: str | None = None) -> tuple[str, str, dict]:
        """How a model was loaded; without a name, the one running now."""
        with self._lock:
            return self._loaded[shown_name or self._visualizer.engine.name]

    def load_weights(self, path: str, device: str = "auto") -> None:
        """The model running now again, from a state-dict file; a user's own model keeps the input
        size, mean, std and labels it was loaded with."""
        name, _, custom = self._request_of()
        self.load_model(name, path, device, **custom)

    def move_to(self, device: str) -> None:
        """The model running now, loaded again exactly as it was, on another device."""
        name, weights, custom = self._request_of()
        self.load_model(name, weights, device, **custom)

    def load_by_name(self, name: str, device: str = "auto") -> None:
        """A listed model with its trained weights; a user's own model as it was loaded before
        (its file or factory, weights, input size, mean, std and labels)."""
        if name in model_names():
            self.load_model(name, "default", device)
        else:
            requested, weights, custom = self._request_of(name)
            self.load_model(requested, weights, device, **custom)

    def cancel_download(self) -> None:
        self._cancel_download.set()

    def stop(self) -> None:
        self._stop.set()
        self._cancel_download.set()
        self.slot.wake()

    # --- the thread ---
    def run(self) -> None:
        while not self._stop.is_set():
            self._adopt_loaded_model()
            if self._visualizer is None:
                # no model yet: leave frames in the slot, where each one nobody takes counts as dropped
                self._stop.wait(0.02)
                continue
            with self._lock:
                frozen, dirty = self._frozen, self._dirty
            if not frozen or self._held is None:
                frame = self.slot.take(timeout=0.05)
                if frame is not None:
                    self._held = frame
                    dirty = True
            elif not dirty:
                self.slot.take(timeout=0.05)  # frozen: drop new frames, wait for requests
            if not dirty or self._held is None:
                continue
            with self._lock:
                options, self._dirty = self._options, False
                snapshot_folder, self._snapshot_folder = self._snapshot_folder, None
            self._process(self._held, options, snapshot_folder)
        self._loader.shutdown(wait=False, cancel_futures=True)

    def _process(self, frame: CapturedFrame, options: ViewOptions, snapshot_folder: Path | None) -> None:
        start = time.perf_counter()
        try:
            views = self._visualizer.process(frame.image, options, with_activations=snapshot_folder is not None)
        except LivevisError as exc:
            self.error.emit(str(exc))
            return
        self.processed += 1
        elapsed = (time.perf_counter() - start) * 1000.0
        self._deliver(LiveResult(views, frame.captured_at, frame.sequence, frame.source, options, elapsed))
        if snapshot_folder is not None:
            try:
                self.snapshot_saved.emit(str(save_snapshot(snapshot_folder, views)))
            except OutputError as exc:
                self.error.emit(f"snapshot not saved: {exc}")

    def _adopt_loaded_model(self) -> None:
        with self._lock:
            pending = self._pending_model
            if pending is None or not pending.done():
                return
            self._pending_model = None
        try:
            engine, notice, request = pending.result()
        except LivevisError as exc:
            self.model_failed.emit(str(exc))
            return
        except Exception as exc:  # a model that fails to build must not take the app down
            self.model_failed.emit(f"the model could not be loaded: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            options = self._options
            try:
                layer = engine.layer(options.layer)
            except LivevisError:
                layer = engine.layer()
            channel = options.channel if options.channel < layer.channels else 0
            self._options = options = options.with_(layer=layer.path, channel=channel)
            self._dirty = True
            self._loaded[engine.name] = request
            self._visualizer = Visualizer(engine, options)
        self.model_ready.emit(model_info(engine, options, notice))
