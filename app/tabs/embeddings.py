"""The Embeddings tab: compute layer maps in the background, show them, place the live frame.

The frame placed is the one the live view shows now: the newest offered is kept (a reference) even
while the tab is hidden, and placed when a map is computed, when its layer is chosen and when the tab
is shown, so a still image, a frozen frame or a drawn digit gets its star without a new frame."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from livevis.app.live.jobs import Job, JobRunner, describe_failure
from livevis.app.live.slot import CapturedFrame, LatestFrameSlot
from livevis.models import Engine, model_names
from livevis.models.data.datasets import embedding_dataset
from livevis.models.embeddings.tsne import (
    EmbeddingRun,
    MapPlacer,
    activations,
    embed_dataset,
    embed_swiss_roll,
    readout,
)
from livevis.models.progress import Progress, report
from livevis.widgets.embedding_view import EmbeddingPanel, EmbeddingPlots

DATASETS = ("mnist", "digits", "swissroll")


def compute_embeddings(
    dataset: str,
    model: str | None,
    layers: list[str] | None,
    samples: int,
    perplexity: float,
    method: str,
    *,
    progress: Progress,
) -> tuple[EmbeddingRun, Engine | None]:
    """Runs as a job: one EmbeddingRun (and the engine, to place live frames with); cancellable between
    batches and layers, and within a layer's t-SNE."""
    if dataset == "swissroll":
        report(progress, "t-SNE of the swiss roll", 0, 1)
        return embed_swiss_roll(samples, method=method, perplexity=perplexity), None
    engine = Engine.load(model or "lenet", device="cpu", progress=progress)
    data, skipped = embedding_dataset(dataset, samples, 0, engine.spec.input_size)
    run = embed_dataset(engine, data, dataset, layers, method=method, perplexity=perplexity, progress=progress)
    run.skipped = skipped
    return run, engine


def write_figure(run: EmbeddingRun, path: Path, *, progress: Progress) -> str:
    """Runs as a job: the maps as one figure (matplotlib, file I/O) off the GUI thread."""
    from livevis.app.commands.embed import check_figure_path, save_figure

    report(progress, f"saving {path.name}", 0, 0)
    return str(save_figure(run, check_figure_path(path)))


class LivePlacer(QThread):
    """Places the newest live frame into one layer's map, as often as it can keep up."""

    placed = pyqtSignal(int, float, float, float)  # panel, x, y, milliseconds
    failed = pyqtSignal(str)

    def __init__(self, engine: Engine, run: EmbeddingRun, panel: int, parent=None):
        super().__init__(parent)
        self.slot = LatestFrameSlot()
        self.engine = engine
        self.panel = panel
        self.layer = readout(engine, run.layers[panel].path)
        self.layer_map = run.layers[panel]
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self.slot.wake()

    def run(self) -> None:
        try:
            placer = MapPlacer(self.layer_map)  # builds a neighbour index: seconds of work, off the GUI thread
        except Exception as exc:  # an exception escaping QThread.run would abort the whole app
            self.failed.emit(describe_failure(exc))
            return
        while not self._stop.is_set():
            frame = self.slot.take(timeout=0.1)
            if frame is None:
                continue
            try:
                start = time.perf_counter()
                flat = activations(self.engine, frame.image[None], [self.layer])[self.layer.path]  # one readout
                x, y = placer.place(flat)[0]
            except Exception as exc:
                self.failed.emit(describe_failure(exc))
                continue
            self.placed.emit(self.panel, float(x), float(y), (time.perf_counter() - start) * 1000)


