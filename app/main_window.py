"""The main window: wires the capture thread and the inference worker to the widgets.

The GUI thread turns results into images and paints; it runs no torch and no file I/O.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR, QEvent, QSettings, QStandardPaths, Qt, QTimer
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSlider,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from livevis.app import __version__
from livevis.app.capture import AUTO, CaptureThread, LatestFrameSlot
from livevis.app.embeddings_tab import EmbeddingsTab
from livevis.app.shortcuts import CHANNEL_BOOSTS, GAMMA_BOOSTS, SHORTCUTS, help_rows
from livevis.app.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from livevis.app.worker import InferenceWorker, LiveResult, ModelInfo
from livevis.models import COLORMAPS, ViewOptions, model_names
from livevis.widgets.channel_grid import ChannelGrid, GridGeometry
from livevis.widgets.help_overlay import HelpOverlay
from livevis.widgets.image_view import ImageView
from livevis.widgets.layer_tree import LayerTree
from livevis.widgets.predictions import PredictionsView

SETTINGS_KEYS = ("colormap", "norm", "gamma", "boost", "overlay_mode", "opacity")


def default_snapshot_dir() -> Path:
    """The user's Pictures folder (home where there is none), not the working directory, which for
    an app started from a desktop menu may be / or read-only."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures or Path.home()) / "livevis"


