"""Fixtures for the app's tests: main windows that must end their threads and jobs, a real video."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QCoreApplication, QEvent, QThread, QThreadPool
from PyQt6.QtWidgets import QMessageBox

from livevis.app.window.main_window import MainWindow
from livevis.app.window.settings import SettingsStore
from tests.conftest import write_video

TIMEOUT_MS = 30_000


def _no_modal_dialog(*args, **kwargs):
    pytest.fail(f"a modal dialog was opened: {args[1:3]}")


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """Builds main windows with their own settings file; fails when a modal warning opens, and when a
    thread or a background job outlives its window."""
    monkeypatch.setattr(QMessageBox, "warning", _no_modal_dialog)
    monkeypatch.setattr(QMessageBox, "information", _no_modal_dialog)
    windows: list[MainWindow] = []

    def make(source, settings_file: Path | None = None, first_launch: bool = False, **kwargs) -> MainWindow:
        """`settings_file`: one a window before used (a restart); by default a new one per window, which opens
        on channel 0 as a later launch does unless `first_launch`."""
        settings = SettingsStore(settings_file or tmp_path / f"settings{len(windows)}.ini")
        settings.first_launch = first_launch and settings.first_launch
        settings.set("snapshot_dir", str(tmp_path / "snapshots"))
        kwargs.setdefault("model", "alexnet")
        kwargs.setdefault("weights", "none")
        window = MainWindow(source=None if source is None else str(source), device="cpu", settings=settings, **kwargs)
        qtbot.addWidget(window)
        window.show()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        alive = [thread for thread in window.findChildren(QThread) if not thread.isFinished()]
        assert not alive, f"threads outlived their window: {alive}"
        assert QThreadPool.globalInstance().activeThreadCount() == 0, "a background job outlived its window"
        assert not window.runner.running()
        window.deleteLater()
    # a window's panes and threads hold it through Qt connections until Qt deletes them; then only the
    # collector frees the rest (each window holds its model: hundreds of MB for AlexNet)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    windows.clear()
    gc.collect()


@pytest.fixture
def video(tmp_path, photos) -> Path:
    """A 640x480 video panning over a real photo, 60 frames at 30 fps (loops)."""
    image = np.ascontiguousarray(photos["china"][:, :, :])  # 427 x 640
    image = np.pad(image, ((27, 26), (0, 0), (0, 0)), mode="edge")  # 480 x 640
    frames = [np.roll(image, 8 * i, axis=1) for i in range(60)]
    return write_video(tmp_path / "pan.avi", frames, fps=30)


def wait_result(qtbot, window, condition=lambda r: True, timeout=TIMEOUT_MS):
    qtbot.waitUntil(lambda: window.last_result is not None and condition(window.last_result), timeout=timeout)
    return window.last_result


def wait_frozen(qtbot, window):
    """Until the worker has taken the freeze and the frame it holds is the one shown."""
    qtbot.waitUntil(
        lambda: (
            window.worker.frozen
            and window.last_result is not None
            and window.last_result.sequence == window.worker.held_sequence
        ),
        timeout=TIMEOUT_MS,
    )
