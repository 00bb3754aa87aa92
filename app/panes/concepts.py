"""The concepts pane: the selected layer cut into a few parts (NMF of its maps), drawn on the frame, with a
legend (each concept's colour, its top channels' tiles, its classes where the layer feeds the classifier).

Concepts come from each frame (following the frames, each keeping its colour) or from a mined folder, fitted
once there and then only placed on each frame, each shown with its top crops and, on request, an image
optimised along its channel vector. The pane shows; `ConceptsController` runs the folder work (listing,
fitting, crops, optimised images) as background jobs and sets the live state's `concept_set`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from livevis.app.live.jobs import Job
from livevis.app.panes.base import Pane, PaneServices
from livevis.app.sources.files import read_entry, read_frame
from livevis.models.atlas.mining import mined_folders
from livevis.models.atlas.mosaics import mosaic
from livevis.models.concepts.dataset import fit_concepts, load_concepts, read_concept_set
from livevis.models.concepts.edit import ConceptEdit
from livevis.models.concepts.images import cached_concept_image, concept_crops, concept_image, crops_strip
from livevis.models.progress import Progress, report
from livevis.views import ViewSpec
from livevis.views.concepts import CONCEPT_COUNTS
from livevis.widgets.concept_legend import ConceptLegend, LegendRow
from livevis.widgets.image_view import ImageView

if TYPE_CHECKING:
    from livevis.models import Engine

THIS_FRAME = "this frame"
"""The source entry for each frame's own concepts."""
PREVIEW_EVERY = 16