class LiveStats:
    """Counters for the status bar and for `--stats-json`."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first_display: float | None = None
        self.displayed = 0
        self.latencies_ms: deque[float] = deque(maxlen=2000)
        self.display_times: deque[float] = deque(maxlen=120)
        self.loop_lateness_ms: deque[float] = deque(maxlen=5000)
        self.grid_paint_ms: deque[float] = deque(maxlen=2000)
        self.stage_ms: dict[str, deque[float]] = {}
        self.model_ready_at = 0.0
        self._last_sequence: int | None = None

    def add_latency(self, sequence: int, captured_at: float, now: float) -> None:
        """Capture-to-display latency, once per frame: redrawing the frame shown (another channel,
        frozen, a still image) is no new capture, and time spent waiting for a model to load is
        not the pipeline's."""
        if sequence != self._last_sequence:
            self._last_sequence = sequence
            self.latencies_ms.append((now - max(captured_at, self.model_ready_at)) * 1000.0)

    def fps(self) -> float:
        times = self.display_times
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    @staticmethod
    def _percentile(values, q: float) -> float | None:
        return float(np.percentile(list(values), q)) if values else None

    def as_dict(self, slot: LatestFrameSlot, processed: int) -> dict:
        elapsed = time.perf_counter() - self.started
        running = (self.display_times[-1] - self.first_display) if self.displayed > 1 else 0.0
        return {
            "frames_captured": slot.captured,
            "frames_processed": processed,
            "frames_displayed": self.displayed,
            "frames_dropped": slot.dropped,
            "seconds": elapsed,
            "fps": (self.displayed - 1) / running if running > 0 else 0.0,
            "latency_ms_p50": self._percentile(self.latencies_ms, 50),
            "latency_ms_p95": self._percentile(self.latencies_ms, 95),
            "event_loop_latency_ms_p95": self._percentile(self.loop_lateness_ms, 95),
            "grid_paint_ms_p50": self._percentile(self.grid_paint_ms, 50),
            "grid_paint_ms_p95": self._percentile(self.grid_paint_ms, 95),
            "worker_stage_ms_p50": {stage: self._percentile(ms, 50) for stage, ms in self.stage_ms.items()},
        }

    def add_stage_times(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_ms.setdefault(stage, deque(maxlen=2000)).append(ms)


class MainWindow(QMainWindow):
    LOOP_PROBE_MS = 10

    def __init__(
        self,
        *,
        source: str | None = None,
        model: str | None = None,
        weights: str = "default",
        layer: str | None = None,
        device: str = "auto",
        settings: QSettings | None = None,
        custom: dict | None = None,
    ):
        super().__init__()
        self.setWindowTitle("livevis")
        self.settings = settings or QSettings("livevis", "livevis")
        self.device = device
        self.stats = LiveStats()
        self.model: ModelInfo | None = None
        self.options = self._restored_options(layer)
        self.frozen = False
        self.last_result: LiveResult | None = None
        self._zoomed = False
        self._last_files: str | None = None
        self._camera_source: str = "0"

        self.slot = LatestFrameSlot()
        self.capture = CaptureThread(self.slot, self)
        self.worker = InferenceWorker(self.slot, self.options, self)
        self._build_widgets()
        self._build_actions()
        self._build_status_bar()
        self._connect()

        self.capture.start()
        self.worker.start()
        self._download_dialog: QProgressDialog | None = None
        first_model = model or self._setting("model") or None
        self._fallback_pending = first_model is not None  # if it fails, show the default model instead
        self.worker.load_model(first_model, weights, device, **(custom or {}))
        self._status_model.setText("loading model...")
        if source is not None:
            self.open_source(source)
        else:
            self._last_files = self._setting("source") or None
            self.capture.resume(self._last_files)
        self._restore_geometry()

        self._loop_probe = QTimer(self)
        self._loop_probe.setInterval(self.LOOP_PROBE_MS)
        self._loop_probe.timeout.connect(self._probe_event_loop)
        self._loop_probe_last = time.perf_counter()
        self._loop_probe.start()

    # ------------------------------------------------------------------ building
    def _build_widgets(self) -> None:
        self.input_view = ImageView(placeholder="No input yet.\nOpen a camera, files or a folder (File menu).")
        self.predictions = PredictionsView()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self._titled("input (dashed: what the network sees)", self.input_view), 1)
        left_layout.addWidget(self.predictions)

        self.layer_tree = LayerTree()
        self.layer_tree.setMinimumWidth(250)
        self.grid = ChannelGrid()
        self.grid_title = QLabel("layer")

        self.overlay_view = ImageView(placeholder="selected channel")
        self.tile_view = ImageView(smooth=False, placeholder="zoomed channel")
        self.selected_stack = QStackedWidget()
        self.selected_stack.addWidget(self.overlay_view)
        self.selected_stack.addWidget(self.tile_view)
        self.small_view = ImageView(smooth=False)
        self.small_view.setMinimumSize(120, 120)
        self.small_view.setMaximumHeight(200)
        self.channel_info = QLabel("-")
        # a fixed size: new numbers every frame must not re-lay out (and repaint) the whole window
        self.channel_info.setFixedSize(240, 110)
        self.channel_info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self._titled("selected channel on the frame (z swaps)", self.selected_stack), 1)
        row = QHBoxLayout()
        row.addWidget(self.small_view, 1)
        row.addWidget(self.channel_info, 1)
        right_layout.addLayout(row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.layer_tree)
        grid_box = QWidget()
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addWidget(self.grid_title)
        grid_layout.addWidget(self.grid, 1)
        splitter.addWidget(grid_box)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 4)
        splitter.setStretchFactor(3, 3)
        self.splitter = splitter
        self.embeddings = EmbeddingsTab()
        self.tabs = QTabWidget()
        self.tabs.addTab(splitter, "Live")
        self.tabs.addTab(self.embeddings, "Embeddings")
        self.setCentralWidget(self.tabs)
        for view in (self.input_view, self.overlay_view, self.grid):
            view.resized.connect(lambda *_: QTimer.singleShot(0, self._send_display_size))
        self.help_overlay = HelpOverlay(self.tabs)
        self.help_overlay.set_shortcuts(help_rows())
        self.setAcceptDrops(True)
        self.resize(1500, 860)

    @staticmethod
    def _titled(title: str, widget: QWidget) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(title))
        layout.addWidget(widget, 1)
        return box

    def _action(self, name: str, slot, text: str | None = None) -> QAction:
        keys, description = SHORTCUTS[name]
        action = QAction(text or description[:1].upper() + description[1:], self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{description} ({', '.join(keys)})")
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions_by_name[name] = action
        return action

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        a = self._action
        a("left", lambda: self.move_selection(0, -1))
        a("right", lambda: self.move_selection(0, 1))
        a("up", lambda: self.move_selection(-1, 0))
        a("down", lambda: self.move_selection(1, 0))
        a("previous_layer", lambda: self.step_layer(-1))
        a("next_layer", lambda: self.step_layer(1))
        freeze = a("freeze", self.toggle_freeze, "Freeze")
        freeze.setCheckable(True)
        a("toggle_source", self.toggle_source)
        a("previous_file", lambda: self.capture.step(-1), "Previous file")
        a("next_file", lambda: self.capture.step(1), "Next file")
        a("boost_channel", self.cycle_channel_boost, "Per-channel boost")
        a("boost_gamma", self.cycle_gamma, "Gamma boost")
        a("colormap", self.cycle_colormap, "Next colormap")
        a("zoom", self.toggle_zoom, "Swap overlay and zoom")
        a("snapshot", self.snapshot, "Snapshot")
        a("help", self.help_overlay.toggle, "Keyboard shortcuts")
        a("quit", self.close, "Quit")
        a("open_files", self.choose_files, "Open image or video files...")
        a("open_folder", self.choose_folder, "Open a folder of images...")

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.actions_by_name["open_files"])
        file_menu.addAction(self.actions_by_name["open_folder"])
        self.camera_menu = file_menu.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        mirror = QAction("Mirror camera", self, checkable=True, checked=True)
        mirror.toggled.connect(self.capture.set_mirror)
        file_menu.addAction(mirror)
        file_menu.addSeparator()
        for name in ("previous_file", "next_file", "freeze", "snapshot"):
            file_menu.addAction(self.actions_by_name[name])
        weights_action = QAction("Load weights file...", self)
        weights_action.triggered.connect(self.choose_weights)
        file_menu.addAction(weights_action)
        file_menu.addSeparator()
        file_menu.addAction(self.actions_by_name["quit"])

        view_menu = menu.addMenu("&View")
        self.colormap_group = self._choice_menu(view_menu.addMenu("Colormap"), COLORMAPS, "colormap")
        self.norm_group = self._choice_menu(view_menu.addMenu("Normalisation"), ("layer", "channel"), "norm")
        self.mode_group = self._choice_menu(view_menu.addMenu("Overlay mode"), ("overlay", "mask"), "overlay_mode")
        for name in ("boost_channel", "boost_gamma", "colormap", "zoom"):
            view_menu.addAction(self.actions_by_name[name])

        self.model_menu = menu.addMenu("&Model")
        self.device_menu = self.model_menu.addMenu("Device")
        self.device_group = QActionGroup(self)
        self.model_menu.addSeparator()
        self.model_group = QActionGroup(self)
        for name in model_names():
            self._add_model_action(name)

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.actions_by_name["help"])
        about = QAction("About livevis", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

        toolbar = QToolBar("View options")
        toolbar.setObjectName("view-options")
        self.addToolBar(toolbar)
        toolbar.addAction(self.actions_by_name["open_files"])
        toolbar.addAction(freeze)
        toolbar.addAction(self.actions_by_name["snapshot"])
        toolbar.addSeparator()
        self.model_combo = self._combo(toolbar, "model", model_names(), self.choose_model)
        self.colormap_combo = self._combo(toolbar, "colormap", COLORMAPS, lambda v: self.update_options(colormap=v))
        self.norm_combo = self._combo(toolbar, "norm", ("layer", "channel"), lambda v: self.update_options(norm=v))
        self.mode_combo = self._combo(
            toolbar, "overlay", ("overlay", "mask"), lambda v: self.update_options(overlay_mode=v)
        )
        toolbar.addWidget(QLabel(" opacity "))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setValue(round(self.options.opacity * 100))
        self.opacity_slider.valueChanged.connect(lambda v: self.update_options(opacity=v / 100))
        toolbar.addWidget(self.opacity_slider)
        self.boost_combo = self._combo(toolbar, "boost", [f"{b:g}" for b in CHANNEL_BOOSTS],
                                       lambda v: self.update_options(boost=float(v)))  # fmt: skip
        self.boost_combo.setToolTip("per-channel boost: 0 keeps the layer's scale, 1 scales each channel alone (T)")
        self.gamma_combo = self._combo(toolbar, "gamma", [f"{g:g}" for g in GAMMA_BOOSTS],
                                       lambda v: self.update_options(gamma=float(v)))  # fmt: skip
        self.gamma_combo.setToolTip("gamma boost: below 1 lifts weak responses (Shift+T)")
        self._sync_option_widgets()

    def _choice_menu(self, menu, values, option: str) -> QActionGroup:
        group = QActionGroup(self)
        for value in values:
            action = QAction(value, self, checkable=True)
            action.triggered.connect(lambda _=False, v=value: self.update_options(**{option: v}))
            group.addAction(action)
            menu.addAction(action)
        return group

    def _add_model_action(self, name: str) -> None:
        action = QAction(name, self, checkable=True)
        action.triggered.connect(lambda _=False, n=name: self.choose_model(n))
        self.model_group.addAction(action)
        self.model_menu.addAction(action)

    def _combo(self, toolbar: QToolBar, label: str, values, on_change) -> QComboBox:
        toolbar.addWidget(QLabel(f" {label} "))
        combo = QComboBox()
        combo.addItems(list(values))
        combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        combo.textActivated.connect(on_change)
        toolbar.addWidget(combo)
        return combo

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self._status_source = QLabel("no source")
        self._status_model = QLabel("no model")
        self._status_layer = QLabel("-")
        self._status_rate = QLabel("-")
        for label in (self._status_source, self._status_model, self._status_layer, self._status_rate):
            bar.addPermanentWidget(label)
        self._status_rate.setMinimumWidth(self._status_rate.fontMetrics().horizontalAdvance("0" * 48))
        self._status_layer.setMinimumWidth(self._status_layer.fontMetrics().horizontalAdvance("0" * 16))

    def _connect(self) -> None:
        self.worker.result_ready.connect(self.on_result)
        self.worker.model_ready.connect(self.on_model_ready)
        self.worker.model_failed.connect(self.on_model_failed)
        self.worker.download_progress.connect(self.on_download_progress)
        self.worker.error.connect(self.show_error)
        self.worker.snapshot_saved.connect(lambda path: self.statusBar().showMessage(f"snapshot saved in {path}", 8000))
        self.capture.error.connect(self.show_error)
        self.capture.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.capture.source_changed.connect(self._on_source_changed)
        self.capture.cameras_found.connect(self._on_cameras_found)
        self.grid.channel_selected.connect(lambda c: self.update_options(channel=c))
        self.layer_tree.layer_selected.connect(lambda path: self.update_options(layer=path, channel=0))

    # ------------------------------------------------------------------ settings
    def _setting(self, key: str):
        value = self.settings.value(key)
        return value if value not in ("", None) else None

    def _restored_options(self, layer: str | None) -> ViewOptions:
        values = {}
        for key in SETTINGS_KEYS:
            value = self._setting(key)
            if value is not None:
                default = getattr(ViewOptions, key)
                try:
                    values[key] = type(default)(value)
                except (TypeError, ValueError):
                    pass
        stored_layer = self._setting("layer")
        try:
            options = ViewOptions(**values)
        except ValueError:
            options = ViewOptions()
        channel = self._setting("channel")
        return options.with_(
            layer=layer or stored_layer,
            channel=int(channel) if channel is not None and not layer else 0,
            signed_input=False,
        )

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def save_settings(self) -> None:
        for key in SETTINGS_KEYS:
            self.settings.setValue(key, getattr(self.options, key))
        self.settings.setValue("layer", self.options.layer or "")
        self.settings.setValue("channel", self.options.channel)
        if self.model is not None and self.model.name in model_names():
            # a user's own model needs its command-line description (input size, mean, std) to load
            self.settings.setValue("model", self.model.name)
        if self._last_files is not None:
            self.settings.setValue("source", self._last_files)
        self.settings.setValue("geometry", self.saveGeometry())

    # ------------------------------------------------------------------ sources
    def open_source(self, spec: str | list[str] | None) -> None:
        """None: camera 0 if it opens, else the bundled sample photos (the capture thread decides)."""
        if spec is None:
            spec = AUTO
        elif isinstance(spec, str) and spec.isdigit():
            self._camera_source = spec
        else:
            self._last_files = spec if isinstance(spec, str) else spec[0]
        self.capture.set_source(spec)

    def choose_files(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images or a video", "", f"Images and videos ({patterns})")
        if paths:
            self.open_source(paths if len(paths) > 1 else paths[0])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_source(folder)

    def toggle_source(self) -> None:
        if self.capture.source_kind() == "camera":
            if self._last_files:
                self.open_source(self._last_files)
        else:
            self.open_source(self._camera_source)

    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        self.camera_menu.addAction("Searching for cameras...").setEnabled(False)
        self.capture.probe_cameras()

    def _on_cameras_found(self, cameras: list[int]) -> None:
        self.camera_menu.clear()
        if not cameras:
            self.camera_menu.addAction("No camera found").setEnabled(False)
        for index in cameras:
            action = self.camera_menu.addAction(f"Camera {index}")
            action.triggered.connect(lambda _=False, i=index: self.open_source(str(i)))

    def _on_source_changed(self, label: str) -> None:
        self._status_source.setText(label)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_source(paths if len(paths) > 1 else paths[0])

    # ------------------------------------------------------------------ model
    def choose_model(self, name: str) -> None:
        if self.model is not None and name == self.model.name:
            return
        self._status_model.setText(f"loading {name}...")
        self.worker.load_by_name(name, self.device)

    def choose_device(self, device: str) -> None:
        """The model running now, moved to another device (it keeps running until the move is done)."""
        if self.model is None or device == self.device:
            return
        self.device = device
        self._status_model.setText(f"moving {self.model.name} to {device}...")
        self.worker.move_to(device)

    def _fill_device_menu(self, devices: tuple[str, ...]) -> None:
        """The machine's devices, listed once (they do not change while the app runs); the one in use checked."""
        if not self.device_group.actions():
            for device in ("auto", *devices):
                action = QAction(device, self, checkable=True)
                action.triggered.connect(lambda _=False, d=device: self.choose_device(d))
                self.device_group.addAction(action)
                self.device_menu.addAction(action)
        for action in self.device_group.actions():
            action.setChecked(action.text() == self.device)

    def choose_weights(self) -> None:
        if self.model is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Load a state-dict file", "", "PyTorch weights (*.pth *.pt *.bin)")
        if path:
            self._status_model.setText(f"loading {Path(path).name}...")
            self.worker.load_weights(path, self.device)

    def on_download_progress(self, label: str, done: int, total: int) -> None:
        """A cancellable progress dialog while trained weights download (the app keeps running)."""
        dialog = self._download_dialog
        if dialog is None:
            dialog = QProgressDialog(f"Downloading trained weights for {label}...", "Cancel", 0, 0, self)
            dialog.setWindowTitle("livevis")
            dialog.setMinimumDuration(0)
            dialog.canceled.connect(self.worker.cancel_download)
            self._download_dialog = dialog
        if total:
            dialog.setMaximum(1000)
            dialog.setValue(min(999, done * 1000 // total))
        dialog.setLabelText(f"Downloading trained weights for {label}: {done / 2**20:.1f}"
                            + (f" of {total / 2**20:.1f} MB" if total else " MB"))  # fmt: skip

    def _close_download_dialog(self) -> None:
        if self._download_dialog is not None:
            self._download_dialog.canceled.disconnect()
            self._download_dialog.close()
            self._download_dialog = None

    def on_model_ready(self, info: ModelInfo) -> None:
        self._close_download_dialog()
        self.stats.model_ready_at = time.perf_counter()
        self.model = info
        self.layer_tree.set_layers(info.layers)
        self.update_options(layer=info.layer, channel=info.channel)  # what the worker started on
        if self.model_combo.findText(info.name) < 0:  # a user's own model: listed from now on
            self.model_combo.addItem(info.name)
            self._add_model_action(info.name)
        self.model_combo.setCurrentText(info.name)
        for action in self.model_group.actions():
            action.setChecked(action.text() == info.name)
        self._fill_device_menu(info.devices)
        self._show_model_status()
        if info.notice:
            QMessageBox.information(self, "Trained weights not available", info.notice)

    def on_model_failed(self, message: str) -> None:
        self._close_download_dialog()
        if self.model is None and self._fallback_pending:
            self._fallback_pending = False
            self.worker.load_model(None, "default", self.device)
            message += "\n\nLoading the default model instead."
        current = f" {self.model.name} stays loaded." if self.model else ""
        self._show_model_status()
        self.show_error(message)
        QMessageBox.warning(self, "Model not loaded", f"{message}\n\n{current}".strip())

    # ------------------------------------------------------------------ options
    def update_options(self, **changes) -> None:
        try:
            self.options = self.options.with_(**changes)
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.worker.set_options(self.options)
        self.grid.set_selected(self.options.channel)
        if "layer" in changes:
            self.layer_tree.select_path(self.options.layer)
        self._sync_option_widgets()

    def _sync_option_widgets(self) -> None:
        o = self.options
        self.colormap_combo.setCurrentText(o.colormap)
        self.norm_combo.setCurrentText(o.norm)
        self.mode_combo.setCurrentText(o.overlay_mode)
        for group, value in ((self.colormap_group, o.colormap), (self.norm_group, o.norm),
                             (self.mode_group, o.overlay_mode)):  # fmt: skip
            for action in group.actions():
                action.setChecked(action.text() == value)
        for combo, value in ((self.boost_combo, o.boost), (self.gamma_combo, o.gamma)):
            if combo.findText(f"{value:g}") < 0:  # a value from the settings that is not a step
                combo.addItem(f"{value:g}")
            combo.setCurrentText(f"{value:g}")
        self._update_layer_status()

    def move_selection(self, d_row: int, d_col: int) -> None:
        geometry = self.grid.geometry_
        if geometry is None:
            return
        self.update_options(channel=geometry.moved(self.options.channel, d_row, d_col))

    def step_layer(self, delta: int) -> None:
        if self.model is None:
            return
        paths = [path for path, _, _ in self.model.layers]
        index = paths.index(self.options.layer) if self.options.layer in paths else 0
        self.update_options(layer=paths[(index + delta) % len(paths)], channel=0)

    def cycle_channel_boost(self) -> None:
        self.update_options(boost=_next(CHANNEL_BOOSTS, self.options.boost))

    def cycle_gamma(self) -> None:
        self.update_options(gamma=_next(GAMMA_BOOSTS, self.options.gamma))

    def cycle_colormap(self) -> None:
        self.update_options(colormap=_next(COLORMAPS, self.options.colormap))

    def toggle_zoom(self) -> None:
        self._zoomed = not self._zoomed
        self.selected_stack.setCurrentIndex(1 if self._zoomed else 0)
        if self.last_result is not None:
            self._show_selected(self.last_result)

    def toggle_freeze(self) -> None:
        self.frozen = not self.frozen
        self.actions_by_name["freeze"].setChecked(self.frozen)
        self.worker.set_frozen(self.frozen)
        self.statusBar().showMessage("frozen: browse layers and channels; space to resume" if self.frozen else
                                     "live", 4000)  # fmt: skip

    def snapshot(self) -> None:
        folder = Path(self._setting("snapshot_dir") or default_snapshot_dir())
        self.worker.request_snapshot(folder)

    # ------------------------------------------------------------------ results
    def on_result(self) -> None:
        result = self.worker.take_result()
        if result is None:
            return
        views = result.views
        self.last_result = result
        self.input_view.set_image(views.frame if views.frame_display is None else views.frame_display, views.frame_size)
        self.input_view.set_rect((views.crop.x, views.crop.y, views.crop.w, views.crop.h))
        self.grid.set_grid(views.grid, GridGeometry(**asdict(views.grid_layout)), views.channel_max,
                           views.channel_mean)  # fmt: skip
        self.grid.set_selected(views.channel)
        self.grid_title.setText(f"{views.layer.label}  ({views.layer.channels} channels; click or arrows to pick)")
        self._show_selected(result)
        note = "" if self.model is None or self.model.trained else "UNTRAINED (random weights)"
        self.predictions.set_predictions([(p.label, p.probability) for p in views.top5], note)
        self.embeddings.offer_frame(views.frame, result.captured_at)
        now = time.perf_counter()
        self.stats.displayed += 1
        self.stats.display_times.append(now)
        self.stats.first_display = self.stats.first_display or now
        self.stats.add_latency(result.sequence, result.captured_at, now)
        self.stats.add_stage_times(views.timings_ms)
        if self.grid.last_paint_ms:
            self.stats.grid_paint_ms.append(self.grid.last_paint_ms)
        self._status_source.setText(result.source)
        self._update_rate_status()

    def _show_selected(self, result: LiveResult) -> None:
        views = result.views
        self.overlay_view.set_image(views.overlay, views.frame_size)
        self.tile_view.set_image(views.channel_tile)
        self.small_view.set_image(views.overlay if self._zoomed else views.channel_tile)
        peak = views.peak
        self.channel_info.setText(
            f"channel {views.channel} of {views.layer.name}\nmax {peak.value:.4g} at cell {peak.cell}\n"
            f"frame x={peak.frame_xy[0]}, y={peak.frame_xy[1]}\nmean {views.channel_mean[views.channel]:.4g}"
        )

    def _update_layer_status(self) -> None:
        row = self.model.find(self.options.layer) if self.model else None
        if row is not None:
            self._status_layer.setText(f"{row[1]}:{self.options.channel}")

    def _show_model_status(self) -> None:
        info = self.model
        if info is None:
            self._status_model.setText("no model")
            return
        state = info.weights if info.trained else "UNTRAINED"
        self._status_model.setText(f"{info.name} [{state}] on {info.device}")

    def _update_rate_status(self) -> None:
        latency = self.stats.latencies_ms[-1] if self.stats.latencies_ms else 0.0
        self._status_rate.setText(
            f"{self.stats.fps():.1f} fps  latency {latency:.0f} ms  dropped {self.slot.dropped}"
            + ("  FROZEN" if self.frozen else "")
        )

    def about_text(self) -> str:
        info = self.model
        model = f"{info.name} [{info.weights}] on {info.device}<br>PyTorch {info.torch_version}, " if info else ""
        return (
            f"<b>livevis {__version__}</b><p>Live deep visualization of PyTorch convolutional networks, in "
            "the spirit of Yosinski et al.'s Deep Visualization Toolbox (2015).</p>"
            f"<p>{model}PyQt {PYQT_VERSION_STR}, Qt {QT_VERSION_STR}</p>"
            "<p>Press H for the keyboard shortcuts.</p>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About livevis", self.about_text())

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def _probe_event_loop(self) -> None:
        now = time.perf_counter()
        self.stats.loop_lateness_ms.append(max(0.0, (now - self._loop_probe_last) * 1000.0 - self.LOOP_PROBE_MS))
        self._loop_probe_last = now

    def stats_dict(self) -> dict:
        return self.stats.as_dict(self.slot, self.worker.processed)

    # ------------------------------------------------------------------ closing
    def _send_display_size(self) -> None:
        """The worker renders the frame and overlay at the sizes they are shown at, and lays the
        grid out in the shape of its pane, so that its tiles come out as large as the pane allows."""
        overlay, frame = self.overlay_view.render_size(), self.input_view.render_size()
        changes = {}
        if (overlay, frame) != (self.options.display_size, self.options.frame_display_size) and min(
            overlay + frame
        ) > 16:
            changes.update(display_size=overlay, frame_display_size=frame)
        if min(self.grid.width(), self.grid.height()) > 16:
            aspect = round(self.grid.width() / self.grid.height(), 2)
            if abs(aspect / self.options.grid_aspect - 1) > 0.05:  # not a new layout for every pixel
                changes.update(grid_aspect=aspect)
        if changes:
            self.update_options(**changes)

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen of another density
            QTimer.singleShot(0, self._send_display_size)
        return super().event(event)

    def closeEvent(self, event) -> None:
        self._loop_probe.stop()
        self.save_settings()
        self.embeddings.shutdown()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop both threads and release the camera; True when both ended in time."""
        self.capture.stop()
        self.worker.stop()
        deadline = time.perf_counter() + timeout_ms / 1000
        ok = self.capture.wait(max(1, int((deadline - time.perf_counter()) * 1000)))
        ok = self.worker.wait(max(1, int((deadline - time.perf_counter()) * 1000))) and ok
        return ok


def _next(values, current):
    values = list(values)
    try:
        return values[(values.index(current) + 1) % len(values)]
    except ValueError:
        return values[0]
