"""The main window: wires the live state, the capture thread, the inference worker, the job runner and
the panes. The GUI thread turns results into images and paints; it runs no torch and no file I/O."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QEvent, QRect, Qt, QTimer
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from livevis import views as declared
from livevis.app.live.capture import CaptureThread
from livevis.app.live.jobs import JobRunner
from livevis.app.live.model_loader import ModelInfo, ModelLoader
from livevis.app.live.recording import RecordingControl
from livevis.app.live.slot import LatestFrameSlot
from livevis.app.live.stats import LiveStats
from livevis.app.live.threads import keep_until_finished
from livevis.app.live.worker import InferenceWorker, LiveResult
from livevis.app.panes.base import PaneServices
from livevis.app.panes.edits import edits_for
from livevis.app.sources.draw import DrawSource
from livevis.app.tabs.embeddings import EmbeddingsTab
from livevis.app.tabs.live import LiveTab
from livevis.app.window.about import about_text
from livevis.app.window.actions import MENUS, build_actions, help_rows
from livevis.app.window.model_menu import ModelMenu
from livevis.app.window.option_controls import OptionControls
from livevis.app.window.settings import SettingsStore
from livevis.app.window.sources_menu import SourceChooser
from livevis.app.window.status_line import StatusLine
from livevis.models import ViewOptions, model_names
from livevis.state import CHANNEL_BOOSTS, COLORMAPS, GAMMA_BOOSTS
from livevis.views import Option
from livevis.widgets.help_overlay import HelpOverlay
from livevis.widgets.notice_banner import NoticeBanner

FIRST_LAUNCH_SHARE = 0.9
"""The share of the screen's free width and height a first launch's window takes."""


def first_launch_geometry(available: QRect) -> QRect:
    """Centred in `available`, FIRST_LAUNCH_SHARE of its width and height."""
    width, height = round(available.width() * FIRST_LAUNCH_SHARE), round(available.height() * FIRST_LAUNCH_SHARE)
    return QRect(
        available.x() + (available.width() - width) // 2,
        available.y() + (available.height() - height) // 2,
        width,
        height,
    )


def _step(name: str, choices: tuple):
    """The next value of a drawing option, as its key steps it."""
    return Option(name, choices[0], choices=choices).next


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
        settings: SettingsStore | None = None,
        custom: dict | None = None,
    ):
        super().__init__()
        self.setWindowTitle("livevis")
        self.settings = settings or SettingsStore()
        self.state = self.settings.restored_state(layer)
        self.stats = LiveStats()
        self.model: ModelInfo | None = None
        self.last_result: LiveResult | None = None
        self.runner = JobRunner(self)
        self.loader = ModelLoader(self.runner, self)
        self.slot = LatestFrameSlot()
        self.capture = CaptureThread(self.slot, self)
        self.worker = InferenceWorker(self.slot, self)
        self._display: dict = {}
        self._sync_pending = False
        self._choose_first_channel = self.settings.first_launch and layer is None
        """A first launch opens on the channel most active on the first frame (`_first_channel`)."""
        self._build(device)
        self.capture.start()
        self.worker.start()
        first_model = model or self.settings.get("model") or None
        # a model or weights file that fails gives way to the default model: the window never starts empty
        self._fallback_pending = first_model is not None or str(weights) != "default"
        self.loader.load(first_model, weights, device, **(custom or {}))
        self.status.show_model(None, "loading model...")
        if source is not None:
            self.sources.open(source)
        else:
            self.sources.resume(self.settings.get("source"))
        if self.settings.get("geometry") is None or not self.restoreGeometry(self.settings.get("geometry")):
            self.fit_to_screen()
        if self.settings.get("layout") is not None and not self.live.restore_layout(self.settings.get("layout")):
            self.status.message("the saved pane layout was made for other panes: the default layout is used", 8000)
        if self.settings.reset:
            self.show_notice(
                f"Settings reset to their defaults (bad values in {self.settings.file_name}): "
                + ", ".join(self.settings.reset)
            )
        self._loop_probe = QTimer(self)
        self._loop_probe.setInterval(self.LOOP_PROBE_MS)
        self._loop_probe.timeout.connect(self._probe_event_loop)
        self._loop_probe_last = time.perf_counter()
        self._loop_probe.start()

    # ------------------------------------------------------------------ building
    def _build(self, device: str) -> None:
        services = PaneServices(self.runner, self._engine, self.status_message, self.show_notice, self.open_source)
        self.live = LiveTab(self.state, services)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live, "Live")
        self.view_tabs = {
            name: declared.resolve(spec.tab)(self.tabs, self.state, self.live, self.schedule_sync)
            for name, spec in declared.all_views().items()
            if spec.tab
        }
        """The views shown in a tab of their own (the network), by view name."""
        self.embeddings = EmbeddingsTab(self.runner)
        self.tabs.addTab(self.embeddings, "Embeddings")
        self.notice = NoticeBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.notice)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.help_overlay = HelpOverlay(self.tabs)
        self.help_overlay.set_shortcuts(help_rows())
        self.status = StatusLine(self.statusBar())
        menus = {name: self.menuBar().addMenu(f"&{name}") for name in MENUS}
        toolbar = QToolBar("View options")
        toolbar.setObjectName("view-options")
        self.addToolBar(toolbar)
        self.toolbar = toolbar
        self.draw = DrawSource(self.live.drawing_pane(), self.slot, self.capture.close_source)
        self.sources = SourceChooser(self, self.capture, menus["File"], self.settings, self.draw)
        self.actions_by_name = build_actions(self, menus, toolbar)
        toolbar.addSeparator()
        self.controls = OptionControls(
            toolbar, menus["View"], self.state, model_names(), lambda name: self.model_menu.choose(name)
        )
        self.live.add_menu_entries(menus["View"].addMenu("Panes"))
        self.actions_by_name["leave_presentation"].setEnabled(False)
        self.model_menu = ModelMenu(self, menus["Model"], self.controls.model, self.loader, self.status, device)
        self.setAcceptDrops(True)
        self._connect()

    def fit_to_screen(self) -> None:
        """A first launch: the window takes most of the screen it opens on, centred."""
        screen = self.screen() or QApplication.primaryScreen()
        self.setGeometry(first_launch_geometry(screen.availableGeometry()))

    def _connect(self) -> None:
        state = self.state
        state.events.all.connect(self.schedule_sync)
        state.events.layer.connect(self._show_layer_status)
        state.events.channel.connect(self._show_layer_status)
        self.live.display_size_changed.connect(lambda: QTimer.singleShot(0, self._update_display_sizes))
        self.live.views_changed.connect(self.schedule_sync)
        self.live.frame_clicked.connect(lambda x, y: self.worker.request_ranking((x, y)))
        self.worker.units_ranked.connect(lambda ranked: self.live.show_units(*ranked))
        self.worker.result_ready.connect(self.on_result)
        self.worker.error.connect(self.show_error)
        self.worker.snapshot_saved.connect(lambda path: self.status.message(f"snapshot saved in {path}", 8000))
        self.loader.ready.connect(self.on_model_ready)
        self.loader.failed.connect(self.on_model_failed)
        self.runner.job_started.connect(self.status.follow_job)
        self.capture.error.connect(self.show_error)
        self.capture.status.connect(lambda text: self.status.message(text, 5000))
        self.capture.source_changed.connect(self.status.source.setText)
        self.capture.stale.connect(self.live.set_stale)
        self.units = self.live.panes["unit"].controller
        self.live.docks["unit"].visibilityChanged.connect(lambda visible: visible and self.units.schedule_refresh())
        self.recording = RecordingControl(self)
        for what in self.live.left_out:
            self.show_notice(f"left out: {what}")

    # ------------------------------------------------------------------ state -> worker
    def schedule_sync(self, *_) -> None:
        """Any change of the state reaches the worker once, after the whole change is made."""
        if not self._sync_pending:
            self._sync_pending = True
            QTimer.singleShot(0, self._sync_worker)

    def request(self) -> ViewOptions:
        """The render request the live state, the open panes and the tabs make now."""
        s = self.state
        views, extra = list(self.live.views()), {}
        for name, tab in self.view_tabs.items():
            asked = tab.request()
            if asked is not None:
                views.append(name)
                extra.update(asked)
        return ViewOptions(
            layer=s.layer or None, channel=s.channel, views=tuple(views), **s.view_options(), **self._display, **extra
        )

    def _sync_worker(self) -> None:
        self._sync_pending = False
        try:
            self.worker.set_request(self.request(), self.state.frozen)
        except ValueError as exc:
            self.show_error(str(exc))

    def _update_display_sizes(self) -> None:
        """The worker draws pictures at the sizes the panes show them at (the frame, the overlay), and lays
        the grid out in the shape of its pane, so that its tiles come out as large as the pane allows."""
        sizes = self.live.request()
        if any(self._display.get(k) != v for k, v in sizes.items()):
            self._display.update(sizes)
            self.schedule_sync()

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen of another density
            QTimer.singleShot(0, self._update_display_sizes)
        return super().event(event)

    # ------------------------------------------------------------------ actions (see actions.py)
    def step_layer(self, delta: int) -> None:
        if self.model is not None:
            paths = [row.path for row in self.model.layers]
            index = paths.index(self.state.layer) if self.state.layer in paths else 0
            self.state.update(layer=paths[(index + delta) % len(paths)], channel=0)

    def open_source(self, spec: str | list[str] | None) -> None:
        self.sources.open(spec)

    def toggle_freeze(self) -> None:
        self.state.frozen = not self.state.frozen
        self.status.show_rate(self.stats, self.slot.dropped, self.state.frozen, still=False)
        self.status.message(
            "frozen: browse layers and channels; space to resume" if self.state.frozen else "live", 4000
        )

    def choose_folder_to_mine(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of images to mine for the layer's top images")
        if folder:
            self.live.set_open("unit", True)
            self.units.mine(folder)

    def snapshot_folder(self) -> Path:
        return self.settings.snapshot_folder()

    def snapshot(self) -> None:
        self.worker.request_snapshot(self.snapshot_folder())

    def cycle_channel_boost(self):
        self.state.boost = _step("boost", CHANNEL_BOOSTS)(self.state.boost)

    def cycle_gamma(self):
        self.state.gamma = _step("gamma", GAMMA_BOOSTS)(self.state.gamma)

    def cycle_colormap(self):
        self.state.colormap = _step("colormap", COLORMAPS)(self.state.colormap)

    def optimise_unit(self) -> None:
        self.live.set_open("unit", True)
        self.units.optimise()

    def reset_layout(self) -> None:
        self.set_presentation(False)
        self.live.reset_layout()

    def toggle_presentation(self) -> None:
        self.set_presentation(not self.live.presenting)

    def set_presentation(self, on: bool) -> None:
        """Full screen with only the grid and the frame with the selected channel (and backprop while it is
        on), large; every key still works. Off: the window and the layout as they were."""
        if on == self.live.presenting:
            return
        chrome = (self.menuBar(), self.toolbar, self.statusBar(), self.tabs.tabBar())
        if on:
            self._before_presentation = (self.windowState(), self.geometry())
            self.tabs.setCurrentWidget(self.live)
            self.live.present(True)
            for widget in chrome:
                widget.hide()
            self.showFullScreen()
            self.setGeometry(self.screen().geometry())  # where no window manager does it (a bare X server)
        else:
            for widget in chrome:
                widget.show()
            state, geometry = self._before_presentation
            self.setWindowState(state)
            if not state & (Qt.WindowState.WindowMaximized | Qt.WindowState.WindowFullScreen):
                self.setGeometry(geometry)
            self.live.present(False)  # in the window's own size again: the panes get their sizes back
        self.actions_by_name["presentation"].setChecked(on)
        self.actions_by_name["leave_presentation"].setEnabled(on)

    def about_text(self) -> str:
        return about_text(self.model)

    def show_about(self) -> None:
        QMessageBox.about(self, "About livevis", self.about_text())

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.sources.dropped(event)

    # ------------------------------------------------------------------ model
    def on_model_ready(self, visualizer, info: ModelInfo) -> None:
        self.stats.model_ready_at = time.perf_counter()
        self.model = info
        self._fallback_pending = False
        row = info.find(self.state.layer) or info.find(info.default_layer)
        channel = self.state.channel if self.state.channel < row.shape[0] else 0
        edits, dropped = edits_for(info, self.state.edits)
        self.live.set_model(info)
        self.state.update(model=info.name, layer=row.path, channel=channel, edits=edits)
        if dropped:
            self.show_notice(f"edits dropped, their layers are not in {info.name} as they were: " + "; ".join(dropped))
        self.worker.adopt(visualizer, self.request())
        self.model_menu.show_loaded(info)
        for tab in self.view_tabs.values():
            tab.set_model(info)
        self.draw.fit_model(info)
        if info.notice:
            self.show_notice(info.notice)

    def on_model_failed(self, message: str) -> None:
        if self.runner.closed:  # a load cancelled by closing the window
            return
        if self.model is None and self._fallback_pending:
            self._fallback_pending = False
            self.loader.load(None, "default", self.model_menu.device)
            message += ". Loading the default model instead."
        elif self.model is not None:
            message += f". {self.model.name} stays loaded."
        self.status.show_model(self.model)
        self.show_notice(message)

    # ------------------------------------------------------------------ results
    def on_result(self) -> None:
        result = self.worker.take_result()
        if result is None:
            return
        self.last_result = result
        if self._choose_first_channel and self._first_channel(result):
            return  # the frame is drawn again on that channel
        self.live.show_result(result, self.model)
        for tab in self.view_tabs.values():
            tab.show_result(result)
        self.recording.offer(result)
        self.embeddings.offer_frame(result.views.frame, result.captured_at)
        now = time.perf_counter()
        self.stats.add_display(result.sequence, result.captured_at, now, result.views.timings_ms, self.live.paint_ms)
        self.status.show_rate(
            self.stats, self.slot.dropped, self.state.frozen, still=result.still, recording_s=self.recording.seconds()
        )

    def _engine(self):
        return self.worker.visualizer.engine if self.worker.visualizer is not None else None

    def _first_channel(self, result: LiveResult) -> bool:
        """On a first launch, the channel whose peak stands furthest above its own mean on the first frame: a
        unit that fires at something in it (on the cat, one at its eye), not a pale blob at the frame's edge
        or a unit on everywhere. True where that selected another channel."""
        values = result.views.values
        if self.model is None or "channel_max" not in values or result.views.layer.path != self.state.layer:
            return False
        self._choose_first_channel = False
        channel = int(np.argmax(np.asarray(values["channel_max"]) - np.asarray(values["channel_mean"])))
        if channel == self.state.channel:
            return False
        self.state.channel = channel
        return True

    def _show_layer_status(self, *_) -> None:
        row = self.model.find(self.state.layer) if self.model else None
        if row is not None:
            self.status.layer.setText(f"{row.name}:{self.state.channel}")

    def status_message(self, text: str, milliseconds: int) -> None:
        self.status.message(text, milliseconds)

    def show_error(self, message: str) -> None:
        self.status.message(message, 10000)

    def show_notice(self, message: str) -> None:
        """A message that stays until clicked away, and in the status bar for a while."""
        self.notice.add(message)
        self.status.message(message, 15000)

    def _probe_event_loop(self) -> None:
        now = time.perf_counter()
        self.stats.loop_lateness_ms.append(max(0.0, (now - self._loop_probe_last) * 1000.0 - self.LOOP_PROBE_MS))
        self._loop_probe_last = now

    def stats_dict(self) -> dict:
        stats = self.stats.as_dict(self.slot, self.worker.processed, self.capture.reconnects)
        stats["model"] = self.model.name if self.model is not None else None
        boxes = self.last_result.views.values.get("boxes") if self.last_result is not None else None
        if boxes is not None:
            stats["detections"] = len(boxes)
        return stats

    # ------------------------------------------------------------------ closing
    def save_settings(self) -> None:
        self.set_presentation(False)  # the window and layout as they were: a next start is not full screen
        s = self.settings
        s.keep_state(self.state)
        if self.model is not None and self.model.name in model_names():
            # a user's own model needs its command-line description (input size, mean, std) to load
            s.set("model", self.model.name)
        if self.sources.last_files is not None:
            s.set("source", self.sources.last_files)
        s.set("mirror", self.sources.mirror.isChecked())
        s.set("geometry", self.saveGeometry())
        s.set("layout", self.live.save_layout())
        s.save()

    def closeEvent(self, event) -> None:
        self._loop_probe.stop()
        self.save_settings()
        started = time.perf_counter()
        self.embeddings.shutdown()
        self.shutdown()
        self.stats.shutdown_ms = (time.perf_counter() - started) * 1000
        self.stats.closed_at = time.time()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = 2000, jobs_timeout_ms: int = 15000) -> bool:
        """Stop both threads, cancel background jobs and release the camera; True when all ended in time.

        A job stops at its next progress report; one inside a step that cannot be interrupted (building a
        large model) is waited for, longer."""
        self.capture.stop()
        self.worker.stop()
        self.recording.shutdown()
        deadline = time.perf_counter() + timeout_ms / 1000
        ok = self.capture.wait(max(1, int((deadline - time.perf_counter()) * 1000)))
        ok = self.worker.wait(max(1, int((deadline - time.perf_counter()) * 1000))) and ok
        for thread in (self.capture, self.worker):
            keep_until_finished(thread)  # one still running must not die with the window (Qt would abort)
        ok = self.runner.shutdown(jobs_timeout_ms) and ok
        # psygnal keeps every evented instance's signals in a class-wide map, and the panes' slots hold the
        # window: connected, a closed window (and its model) could never be freed
        self.state.events.disconnect()
        return ok
