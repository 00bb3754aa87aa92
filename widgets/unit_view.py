"""The selected unit explained, as the Deep Visualization Toolbox's right column: its strongest crops from
a mined folder with their deconvolutions, and an image optimised to excite it."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .image_view import ImageView


class UnitView(QWidget):
    optimise_requested = pyqtSignal()
    cancel_requested = pyqtSignal()
    crop_clicked = pyqtSignal(int)
    """The index (0..8) of the top crop clicked, in the mosaic's row-major order."""
    folder_chosen = pyqtSignal(str)
    title_changed = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("unit")
        self.crops = ImageView(smooth=True, placeholder="top images: File > Mine a folder...")
        self.deconvs = ImageView(smooth=True, placeholder="their deconvolutions")
        self.optimised = ImageView(smooth=True, placeholder="an image that excites this unit:\nOptimise (D)")
        self.optimise = QPushButton("Optimise (D)")
        self.optimise.setToolTip("make an image that maximises the selected channel, in the background")
        self.optimise.clicked.connect(self.optimise_requested)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.atlas_note = QLabel("")
        self.atlas_note.setWordWrap(True)
        self.folders = QComboBox()
        self.folders.setToolTip("the mined folder whose top images are shown")
        self.folders.textActivated.connect(self.folder_chosen)
        self.crops.clicked.connect(self._on_crop_click)
        self.method = QLabel("deconv")
        images = QHBoxLayout()
        for title, view in (
            (QLabel("top 9"), self.crops),
            (self.method, self.deconvs),
            (QLabel("optimised"), self.optimised),
        ):
            column = QVBoxLayout()
            column.addWidget(title)
            column.addWidget(view, 1)
            images.addLayout(column, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.optimise)
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(images, 1)
        layout.addWidget(self.atlas_note)
        layout.addWidget(self.folders)
        layout.addLayout(buttons)
        self.set_running(False)
        self._grid = 3

    def set_title(self, text: str) -> None:
        """Which unit is shown (on the view's first line, and for whoever frames it)."""
        self.title.setText(text)
        self.title_changed.emit(text)

    def set_running(self, running: bool) -> None:
        self.optimise.setEnabled(not running)
        self.cancel.setVisible(running)
        self.progress.setVisible(running)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def set_optimised(self, image: np.ndarray | None) -> None:
        self.optimised.set_image(image)

    METHODS = {
        "deconv": ("deconv", "Zeiler-Fergus deconvolution of the unit in each top image"),
        "guided": (
            "guided backprop",
            "guided backpropagation of the unit in each top image: this network's "
            "deconvolution is the same for every image (no max-pooling switches), so it would show nothing "
            "of the image",
        ),
    }

    def set_atlas(
        self,
        crops: np.ndarray | None,
        deconvs: np.ndarray | None,
        note: str = "",
        grid: int = 3,
        method: str = "deconv",
    ) -> None:
        """Mosaics (uint8 RGB) of the unit's top crops and of what drives it in each, `grid` x `grid` tiles;
        `method`: how that was found (deconv or guided)."""
        self._grid = grid
        self.crops.set_image(crops)
        self.deconvs.set_image(deconvs)
        self.atlas_note.setText(note)
        title, explanation = self.METHODS[method]
        self.method.setText(title)
        self.method.setToolTip(explanation)

    def set_folders(self, folders: list[str], chosen: str | None) -> None:
        self.folders.clear()
        self.folders.addItems(folders)
        self.folders.setVisible(bool(folders))
        if chosen:
            self.folders.setCurrentText(chosen)

    def chosen_folder(self) -> str | None:
        return self.folders.currentText() or None

    def _on_crop_click(self, x: float, y: float) -> None:
        image = self.crops.image_array()
        if image is None:
            return
        h, w = image.shape[:2]
        col, row = int(x * self._grid // w), int(y * self._grid // h)
        self.crop_clicked.emit(row * self._grid + col)
