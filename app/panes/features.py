"""The features pane: a layer's sparse features (a TopK SAE learnt on a folder) live on the frame, the frame's
most active ones listed in their colours; a click shows where one fires and its top crops from the folder, and
switches it off or scales it in the forward (the predictions, Grad-CAM and the rest answer).

Features come from a file (Open...) or are learnt here on a folder (Learn..., a background job with progress and
cancel, which `learn_features` also runs for File > Learn features...)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from livevis.app.panes.base import Pane, PaneServices
from livevis.app.sources.files import read_entry, read_frame
from livevis.app.window.action_spec import ActionSpec
from livevis.models.atlas.mosaics import atlas_crops, mosaic
from livevis.models.features import FeatureEdit, Recipe, read_features, train_features
from livevis.models.features.gallery import feature_atlas
from livevis.models.render.base import CONCEPT_PALETTE
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView

if TYPE_CHECKING:
    from livevis.models import Engine
    from livevis.models.progress import Progress

SCALES = (("off", 0.0), ("x 0.5", 0.5), ("x 2", 2.0))
VIEW_COUNTS = (1, 2, 4)
"""The dialog's choices of views of each photo (`Recipe.views`), in its order."""


class LearnFeaturesDialog(QDialog):
    """The folder, the layer and the recipe of a run of `livevis features train`."""

    def __init__(self, layers: list[str], layer: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Learn features")
        self.folder = QLineEdit()
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.layer = QComboBox()
        self.layer.addItems(layers)
        if layer in layers:
            self.layer.setCurrentText(layer)
        self.width_ = QSpinBox()
        self.width_.setRange(1, 64)
        self.width_.setValue(4)
        self.width_.setSuffix("x channels")
        self.k = QSpinBox()
        self.k.setRange(1, 4096)
        self.k.setValue(32)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(Recipe.epochs)
        self.views = QComboBox()
        self.views.addItems(["the photos", "and mirrored", "and mirrored and zoomed"])
        self.views.setCurrentIndex(VIEW_COUNTS.index(Recipe.views))
        self.views.setToolTip("More views of each photo: more cells to learn from, a longer reading")
        form = QFormLayout(self)
        form.addRow("folder of photos", row)
        form.addRow("layer", self.layer)
        form.addRow("features", self.width_)
        form.addRow("k (codes per cell)", self.k)
        form.addRow("epochs", self.epochs)
        form.addRow("views of each photo", self.views)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder of photos", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def recipe(self) -> Recipe:
        views = VIEW_COUNTS[self.views.currentIndex()]
        return Recipe(self.width_.value(), self.k.value(), self.epochs.value(), views=views)


def learn(engine: Engine, folder: str, layer: str, recipe: Recipe, *, progress: Progress) -> str:
    """Runs as a job: the features learnt (saved beside the atlas); their file."""
    return str(train_features(engine, folder, layer, recipe, reader=read_frame, progress=progress)[1])


def gallery(engine: Engine, file: str, index: int, *, progress: Progress) -> np.ndarray:
    """Runs as a job: a feature's top crops (3 x 3) from the folder it was learnt on (the folder ranked once)."""
    sae = read_features(file)
    atlas = feature_atlas(engine, sae, file, reader=read_frame, progress=progress)
    return mosaic(atlas_crops(atlas, index, read_entry))


def where_it_fires(strength: np.ndarray, colour: np.ndarray, size: int = 96) -> np.ndarray:
    """A feature's (h, w) map in [0, 1] as a picture in its colour, cells enlarged."""
    h, w = strength.shape
    zoom = max(1, size // max(h, w))
    cells = np.clip(strength, 0, 1)[..., None] * colour.reshape(1, 1, 3).astype(np.float32)
    return np.ascontiguousarray(np.kron(cells, np.ones((zoom, zoom, 1))).astype(np.uint8))


class FeaturesPane(Pane):
    """Asks for the `features` view while a features file is open."""

    ACTIONS = (
        ActionSpec(
            "learn_features",
            "Learn features...",
            (),
            "learn a layer's sparse features on a folder of photos (in the background)",
            "learn_features",
            "File",
        ),
        ActionSpec(
            "open_features",
            "Open features...",
            (),
            "open a features file written by `livevis features train`",
            "open_features",
            "File",
        ),
    )

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.set_title("sparse features")
        self.caption = QLabel("open a features file, or learn features of this layer on a folder of photos")
        self.caption.setWordWrap(True)
        self.open = QPushButton("Open...")
        self.open.setToolTip("a features file (.safetensors) written by `livevis features train`")
        self.open.clicked.connect(self.open_features)
        self.learn = QPushButton("Learn...")
        self.learn.setToolTip("learn the layer's features on a folder of photos (a TopK sparse autoencoder)")
        self.learn.clicked.connect(lambda: self.learn_features())
        self.progress = QProgressBar()
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self._cancel)
        self.image = ImageView(placeholder="the frame's most active features")
        self.list = QListWidget()
        self.list.setToolTip("the frame's most active features; click one to see where it fires and its crops")
        self.list.currentRowChanged.connect(self._picked_row)
        self.where = ImageView(placeholder="where it fires")
        self.crops = ImageView(placeholder="its top crops")
        self.buttons = []
        edits = QHBoxLayout()
        for label, scale in SCALES:
            button = QPushButton(label)
            button.setToolTip(f"the picked feature {label} in the forward (the SAE's error kept); Ctrl+Z undoes it")
            button.clicked.connect(lambda _checked, s=scale: self.edit(s))
            button.setEnabled(False)
            edits.addWidget(button)
            self.buttons.append(button)
        controls = QHBoxLayout()
        for widget, stretch in ((self.open, 0), (self.learn, 0), (self.progress, 1), (self.cancel, 0)):
            controls.addWidget(widget, stretch)
        detail = QHBoxLayout()
        detail.addWidget(self.where, 1)
        detail.addWidget(self.crops, 1)
        side = QVBoxLayout()
        side.addWidget(self.list, 2)
        side.addLayout(detail, 1)
        side.addLayout(edits)
        body = QHBoxLayout()
        body.addWidget(self.image, 3)
        body.addLayout(side, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(controls)
        layout.addLayout(body, 1)
        self._shown: list[int] = []
        self._maps: np.ndarray | None = None
        self._colours: list[int] = []
        self._layer = ""
        self.picked: int | None = None
        self._job = None
        self._set_running(False)

    @property
    def active(self) -> bool:
        return bool(self.state.features)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel.setVisible(running)
        self.learn.setEnabled(not running)

    def open_features(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Open features", "", "Features (*.safetensors)")
        if chosen:
            self.use(chosen)

    def use(self, file: str) -> None:
        """Show these features (the worker reads the file; a bad one is said in the caption)."""
        self.picked = None
        self.state.features = file
        self.caption.setText(f"features of {Path(file).name}")
        self.wanted.emit(True)

    def learn_features(self, folder: str | None = None, recipe: Recipe | None = None, layer: str | None = None):
        """Learns features on a folder in the background (asks for the folder and the recipe where not given);
        the job, or None where nothing was started."""
        engine = self.services.engine()
        if engine is None or self._job is not None:
            return None
        if folder is None or recipe is None:
            layers = [info.path for info in engine.layers if info.is_spatial]
            dialog = LearnFeaturesDialog(layers, self.state.layer, self)
            if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.folder.text():
                return None
            folder, recipe, layer = dialog.folder.text(), dialog.recipe(), dialog.layer.currentText()
        layer = layer or self.state.layer
        job = self.services.runner.submit(f"learning features of {layer}", learn, engine, folder, layer, recipe)
        self._job = job
        self._set_running(True)
        job.progressed.connect(self._progressed)
        job.succeeded.connect(self.use)
        job.failed.connect(self.services.notice)
        job.cancelled.connect(lambda: self.services.message("learning cancelled: the same run resumes", 5000))
        job.ended.connect(self._ended)
        return job

    def _progressed(self, what: str, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(what)
        self.progress.setTextVisible(True)

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _ended(self) -> None:
        self._job = None
        self._set_running(False)

    def edit(self, scale: float) -> None:
        """The picked feature switched off (0) or scaled at every cell of its layer."""
        if self.picked is None or not self.state.features:
            return
        edit = FeatureEdit(self._layer, self.state.features, (self.picked,), scale)
        self.state.edits = (*self.state.edits, edit)
        self.services.message(f"{edit.describe()} (Ctrl+Z undoes it)", 6000)

    def _picked_row(self, row: int) -> None:
        self.picked = self._shown[row] if 0 <= row < len(self._shown) else None
        for button in self.buttons:
            button.setEnabled(self.picked is not None)
        self._show_where()
        engine = self.services.engine()
        if self.picked is None or engine is None or not self.state.features:
            return
        index = self.picked
        job = self.services.runner.submit(
            "the feature's top crops", gallery, engine, self.state.features, index, supersede="feature crops"
        )
        job.succeeded.connect(lambda crops: self.picked == index and self.crops.set_image(crops))
        job.failed.connect(self._said)

    def _said(self, text: str) -> None:
        self.caption.setText(text)

    def _show_where(self) -> None:
        if self.picked in self._shown and self._maps is not None:
            i = self._shown.index(self.picked)
            self.where.set_image(where_it_fires(self._maps[i], CONCEPT_PALETTE[self._colours[i]]))
        else:
            self.where.set_image(None)

    def show_result(self, result, model):
        values = result.views.values
        if "features_error" in values:
            self.caption.setText(values["features_error"])
            self.image.set_image(None)
            return
        if "feature_top" not in values:
            return
        self.image.set_image(result.views.images.get("features"), result.views.frame_size)
        shown = [int(j) for j in values["feature_top"]]
        self._maps, self._layer = values["feature_maps"], values["feature_layer"]
        self._colours = [int(c) for c in values["feature_colours"]]
        ev = float(values["feature_explained_variance"])
        name = Path(self.state.features).name
        self.caption.setText(f"features of {name} at {self._layer}: explained variance {ev:.3f} on this frame")
        if shown != self._shown:
            self._shown = shown
            self.list.blockSignals(True)
            self.list.clear()
            for j, strength, colour in zip(shown, values["feature_strength"], self._colours, strict=True):
                pixmap = QPixmap(12, 12)
                pixmap.fill(QColor(*(int(v) for v in CONCEPT_PALETTE[colour])))
                self.list.addItem(QListWidgetItem(QIcon(pixmap), f"feature {j}   {float(strength):.3g}"))
            if self.picked in shown:
                self.list.setCurrentRow(shown.index(self.picked))
            self.list.blockSignals(False)
        self._show_where()
