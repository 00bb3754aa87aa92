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


def _env() -> dict:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OPENCV_LOG_LEVEL": "ERROR"}


def test_a_source_url_that_does_not_parse_is_one_line_and_exit_2_before_any_window_opens(tmp_path):
    settings = tmp_path / "settings.ini"
    done = subprocess.run(
        [sys.executable, "-m", "livevis", "--source", "http://[fe80::1/video", "--quit-after", "3"]
        + ["--settings", str(settings)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "the stream URL's IPv6 address does not parse" in done.stderr
    assert "fe80::1/video" not in done.stderr


# Runs the app as its command line does, with a slot and a thread that raise as bugs would (the slot's message
# quoting a stream URL with its password); prints the window's notices once the app has ended.
FAULTS = """
import json, sys, threading
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from livevis.app.cli import main

app = QApplication(sys.argv[:1])

def failing_slot():
    raise RuntimeError("lost rtsp://admin:hunter2#1@cam/stream")

def failing_thread():
    raise ValueError("no frame to decode")

QTimer.singleShot(500, failing_slot)
QTimer.singleShot(500, lambda: threading.Thread(target=failing_thread, name="frame reader").start())
code = main(sys.argv[1:])
notices = [w.notice.text() for w in app.topLevelWidgets() if hasattr(w, "notice")]
print(json.dumps({"code": code, "notices": notices}))
"""


def test_an_exception_escaping_a_slot_or_a_thread_is_reported_in_the_window_and_the_app_goes_on(tmp_path, pan_video):
    settings = tmp_path / "settings.ini"
    done = subprocess.run(
        [sys.executable, "-c", FAULTS, "--source", str(pan_video), "--model", "alexnet", "--weights", "none"]
        + ["--device", "cpu", "--quit-after", "4", "--settings", str(settings)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr  # without a hook, PyQt6 aborts: SIGABRT
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    (notices,) = report["notices"]
    assert "unexpected RuntimeError: lost rtsp://admin:***@cam/stream (the app goes on" in notices
    assert "unexpected ValueError: no frame to decode (the app goes on" in notices
    assert done.stderr.count("Traceback") == 2 and "unexpected error on frame reader" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "format=livevis-settings-1" in settings.read_text(), "settings saved as the close button saves them"


# A network whose forward pass on the live view's worker runs until the test lets it end (a line on stdin), as a
# large model's on a slow CPU runs on after the window has closed.
SLOW_NET = """
import sys

import torch
from PyQt6.QtCore import QThread


class SlowNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if type(QThread.currentThread()).__name__ == "InferenceWorker":
            print("slow forward started", flush=True)
            sys.stdin.readline()
        return self.conv(x)


def build():
    return SlowNet()
"""


def test_a_thread_still_busy_when_the_window_closes_is_waited_for_not_destroyed(tmp_path, pan_video):
    (tmp_path / "slow_net.py").write_text(SLOW_NET)
    stats, settings = tmp_path / "stats.json", tmp_path / "settings.ini"
    app = subprocess.Popen(
        [sys.executable, "-m", "livevis", "--source", str(pan_video), "--model", "slow_net:build"]
        + ["--weights", "none", "--input-size", "64", "--device", "cpu"]
        + ["--stats-json", str(stats), "--settings", str(settings)],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stdout.readline().strip() == "slow forward started", app.stderr.read()
    app.send_signal(signal.SIGTERM)  # closes the window while the worker is inside a forward it cannot cut short
    deadline = time.monotonic() + 60
    while not stats.exists() and time.monotonic() < deadline:  # written once the window has closed
        with pytest.raises(subprocess.TimeoutExpired):  # the process never ends before its worker
            app.wait(timeout=0.1)
    assert stats.exists() and app.poll() is None, "the window closed; the process waits for its busy worker"
    _, errors = app.communicate(input="\n", timeout=120)  # the forward ends
    assert app.returncode == 0, errors  # Qt aborts when a running QThread is destroyed
    assert "QThread" not in errors and "Traceback" not in errors, errors
    assert json.loads(stats.read_text())["shutdown_ms"] < 3000, "the window still closes promptly"
    assert "format=livevis-settings-1" in settings.read_text()