class ConceptsPane(Pane):
    """Shown while the state's `concepts` is on; asks for the `concepts` view. Its `controller` runs the work
    on folders in the background."""

    source_chosen = pyqtSignal(str)
    """A mined folder, or "" for each frame's own concepts."""
    fit_requested = pyqtSignal()
    cancel_requested = pyqtSignal()
    optimise_requested = pyqtSignal(int)
    concept_chosen = pyqtSignal(int)
    """A concept of a folder (its index), to show its crops and optimised image."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.set_title("concepts (x: on/off)")
        self.title = QLabel("concepts (x: on/off)")
        self.count = QSpinBox()
        self.count.setRange(CONCEPT_COUNTS[0], CONCEPT_COUNTS[-1])
        self.count.setPrefix("K = ")
        self.count.setToolTip("how many concepts the layer is cut into (Shift+X steps through them)")
        self.count.setValue(state.concept_count)
        self.count.valueChanged.connect(lambda k: setattr(state, "concept_count", k))
        state.events.concept_count.connect(lambda k: self.count.setValue(k))
        self.source = QComboBox()
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(10)
        self.source.setToolTip("each frame's own concepts, or concepts fitted once on a mined folder")
        self.source.addItem(THIS_FRAME)
        self.source.textActivated.connect(lambda text: self.source_chosen.emit("" if text == THIS_FRAME else text))
        self.fit = QPushButton("Fit")
        self.fit.setToolTip("fit K concepts of this layer on the chosen folder (once; they are kept)")
        self.fit.clicked.connect(self.fit_requested)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.image = ImageView(placeholder="x turns on the concepts of the selected layer")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: rgb(230, 140, 90)")
        self.legend = ConceptLegend()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.legend)
        scroll.setMinimumHeight(ConceptLegend.ROW * 2 + 4)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.crops = ImageView(placeholder="top crops")
        self.optimised = ImageView(placeholder="optimised along the concept")
        self.optimise = QPushButton("Optimise")
        self.optimise.setToolTip("an image that maximises the concept's channel vector (in the background)")
        self.optimise.clicked.connect(lambda: self._chosen is not None and self.optimise_requested.emit(self._chosen))
        self.switch_off = QPushButton("Switch the concept off")
        self.switch_off.setToolTip(
            "take the concept picked in the legend out of the layer (its part of each cell), the rest kept: "
            "what follows sees the network without it"
        )
        self.switch_off.setEnabled(False)
        self.switch_off.clicked.connect(self._switch_off)
        self.detail = QWidget()
        detail = QHBoxLayout(self.detail)
        detail.setContentsMargins(0, 0, 0, 0)
        detail.addWidget(self.crops, 1)
        detail.addWidget(self.optimised, 1)
        detail.addWidget(self.optimise)
        self.detail.setMaximumHeight(110)
        self.detail.hide()
        self._picked: int | None = None
        self._found: tuple[str, object] = ("", None)
        controls = QHBoxLayout()
        controls_row = (
            (self.count, 0),
            (self.source, 2),
            (self.fit, 0),
            (self.progress, 1),
            (self.cancel, 0),
            (self.switch_off, 0),
        )
        for widget, stretch in controls_row:
            controls.addWidget(widget, stretch)
        legend = QVBoxLayout()
        legend.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.message, 0), (scroll, 1), (self.note, 0), (self.detail, 0)):
            legend.addWidget(widget, stretch)
        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.body.addWidget(self.image, 3)
        self.body.addLayout(legend, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(controls)
        layout.addLayout(self.body, 1)
        self.legend.channel_clicked.connect(lambda channel: setattr(state, "channel", channel))
        self.legend.concept_clicked.connect(self._on_concept_clicked)
        self._strips: dict[int, np.ndarray] = {}
        self._error, self._said = "", ""
        self._order: list[int] = []
        self._chosen: int | None = None
        self.set_folders([], None)
        self.set_running(False)
        state.events.concepts.connect(lambda on: self.wanted.emit(on))
        self.controller = ConceptsController(self, state, services)

    def resizeEvent(self, event) -> None:
        """The segmentation keeps room of its own: beside the legend in a wide pane, above it in a tall one."""
        super().resizeEvent(event)
        wide = self.width() > 1.2 * self.height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.body.direction() != direction:
            self.body.setDirection(direction)

    @property
    def active(self) -> bool:
        return self.state.concepts

    def wants_open(self) -> bool | None:
        return self.state.concepts

    def opened(self, is_open: bool) -> None:
        if is_open != self.state.concepts:
            self.state.concepts = is_open

    # ---------------------------------------------------------------- what the controller sets
    def set_folders(self, folders: list[str], chosen: str | None) -> None:
        self.source.clear()
        self.source.addItems([THIS_FRAME, *folders])
        self.source.setCurrentText(chosen or THIS_FRAME)
        self.fit.setVisible(bool(chosen))

    def chosen_folder(self) -> str | None:
        text = self.source.currentText()
        return None if text in ("", THIS_FRAME) else text

    def set_fitted(self, strips: dict[int, np.ndarray] | None, message: str = "") -> None:
        """The crops of the folder's concepts (None: each frame's own concepts), and what to say."""
        self._strips = strips or {}
        self._chosen = None
        self.detail.hide()  # until a concept of the folder is picked
        self.crops.set_image(None)
        self.optimised.set_image(None)
        self._said = message
        self.message.setText(self._error or message)

    def set_running(self, running: bool) -> None:
        self.fit.setEnabled(not running)
        self.cancel.setVisible(running)
        self.progress.setVisible(running)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def show_concept(self, index: int, crops: np.ndarray | None, image: np.ndarray | None) -> None:
        if index == self._chosen:
            if crops is not None:
                self.crops.set_image(crops)
            self.optimised.set_image(image)

    def _switch_off(self) -> None:
        """The picked concept, as this frame's concepts have it, taken out of the layer."""
        layer, channels = self._found
        if self._picked is None or channels is None:
            return
        concepts = tuple(tuple(float(v) for v in row) for row in np.asarray(channels))
        number = self._order.index(self._picked) + 1
        edit = ConceptEdit(layer, concepts, (self._picked,), name=f"concept {number}")
        self.state.edits = (*self.state.edits, edit)
        self.services.message(f"concept {number} of {layer} switched off (Ctrl+Z undoes it)", 6000)

    # ---------------------------------------------------------------- results
    def _on_concept_clicked(self, row: int) -> None:
        self._picked = self._order[row] if row < len(self._order) else None
        self.switch_off.setEnabled(self._picked is not None)
        if self._strips and row < len(self._order):
            self._chosen = self._order[row]
            self.detail.show()
            self.crops.set_image(None)
            self.optimised.set_image(None)
            self.concept_chosen.emit(self._chosen)

    def show_result(self, result, model):
        views = result.views
        summary = views.values.get("concepts_summary")
        if summary is None:
            return
        if summary.error != self._error:  # a layer without maps, too few cells: said until the layer changes
            self._error = summary.error
            self.message.setText(self._error or self._said)
        if summary.error:
            self.image.set_image(None)
            self.legend.set_rows([])
            return
        self.image.set_image(views.images.get("concepts"), views.frame_size)
        rows = []
        for concept in summary.concepts:
            named = ", ".join(f"{label} {p:.2f}" for label, p in concept.classes)
            channels = "channels " + ", ".join(str(c) for c, _ in concept.channels)
            tiles = [(c, part, concept.tiles[i]) for i, (c, part) in enumerate(concept.channels)]
            strip = self._strips.get(concept.index)
            rows.append(LegendRow(concept.rgb, concept.share, tiles, named or channels, strip))
        self._order = [concept.index for concept in summary.concepts]
        self._found = (views.layer.path, views.values.get("concept_channels"))
        chosen = self._order.index(self._chosen) if self._chosen in self._order else None
        self.legend.set_rows(rows, chosen)
        self.title.setText(
            f"{len(rows)} concepts of {views.layer.name}, {summary.source} ({summary.milliseconds:.1f} ms)"
        )
        self.note.setText(summary.note)


