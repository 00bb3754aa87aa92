"""The app in a real X11 window on a virtual screen, as a user would start it, with a screenshot.

`make test` installs Xvfb and ImageMagick where they are missing; without them this test fails
rather than hide behind a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QRect

from livevis.app.window.main_window import first_launch_geometry
from tests.conftest import write_video

ROOT = Path(__file__).resolve().parents[2]
IMPORT = "/usr/bin/import"  # ImageMagick's screenshot tool (a stand-in may shadow it on PATH)


@pytest.fixture
def virtual_screen():
    xvfb = shutil.which("Xvfb")
    assert xvfb and os.path.exists(IMPORT), "run `make test`: it installs xvfb and imagemagick"
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display and writes its number to the pipe once it accepts clients
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "x".join(map(str, SCREEN)) + "x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        number = ready.readline().strip()
    assert number.isdigit() and server.poll() is None, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(10)


def screenshot(display: str, path: Path) -> np.ndarray:
    subprocess.run([IMPORT, "-display", display, "-window", "root", str(path)], check=True, timeout=30)
    return cv2.imread(str(path))


SCREEN = (1600, 1000)
WINDOW = first_launch_geometry(QRect(0, 0, *SCREEN)).getRect()
"""Where a first launch puts the window on that screen: 90% of it, centred."""


def window_area(screen: np.ndarray) -> np.ndarray:
    x, y, w, h = WINDOW
    return screen[y : y + h, x : x + w]


def window_is_drawn(screen: np.ndarray | None) -> bool:
    """The window shows pictures and widgets, not a blank or half-built frame."""
    if screen is None:
        return False
    window = window_area(screen)
    return window.std() > 30 and (window.max(axis=2) > 12).mean() > 0.8 and (window.max(axis=2) > 60).mean() > 0.3


def test_the_app_runs_in_a_real_window(virtual_screen, tmp_path, photos):
    image = cv2.resize(photos["chelsea"], (640, 426))
    image = np.pad(image, ((27, 27), (0, 0), (0, 0)), mode="edge")
    video = write_video(tmp_path / "cat.avi", [np.roll(image, 6 * i, axis=1) for i in range(40)], fps=20)
    stats_path = tmp_path / "stats.json"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["DISPLAY"] = virtual_screen
    command = [
        sys.executable,
        "-m",
        "livevis",
        "--source",
        str(video),
        "--model",
        "alexnet",
        "--weights",
        "none",
        "--device",
        "cpu",
        "--quit-after",
        "10",
        "--stats-json",
        str(stats_path),
        "--settings",
        str(tmp_path / "settings.ini"),
    ]
    app = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shot = tmp_path / "screen.png"
    # screenshots until the window shows its views (each one takes a few hundred milliseconds), while it runs
    screen = screenshot(virtual_screen, shot)
    while not window_is_drawn(screen) and app.poll() is None:
        screen = screenshot(virtual_screen, shot)
    output, _ = app.communicate(timeout=60)
    assert app.returncode == 0, output
    assert "Traceback" not in output

    stats = json.loads(stats_path.read_text())
    assert stats["frames_processed"] > 10 and stats["frames_displayed"] > 10
    # every frame captured was processed, dropped, or is the one still on its way when the app quit
    unaccounted = stats["frames_captured"] - stats["frames_processed"] - stats["frames_dropped"]
    assert 0 <= unaccounted <= 2
    assert 0 < stats["latency_ms_p50"] <= stats["latency_ms_p95"]
    stages = stats["worker_stage_ms_p50"]
    assert set(stages) == {"preprocess", "forward", "render", "copy"} and stages["forward"] > stages["copy"] > 0

    assert screen is not None and screen.shape == (SCREEN[1], SCREEN[0], 3)
    window = window_area(screen)
    outside = screen.copy()
    x, y, w, h = WINDOW
    outside[y : y + h, x : x + w] = 0
    edges_drawn = window[:, [0, -1]].max() > 12 and window[[0, -1]].max() > 12
    assert outside.max() == 0 and edges_drawn, "sized and placed as a first launch: 90% of the screen, centred"
    assert window.std() > 30, "the screenshot is blank"
    drawn = (window.max(axis=2) > 12).mean()  # the screen outside the window is black, the views dark grey
    assert drawn > 0.8, f"only {drawn:.0%} of the window area is drawn"
    bright = (window.max(axis=2) > 60).mean()
    assert bright > 0.3, f"only {bright:.0%} of the window shows pictures or widgets"
