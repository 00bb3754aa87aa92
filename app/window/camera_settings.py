"""File > Camera settings: a camera's resolution and frame rate, remembered per camera."""

from __future__ import annotations

from PyQt6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from livevis.app.sources.cameras import CameraInfo, CameraMode
from livevis.models.errors import InputError

DEFAULT = "camera's default"
RESOLUTIONS = (DEFAULT, "320x240", "640x480", "800x600", "1280x720", "1920x1080", "2560x1440", "3840x2160")
FRAME_RATES = (DEFAULT, "5", "10", "15", "24", "25", "30", "60")


class CameraSettingsDialog(QDialog):
    """Which camera, at what resolution and frame rate; a size the camera lacks is replaced by its nearest,
    and the status bar says what it delivers."""

    def __init__(
        self, parent: QWidget | None, cameras: list[CameraInfo], modes: dict[str, CameraMode], current: int = 0
    ):
        super().__init__(parent)
        self.setWindowTitle("Camera settings")
        self.cameras, self.modes = cameras, modes
        self.camera = QComboBox()
        for camera in cameras:
            self.camera.addItem(f"{camera.name} (camera {camera.index})", camera.index)
        self.resolution = QComboBox()
        self.resolution.setEditable(True)  # any WIDTHxHEIGHT the camera offers
        self.resolution.addItems(RESOLUTIONS)
        self.fps = QComboBox()
        self.fps.setEditable(True)
        self.fps.addItems(FRAME_RATES)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #c0392b")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Camera", self.camera)
        form.addRow("Resolution", self.resolution)
        form.addRow("Frame rate", self.fps)
        form.addRow(self.problem)
        form.addRow(buttons)
        self.camera.currentIndexChanged.connect(self._show_mode)
        index = self.camera.findData(current)
        self.camera.setCurrentIndex(max(index, 0))
        self._show_mode()

    def _show_mode(self, *_) -> None:
        if not self.cameras:
            return
        mode = self.modes.get(self.cameras[self.camera.currentIndex()].key, CameraMode())
        self.resolution.setCurrentText(f"{mode.width}x{mode.height}" if mode.width else DEFAULT)
        self.fps.setCurrentText(f"{mode.fps:g}" if mode.fps else DEFAULT)

    def choice(self) -> tuple[CameraInfo, CameraMode]:
        """The camera chosen and its mode; raises InputError for a resolution or rate that does not parse."""
        size = self.resolution.currentText().strip()
        rate = self.fps.currentText().strip()
        text = ("" if size in ("", DEFAULT) else size) + ("" if rate in ("", DEFAULT) else f"@{rate}")
        return self.cameras[self.camera.currentIndex()], CameraMode.parse(text)

    def accept(self) -> None:
        try:
            self.choice()
        except InputError as exc:
            self.problem.setText(str(exc))  # the dialog stays open to be corrected
            return
        super().accept()
