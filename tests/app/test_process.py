"""The app as a process: a signal closes it as its close button does, and it exits promptly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs the app and says on stdout when the first result is on screen (a condition to wait on).
STARTER = """
import sys
import livevis.app.window.main_window as main_window
shown = main_window.MainWindow.on_result
def on_result(self):
    shown(self)
    if self.last_result is not None and not getattr(self, "announced", False):
        self.announced = True
        print("first result shown", flush=True)
main_window.MainWindow.on_result = on_result
from livevis.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_app_like_its_window_and_the_process_ends_promptly(tmp_path, pan_video, signal_number):
    stats, settings = tmp_path / "stats.json", tmp_path / "settings.ini"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            STARTER,
            "--source",
            str(pan_video),
            "--model",
            "alexnet",
            "--weights",
            "none",
            "--device",
            "cpu",
            "--stats-json",
            str(stats),
            "--settings",
            str(settings),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stdout.readline().strip() == "first result shown", app.stderr.read()
    app.send_signal(signal_number)
    _, errors = app.communicate(timeout=60)
    exited_at = time.time()
    assert app.returncode == 0, errors
    assert "QThread" not in errors and "Traceback" not in errors, errors
    report = json.loads(stats.read_text())
    assert report["frames_displayed"] >= 1 and report["shutdown_ms"] < 2000
    assert "format=livevis-settings-1" in settings.read_text(), "settings saved as the close button saves them"
    assert exited_at - report["closed_at"] < 1.0, "the process ends within a second of the window closing"