class EmbeddingsTab(QWidget):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        self.job: Job | None = None
        self.placer: LivePlacer | None = None
        self._retiring: list[LivePlacer] = []
        """Placers told to stop that may still be building their index: waited for in `shutdown`."""
        self._newest: CapturedFrame | None = None
        self.run: EmbeddingRun | None = None
        self.engine: Engine | None = None

        self.dataset = QComboBox()
        self.dataset.addItems([*DATASETS, "folder..."])
        self.dataset.textActivated.connect(self._on_dataset)
        self.model = QComboBox()
        self.model.addItems(model_names())
        self.model.setCurrentText("lenet")
        self.layers = QLineEdit()
        self.layers.setPlaceholderText("the input and every stage (or: conv1,pool2,fc3 / all)")
        self.samples = QSpinBox()
        self.samples.setRange(10, 10000)
        self.samples.setValue(2000)
        self.samples.setToolTip("at most this many samples: all of a dataset that has fewer")
        self.perplexity = QDoubleSpinBox()
        self.perplexity.setRange(2, 200)
        self.perplexity.setValue(30)
        self.method = QComboBox()
        self.method.addItems(["opentsne", "sklearn"])
        self.compute = QPushButton("Compute")
        self.compute.clicked.connect(self.start)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.stop_job)
        self.save = QPushButton("Save figure...")
        self.save.setToolTip("every map in one figure (PNG, PDF or SVG), as `livevis embed` writes it")
        self.save.setEnabled(False)
        self.save.clicked.connect(self.choose_figure_path)
        self.saver: Job | None = None
        self.progress = QProgressBar()
        self.status = QLabel("Choose a dataset and a model, then Compute. The live view keeps running.")
        self.status.setWordWrap(True)
        self.place_in = QComboBox()
        self.place_in.setToolTip("place the live frame into this layer's map")
        self.place_in.activated.connect(self._start_placer)
        self.plots = EmbeddingPlots()

        form = QFormLayout()
        form.addRow("dataset", self.dataset)
        form.addRow("model", self.model)
        form.addRow("layers", self.layers)
        form.addRow("samples", self.samples)
        form.addRow("perplexity", self.perplexity)
        form.addRow("method", self.method)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.save)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow("live frame in", self.place_in)
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.addLayout(form)
        column.addWidget(self.status)
        column.addStretch(1)
        controls.setFixedWidth(330)
        layout = QHBoxLayout(self)
        layout.addWidget(controls)
        layout.addWidget(self.plots, 1)
        self._folder: str | None = None

    def _on_dataset(self, text: str) -> None:
        if text == "folder...":
            folder = QFileDialog.getExistingDirectory(self, "A folder with one sub-folder of images per class")
            if folder:
                self._folder = folder
                self.dataset.insertItem(0, folder)
                self.dataset.setCurrentIndex(0)
        elif text in ("mnist", "digits"):
            self.model.setCurrentText("lenet")

    def start(self, dataset: str | None = None) -> None:
        if self.job is not None:
            return
        layers = [key.strip() for key in self.layers.text().split(",") if key.strip()] or None
        name = dataset or self.dataset.currentText()
        self.job = self.runner.submit(
            f"embedding {name}",
            compute_embeddings,
            name,
            self.model.currentText(),
            layers,
            self.samples.value(),
            self.perplexity.value(),
            self.method.currentText(),
        )
        self.job.progressed.connect(self._on_progress)
        self.job.succeeded.connect(lambda value: self._on_run(*value))
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(lambda: self.status.setText("cancelled"))
        self.job.ended.connect(self._job_ended)
        self.compute.setEnabled(False)
        self.cancel.setEnabled(True)
        self.status.setText(f"computing {name}...")

    def stop_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("cancelling...")

    def _on_progress(self, what: str, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{what}: %v / %m")

    def _on_run(self, run: EmbeddingRun, engine: Engine | None) -> None:
        self.run, self.engine = run, engine
        panels = [
            EmbeddingPanel(f"{m.name} ({m.dimension}-d) k-NN {m.knn_accuracy:.3f}", m.coords, run.labels)
            for m in run.layers
        ]
        self.plots.set_panels(panels, run.classes, run.thumbnails)
        skipped = f"; {run.skipped} unreadable images skipped" if run.skipped else ""
        self.status.setText(
            f"{run.dataset}: {len(run.labels)} samples through {run.model}{skipped}. "
            "Hover a point for its image; drag to pan, wheel to zoom."
        )
        self.save.setEnabled(True)
        self.place_in.clear()
        self._stop_placer()
        if engine is not None:
            self.place_in.addItems([m.name for m in run.layers])
            self.place_in.setCurrentIndex(len(run.layers) - 1)
            self._start_placer(len(run.layers) - 1)

    def choose_figure_path(self) -> None:
        if self.run is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the maps as one figure", f"embeddings-{self.run.dataset}.png", "Figures (*.png *.pdf *.svg)"
        )
        if path:
            self.save_figure(Path(path))

    def save_figure(self, path: Path) -> None:
        """Saves in the background; the status line says where, or why not."""
        if self.run is None or self.saver is not None:
            return
        self.saver = self.runner.submit(f"saving {path.name}", write_figure, self.run, path)
        self.saver.succeeded.connect(lambda where: self.status.setText(f"figure saved to {where}"))
        self.saver.failed.connect(lambda message: self.status.setText(f"the figure was not saved: {message}"))
        self.saver.ended.connect(self._saver_ended)
        self.save.setEnabled(False)
        self.status.setText(f"saving {path.name}...")

    def _saver_ended(self) -> None:
        self.saver = None
        self.save.setEnabled(self.run is not None)

    def _on_failed(self, message: str) -> None:
        self.status.setText(message)

    def _job_ended(self) -> None:
        self.job = None
        self.compute.setEnabled(True)
        self.cancel.setEnabled(False)

    def _start_placer(self, panel: int) -> None:
        self._stop_placer()
        if self.run is None or self.engine is None:
            return
        placer = LivePlacer(self.engine, self.run, panel, self)
        placer.failed.connect(self.status.setText)
        placer.placed.connect(lambda i, x, y, ms, placer=placer: self._on_placed(placer, i, x, y))
        self.placer = placer
        placer.start()
        self._place_newest()

    def _on_placed(self, placer: LivePlacer, panel: int, x: float, y: float) -> None:
        if placer is self.placer:  # a stopped placer's last result, still queued, is not the chosen layer's
            self.plots.set_marker(panel, (x, y))

    def _stop_placer(self) -> None:
        """Asks the placer to stop without waiting (its index may take seconds to build); it is deleted
        when it ends, and `shutdown` waits for any still running."""
        placer, self.placer = self.placer, None
        if placer is None:
            return
        placer.stop()
        self._retiring.append(placer)
        placer.finished.connect(lambda placer=placer: self._retired(placer))
        if placer.isFinished():  # ended before the connection: nothing else will retire it
            self._retired(placer)

    def _retired(self, placer: LivePlacer) -> None:
        if placer in self._retiring:
            self._retiring.remove(placer)
            placer.deleteLater()

    def _place_newest(self) -> None:
        if self.placer is not None and self._newest is not None:
            self.placer.slot.put(self._newest)

    def offer_frame(self, frame: np.ndarray, captured_at: float) -> None:
        """The newest live frame: kept (not copied) while the tab is hidden, placed at once while it shows."""
        self._newest = CapturedFrame(frame, captured_at, 0, "live")
        if self.isVisible():
            self._place_newest()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._place_newest()  # the frame shown now may have arrived while the tab was hidden, or be still

    def shutdown(self) -> None:
        """Every placer stops and is waited for here (none may outlive the tab); jobs end with the job
        runner's shutdown."""
        self._stop_placer()
        for placer in list(self._retiring):
            placer.wait()  # at most the rest of an index build or of one placement
            self._retired(placer)
        if self.job is not None:
            self.job.cancel()
