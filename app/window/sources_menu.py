"""Choosing what frames come from: files, folders, cameras by name, stream URLs, drag and drop; the capture
thread opens them."""

from __future__ import annotations

from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMenu, QWidget

from livevis.app.live.capture import AUTO, CaptureThread
from livevis.app.sources.cameras import CameraInfo, CameraMode, camera_info
from livevis.app.sources.draw import DRAW, DrawSource
from livevis.app.sources.network import (
    check_stream_url,
    display_url,
    is_stream_url,
    needs_password,
    with_password,
    without_password,
)
from livevis.app.window.camera_settings import CameraSettingsDialog
from livevis.app.window.settings import SettingsStore
from livevis.models.data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from livevis.models.errors import InputError

RECENT_URLS = 10


class SourceChooser:
    """Keeps the last files, the last camera and the last stream so that `c` can switch between them;
    remembers stream URLs (without their passwords) and each camera's resolution and frame rate."""

    def __init__(
        self, parent: QWidget, capture: CaptureThread, file_menu: QMenu, settings: SettingsStore, draw: DrawSource
    ):
        self.parent, self.capture, self.draw, self.settings = parent, capture, draw, settings
        self.last_files: str | None = None
        self.last_url: str | None = None
        """The stream opened last, with its password: kept for this run only, never written anywhere."""
        self.camera = "0"
        self.cameras: list[CameraInfo] = []
        self.camera_menu = file_menu.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self.fill_camera_menu)
        self.recent_menu = file_menu.addMenu("Recent URLs")
        self.recent_menu.aboutToShow.connect(self.fill_recent_menu)
        capture.cameras_found.connect(self._on_cameras_found)
        self.mirror = QAction("Mirror camera", parent, checkable=True, checked=settings.get("mirror"))
        self.mirror.toggled.connect(capture.set_mirror)
        capture.set_mirror(self.mirror.isChecked())
        capture.set_camera_modes(self.camera_modes())
        file_menu.addAction(self.mirror)

    def open(self, spec: str | list[str] | None) -> None:
        """None: camera 0 if it opens, else the bundled sample photos (the capture thread decides);
        `draw`: the drawing pad; a URL: a network stream. A URL that does not parse is one message (without
        the URL: where its password ends cannot be known), and what runs goes on."""
        if isinstance(spec, str) and is_stream_url(spec) and not self._parses(spec):
            return
        if spec == DRAW:
            self.draw.start()
            return
        self.draw.stop()
        if spec is None:
            spec = AUTO
        elif isinstance(spec, str) and spec.isdigit():
            self.camera = spec
        elif isinstance(spec, str) and is_stream_url(spec):
            self.last_url = spec
            self.remember_url(spec)
        else:
            self.last_files = spec if isinstance(spec, str) else spec[0]
        self.capture.set_source(spec)

    def resume(self, saved: str) -> None:
        """The files shown last time if they are still there (checked on the capture thread), else AUTO."""
        self.last_files = saved or None
        self.capture.resume(self.last_files)

    def choose_files(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(
            self.parent, "Open images or a video", "", f"Images and videos ({patterns})"
        )
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

    # --- cameras ---
    def fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        self.camera_menu.addAction("Searching for cameras...").setEnabled(False)
        self.capture.probe_cameras()

    def _on_cameras_found(self, cameras: list[CameraInfo]) -> None:
        self.cameras = cameras
        self.camera_menu.clear()
        if not cameras:
            self.camera_menu.addAction("No camera found").setEnabled(False)
        for camera in cameras:
            named = camera.name != f"Camera {camera.index}"
            action = self.camera_menu.addAction(f"{camera.name} (camera {camera.index})" if named else camera.name)
            action.triggered.connect(lambda _=False, i=camera.index: self.open(str(i)))

    def camera_modes(self) -> dict[str, CameraMode]:
        """The resolution and frame rate remembered for each camera, by `CameraInfo.key`."""
        return {key: CameraMode.parse(text) for key, text in self.settings.get("camera_modes").items()}

    def set_camera_mode(self, camera: CameraInfo, mode: CameraMode) -> None:
        """Remembered for that camera; the camera reopens at it if it is running."""
        modes = dict(self.settings.get("camera_modes"))
        if str(mode):
            modes[camera.key] = str(mode)
        else:
            modes.pop(camera.key, None)
        self.settings.set("camera_modes", modes)
        self.capture.set_camera_modes(self.camera_modes())

    def choose_camera_settings(self) -> None:
        cameras = self.cameras or [camera_info(int(self.camera))]
        dialog = CameraSettingsDialog(self.parent, cameras, self.camera_modes(), int(self.camera))
        if dialog.exec():
            camera, mode = dialog.choice()
            self.set_camera_mode(camera, mode)

    # --- stream URLs ---
    def recent_urls(self) -> list[str]:
        return list(self.settings.get("recent_urls"))

    def remember_url(self, url: str) -> None:
        """First in the recent URLs, without its password (asked for again when it is chosen)."""
        kept = without_password(url)
        self.settings.set("recent_urls", [kept, *(u for u in self.recent_urls() if u != kept)][:RECENT_URLS])

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        urls = self.recent_urls()
        if not urls:
            self.recent_menu.addAction("No URL opened yet (File > Open URL...)").setEnabled(False)
        for url in urls:
            self.recent_menu.addAction(url).triggered.connect(lambda _=False, u=url: self.open_url(u))

    def _parses(self, url: str) -> bool:
        try:
            check_stream_url(url)
        except InputError as exc:
            self.capture.error.emit(str(exc))
            return False
        return True

    def open_url(self, url: str, password: str | None = None) -> None:
        """A stream URL as typed or remembered; a remembered one whose user needs a password asks for it."""
        url = url.strip()
        if not is_stream_url(url):
            # not quoted: text typed here may hold a login
            self.capture.error.emit(
                "That is not a stream URL: give http://, https:// or rtsp://..., e.g. http://PHONE:8080/video"
            )
            return
        if not self._parses(url):
            return
        if needs_password(url):
            if password is None:
                password, ok = QInputDialog.getText(
                    self.parent, "Password", f"Password for {display_url(url)}", QLineEdit.EchoMode.Password
                )
                if not ok:
                    return
            if password:
                url = with_password(url, password)
        self.open(url)

    def choose_url(self) -> None:
        url, ok = QInputDialog.getItem(
            self.parent,
            "Open URL",
            "A phone or IP camera, e.g. http://PHONE:8080/video (IP Webcam) or rtsp://user:pass@CAMERA/stream",
            self.recent_urls() or ["http://"],
            0,
            True,
        )
        if ok and url.strip():
            self.open_url(url)

    def dropped(self, event) -> None:
        mime = event.mimeData()
        urls = mime.urls()
        # a URL Qt cannot parse arrives as an empty QUrl: the dropped text (if any) still holds it as written
        texts = [url.toString() for url in urls if url.isValid()]
        texts += [line.strip() for line in mime.text().splitlines()] if mime.hasText() else []
        streams = [text for text in texts if is_stream_url(text)]
        if streams:
            self.open(streams[0])
            return
        paths = [url.toLocalFile() for url in urls if url.isLocalFile()]
        if paths:
            self.open(paths if len(paths) > 1 else paths[0])
        elif any(not url.isValid() for url in urls):
            self.capture.error.emit("the dropped URL does not parse: check it, or type it in File > Open URL...")