# ------------------------------------------------------------------------------------------------
# The background work


def folders_of(engine: Engine, layer: str, *, progress: Progress) -> list[str]:
    """Runs as a job (it reads the cache): the folders mined for the layer whose files are still those mined."""
    return [str(m.folder) for m in mined_folders(engine, layer) if m.current]


def _strips(found, *, progress: Progress) -> dict[int, np.ndarray]:
    strips = {}
    for index in range(found.k):
        report(progress, "the concepts' top crops", index, found.k)
        strips[index] = crops_strip(concept_crops(found, index, read_entry, tile=64))
    return strips


def folder_concepts(
    engine: Engine, folder: str, layer: str, k: int, *, fit: bool, progress: Progress
) -> tuple[str, dict[int, np.ndarray]] | None:
    """Runs as a job: the folder's stored concepts (fitted first when `fit`; else None where there are none),
    as their file and each one's strip of top crops."""
    if fit:
        found = fit_concepts(engine, folder, layer, k, workers=0, reader=read_frame, progress=progress)
    else:
        found = load_concepts(engine, folder, layer, k)
        if found is None:
            return None
    return str(found.file), _strips(found, progress=progress)


def concept_details(file: str, index: int, *, progress: Progress) -> tuple[np.ndarray, np.ndarray | None]:
    """Runs as a job: a folder concept's top crops (3 x 3) and its cached optimised image, if any."""
    found = read_concept_set(file)
    if found is None:
        return np.zeros((1, 1, 3), np.uint8), None
    return mosaic(concept_crops(found, index, read_entry)), cached_concept_image(found, index)


def optimised_concept(engine: Engine, file: str, index: int, *, progress: Progress, partial) -> np.ndarray:
    """Runs as a job: the image that maximises the concept's channel vector (stored for next time)."""
    found = read_concept_set(file)
    return concept_image(
        engine,
        found,
        index,
        progress=progress,
        preview_every=PREVIEW_EVERY,
        on_preview=lambda _step, image: partial(image),
    )


