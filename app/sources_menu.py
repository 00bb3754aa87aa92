"""Choosing what frames come from: files, folders, cameras, drag and drop; the capture thread opens them."""

from __future__ import annotations

from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFileDialog, QMenu, QWidget

from livevis.app.capture import AUTO, CaptureThread
from livevis.app.draw_source import DRAW, DrawSource
from livevis.app.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES


class SourceChooser:
    """Keeps the last files and the last camera so that `c` can switch between them."""

    def __init__(self, parent: QWidget, capture: CaptureThread, file_menu: QMenu, mirror: bool, draw: DrawSource):
        self.parent, self.capture, self.draw = parent, capture, draw
        self.last_files: str | None = None
        self.camera = "0"
        self.camera_menu = file_menu.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self.fill_camera_menu)
        capture.cameras_found.connect(self._on_cameras_found)
        self.mirror = QAction("Mirror camera", parent, checkable=True, checked=mirror)
        self.mirror.toggled.connect(capture.set_mirror)
        capture.set_mirror(mirror)
        file_menu.addAction(self.mirror)

    def open(self, spec: str | list[str] | None) -> None:
        """None: camera 0 if it opens, else the bundled sample photos (the capture thread decides);
        `draw`: the drawing pad."""
        if spec == DRAW:
            self.draw.start()
            return
        self.draw.stop()
        if spec is None:
            spec = AUTO
        elif isinstance(spec, str) and spec.isdigit():
            self.camera = spec
        else:
            self.last_files = spec if isinstance(spec, str) else spec[0]
        self.capture.set_source(spec)

    def resume(self, saved: str) -> None:
        """The files shown last time if they are still there (checked on the capture thread), else AUTO."""
        self.last_files = saved or None
        self.capture.resume(self.last_files)

    def choose_files(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(self.parent, "Open images or a video", "",
                                                f"Images and videos ({patterns})")  # fmt: skip
        if paths:
            self.open(paths if len(paths) > 1 else paths[0])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent, "Open a folder of images")
        if folder:
            self.open(folder)

    def toggle(self) -> None:
        if self.capture.source_kind() == "camera":
            if self.last_files:
                self.open(self.last_files)
        else:
            self.open(self.camera)

    def fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        self.camera_menu.addAction("Searching for cameras...").setEnabled(False)
        self.capture.probe_cameras()

    def _on_cameras_found(self, cameras: list[int]) -> None:
        self.camera_menu.clear()
        if not cameras:
            self.camera_menu.addAction("No camera found").setEnabled(False)
        for index in cameras:
            action = self.camera_menu.addAction(f"Camera {index}")
            action.triggered.connect(lambda _=False, i=index: self.open(str(i)))

    def dropped(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open(paths if len(paths) > 1 else paths[0])
