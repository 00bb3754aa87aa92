"""The Model menu and box: the listed models and the user's own once loaded, the devices, the download
dialog; requests go to the model loader, which runs them in the background."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QComboBox, QFileDialog, QMenu, QProgressDialog, QWidget

from livevis.app.live.model_loader import ModelInfo, ModelLoader
from livevis.app.window.status_line import StatusLine
from livevis.models import model_names
from livevis.models.zoo.torchvision_catalog import torchvision_names


class ModelMenu:
    def __init__(
        self, parent: QWidget, menu: QMenu, combo: QComboBox, loader: ModelLoader, status: StatusLine, device: str
    ):
        self.parent, self.menu, self.combo, self.loader, self.status = parent, menu, combo, loader, status
        self.device = device
        self.info: ModelInfo | None = None
        self.device_menu = menu.addMenu("Device")
        self.device_group = QActionGroup(parent)
        menu.addSeparator()
        self.model_group = QActionGroup(parent)
        for name in model_names():
            self._add_model(name)
        self.more_menu = menu.addMenu("More torchvision models")
        for name in torchvision_names():
            if name not in model_names():
                self._add_model(name, self.more_menu)
        self.download_dialog: QProgressDialog | None = None
        loader.download_progress.connect(self.on_download_progress)
        loader.ready.connect(lambda *_: self.close_download_dialog())
        loader.failed.connect(lambda *_: self.close_download_dialog())

    def _add_model(self, name: str, menu: QMenu | None = None) -> None:
        action = QAction(name, self.parent, checkable=True)
        action.triggered.connect(lambda _=False, n=name: self.choose(n))
        self.model_group.addAction(action)
        (menu or self.menu).addAction(action)

    def choose(self, name: str) -> None:
        if self.info is not None and name == self.info.name:
            return
        self.status.show_model(None, f"loading {name}...")
        self.loader.load_by_name(name, self.device)

    def choose_device(self, device: str) -> None:
        """The model running now, moved to another device (it keeps running until the move is done)."""
        if self.info is None or device == self.device:
            return
        self.device = device
        self.status.show_model(None, f"moving {self.info.name} to {device}...")
        self.loader.reload(device=device)

    def choose_weights(self) -> None:
        if self.info is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self.parent, "Load a state-dict file", "", "PyTorch weights (*.pth *.pt *.bin)"
        )
        if path:
            self.status.show_model(None, f"loading {Path(path).name}...")
            self.loader.reload(weights=path, device=self.device)

    def show_loaded(self, info: ModelInfo) -> None:
        self.info = info
        if self.combo.findText(info.name) < 0:  # a user's own model: listed from now on
            self.combo.addItem(info.name)
            if not any(action.text() == info.name for action in self.model_group.actions()):
                self._add_model(info.name)
        self.combo.setCurrentText(info.name)
        for action in self.model_group.actions():
            action.setChecked(action.text() == info.name)
        if not self.device_group.actions():  # the machine's devices do not change while the app runs
            for device in ("auto", *info.devices):
                action = QAction(device, self.parent, checkable=True)
                action.triggered.connect(lambda _=False, d=device: self.choose_device(d))
                self.device_group.addAction(action)
                self.device_menu.addAction(action)
        for action in self.device_group.actions():
            action.setChecked(action.text() == self.device)
        self.status.show_model(info)

    def on_download_progress(self, label: str, done: int, total: int) -> None:
        """A cancellable progress dialog while trained weights download (the app keeps running)."""
        dialog = self.download_dialog
        if dialog is None:
            dialog = QProgressDialog(f"Downloading trained weights: {label}...", "Cancel", 0, 0, self.parent)
            dialog.setWindowTitle("livevis")
            dialog.setMinimumDuration(0)
            dialog.canceled.connect(self.loader.cancel_download)
            self.download_dialog = dialog
        if total:
            dialog.setMaximum(1000)
            dialog.setValue(min(999, done * 1000 // total))
        dialog.setLabelText(
            f"Downloading trained weights: {label}: {done / 2**20:.1f}"
            + (f" of {total / 2**20:.1f} MB" if total else " MB")
        )

    def close_download_dialog(self) -> None:
        if self.download_dialog is not None:
            self.download_dialog.canceled.disconnect()
            self.download_dialog.close()
            self.download_dialog = None
