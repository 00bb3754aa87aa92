"""Loading models in the background through the job runner, and remembering how each was loaded.

The model running now keeps running until the new one is ready; a newer request supersedes an older
one still loading. A download reports its progress; `cancel_download` stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from PyQt6.QtCore import QObject, pyqtSignal

from livevis.app.live.jobs import Job, JobRunner
from livevis.models import Engine, Visualizer, available_devices, model_names
from livevis.models.progress import Progress


class LayerRow(NamedTuple):
    """A layer as the window lists it."""

    path: str
    name: str
    shape: tuple[int, ...]
    """Its output per frame: (C, H, W) for maps, (F,) for a vector."""


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about a loaded model, as plain data."""

    name: str
    device: str
    weights: str
    trained: bool
    layers: tuple[LayerRow, ...]
    default_layer: str
    """The path of the layer a model shows when none is chosen."""
    categories: tuple[str, ...] = ()
    """Class names by output index (empty for a model that is not a classifier)."""
    notice: str | None = None
    torch_version: str = ""
    devices: tuple[str, ...] = ("cpu",)
    """Where a model can run on this machine (`auto` picks the first accelerator among them)."""
    prefix: tuple[str, ...] = ()
    """A transformer's prefix tokens, in order (class, distillation, registers)."""
    transformer: bool = False
    """Its layers are token maps and it has attention blocks."""
    task: str = "classify"
    """What it outputs: `classify`, `maps`, `segment` or `detect` (a detector, a segmenter: the whole frame)."""
    class_names: tuple[str, ...] = ()
    """A detector's labels or a segmenter's classes by index."""

    def find(self, path: str) -> LayerRow | None:
        """A layer by its path."""
        return next((row for row in self.layers if row.path == path), None)


@dataclass(frozen=True)
class LoadRequest:
    """How a model was asked for: enough to load it again elsewhere or with other weights."""

    name: str | None
    """None: the default model (or the offline one where the default's weights cannot be had)."""
    weights: str = "default"
    device: str = "auto"
    custom: tuple[tuple[str, object], ...] = ()
    """input_size, mean, std, labels of a user's own model."""


def model_info(engine: Engine, notice: str | None = None) -> ModelInfo:
    return ModelInfo(
        name=engine.name,
        device=str(engine.device),
        weights=engine.weights.label,
        trained=engine.weights.trained,
        layers=tuple(LayerRow(layer.path, layer.name, layer.shape) for layer in engine.layers),
        default_layer=engine.layer().path,
        categories=tuple(engine.categories),
        notice=notice,
        torch_version=torch.__version__,
        devices=tuple(available_devices()),
        prefix=tuple(engine.tokens.prefix) if engine.tokens is not None else (),
        transformer=bool(engine.blocks),
        task=engine.task,
        class_names=tuple(engine.class_names),
    )


def load_model(request: LoadRequest, progress: Progress) -> tuple[Visualizer, ModelInfo, LoadRequest]:
    """Runs on a job thread: the model ready to draw with, what the GUI shows of it, and the request
    that made it."""
    if request.name is None:
        engine, notice = Engine.load_default(request.weights, device=request.device, progress=progress)
        request = LoadRequest(engine.name, request.weights, request.device)
    else:
        engine = Engine.load(
            request.name, request.weights, device=request.device, progress=progress, **dict(request.custom)
        )
        notice = None
    return Visualizer(engine), model_info(engine, notice), request


class ModelLoader(QObject):
    ready = pyqtSignal(object, object)  # Visualizer, ModelInfo
    failed = pyqtSignal(str)
    download_progress = pyqtSignal(str, int, int)  # what, bytes done, bytes in all (0: unknown)

    def __init__(self, runner: JobRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.runner = runner
        self._latest: Job | None = None
        self._loaded: dict[str, LoadRequest] = {}
        """How each model run so far was loaded, by the name it shows."""
        self.current: str | None = None

    def load(self, name: str | None, weights: str = "default", device: str = "auto", **custom) -> Job:
        request = LoadRequest(name, str(weights), device, tuple((k, v) for k, v in custom.items() if v is not None))
        job = self.runner.submit(f"loading {name or 'the default model'}", load_model, request)
        self._latest = job
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(lambda value, job=job: self._on_loaded(job, value))
        job.failed.connect(lambda message, job=job: job is self._latest and self.failed.emit(message))
        job.cancelled.connect(lambda job=job: job is self._latest and self.failed.emit("the download was cancelled"))
        return job

    @property
    def loading(self) -> bool:
        return self._latest is not None and not self._latest.done

    def _on_progress(self, what: str, done: int, total: int) -> None:
        if what.startswith("downloading"):
            self.download_progress.emit(what.removeprefix("downloading ").strip(), done, total)

    def _on_loaded(self, job: Job, value) -> None:
        if job is not self._latest:
            return  # a newer request was made meanwhile
        visualizer, info, request = value
        self._loaded[info.name] = request
        self.current = info.name
        self.ready.emit(visualizer, info)

    def cancel_download(self) -> None:
        if self._latest is not None:
            self._latest.cancel()

    def request_of(self, shown_name: str | None = None) -> LoadRequest:
        """How a model was loaded; without a name, the one running now."""
        return self._loaded[shown_name or self.current]

    def reload(self, *, name: str | None = None, weights: str | None = None, device: str | None = None) -> Job:
        """A model loaded before (the running one by default) again, with other weights or on another
        device; a user's own model keeps its file or factory, input size, mean, std and labels."""
        request = self.request_of(name)
        return self.load(
            request.name,
            request.weights if weights is None else weights,
            request.device if device is None else device,
            **dict(request.custom),
        )

    def load_by_name(self, name: str, device: str = "auto") -> Job:
        """A listed model with its trained weights; a user's own model as it was loaded before."""
        if name in model_names():
            return self.load(name, "default", device)
        return self.reload(name=name, device=device)