class ConceptsController:
    """Drives `pane` for the state's layer and number of concepts, running its folder work in the background
    (the services' runner, on the model running now)."""

    def __init__(self, pane: ConceptsPane, state, services: PaneServices):
        self.pane, self.state, self.services = pane, state, services
        self.runner, self.engine, self.notice = services.runner, services.engine, services.notice
        self.folder: str | None = None
        self._fitting: Job | None = None
        self._optimising: Job | None = None
        self.refresh_pending = False
        for event in (state.events.layer, state.events.concept_count, state.events.model, state.events.concepts):
            event.connect(lambda *_: self._schedule_refresh())
        pane.source_chosen.connect(self.choose)
        pane.fit_requested.connect(self.fit)
        pane.cancel_requested.connect(self.cancel)
        pane.concept_chosen.connect(self._details)
        pane.optimise_requested.connect(self.optimise)

    def _schedule_refresh(self) -> None:
        if not self.refresh_pending:  # once per turn of the event loop, after the whole change
            self.refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    def _ready(self) -> tuple[Engine, str] | None:
        engine = self.engine()
        if engine is None or not self.state.layer or not self.state.concepts or self.runner.closed:
            return None
        return engine, self.state.layer

    def refresh(self) -> None:
        """The mined folders of the layer, and the chosen folder's concepts for it (or each frame's)."""
        self.refresh_pending = False
        ready = self._ready()
        if ready is None:
            return
        engine, layer = ready
        key = self._key()
        job = self.runner.submit("the folders mined for the layer", folders_of, engine, layer)
        job.succeeded.connect(lambda folders: self._show_folders(key, folders))
        self._look_up(fit=False)

    def _key(self) -> tuple:
        return self.state.model, self.state.layer, self.state.concept_count, self.folder

    def _show_folders(self, key: tuple, folders: list[str]) -> None:
        if key == self._key():  # a folder chosen stays listed: it can be fitted at any layer
            self.pane.set_folders(folders if self.folder in (None, *folders) else [*folders, self.folder], self.folder)

    def choose(self, folder: str) -> None:
        self.folder = folder or None
        self.pane.fit.setVisible(self.folder is not None)
        self._look_up(fit=False)

    def fit(self) -> None:
        if self.folder is not None and self._fitting is None:
            self._look_up(fit=True)

    def _look_up(self, *, fit: bool) -> None:
        """Each frame's concepts, or the folder's (fitted now when `fit`), for the state's layer and K."""
        ready = self._ready()
        if self.folder is None or ready is None:
            self.state.concept_set = ""
            self.pane.set_fitted(None)
            return
        engine, layer = ready
        key, k = self._key(), self.state.concept_count
        name = engine.layer(layer).name
        what = f"fitting {k} concepts of {name} on {self.folder}" if fit else "the folder's concepts"
        job = self.runner.submit(what, folder_concepts, engine, self.folder, layer, k, fit=fit)
        job.succeeded.connect(lambda found: self._show_fitted(key, found))
        job.failed.connect(self.notice)
        if fit:
            self._fitting = job
            self.pane.set_running(True)
            job.progressed.connect(lambda _what, done, total: self.pane.set_progress(done, total))
            job.cancelled.connect(lambda: self.services.message("fitting cancelled", 4000))
            job.ended.connect(self._fit_ended)

    def _fit_ended(self) -> None:
        self._fitting = None
        self.pane.set_running(False)

    def _show_fitted(self, key: tuple, found) -> None:
        if key != self._key():
            return
        if found is None:
            self.state.concept_set = ""
            self.pane.set_fitted(
                None,
                f"no {self.state.concept_count} concepts of this layer fitted on "
                f"{self.folder} yet: Fit (the frame's own are shown meanwhile)",
            )
            return
        file, strips = found
        self.pane.set_fitted(strips, "")
        self.state.concept_set = file

    def cancel(self) -> None:
        for job in (self._fitting, self._optimising):
            if job is not None:
                job.cancel()

    def _details(self, index: int) -> None:
        if not self.state.concept_set:
            return
        job = self.runner.submit("the concept's top crops", concept_details, self.state.concept_set, index)
        job.succeeded.connect(lambda found: self.pane.show_concept(index, *found))
        job.failed.connect(self.notice)

    def optimise(self, index: int) -> None:
        engine = self.engine()
        if engine is None or not self.state.concept_set or self._optimising is not None:
            return
        job = self.runner.submit(
            f"optimising concept {index + 1}", optimised_concept, engine, self.state.concept_set, index, partial=True
        )
        self._optimising = job
        self.pane.set_running(True)
        job.partial.connect(lambda image: self.pane.show_concept(index, None, image))
        job.progressed.connect(lambda _what, done, total: self.pane.set_progress(done, total))
        job.succeeded.connect(lambda image: self.pane.show_concept(index, None, image))
        job.failed.connect(self.notice)
        job.ended.connect(self._optimise_ended)

    def _optimise_ended(self) -> None:
        self._optimising = None
        self.pane.set_running(False)
