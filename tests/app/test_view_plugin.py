"""A view installed as a plug-in (examples/livevis-edges, through the `livevis.views` entry point) works in
`render` and in the window with no change to livevis; a broken plug-in is left out, and livevis goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "livevis-edges"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example installed by pip, as a user installs it, into a folder of its own (not the environment
    the rest of the suite runs in)."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        cwd=build,
        timeout=300,
    )
    assert (target / "livevis_edges" / "producer.py").is_file()
    return target


def _env(site: Path, tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(site), "QT_QPA_PLATFORM": "offscreen", "LIVEVIS_CACHE": str(tmp_path)}


def livevis(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m livevis ARGS` with the packages of `site` importable, as if installed."""
    command = [sys.executable, "-m", "livevis", *args]
    return subprocess.run(command, env=_env(site, tmp_path), capture_output=True, text=True, timeout=300)


def test_render_draws_the_plug_in_view_and_saves_its_array(installed, tmp_path, chelsea_path):
    out = tmp_path / "out"
    args = ["--layer", "conv2", "--channel", "3", "--view", "edges", "--edges-colormap", "gray", "--save-activations"]
    run = livevis(
        installed, tmp_path, "render", str(chelsea_path), "--model", "lenet", *args, "--json", "--out", str(out)
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert str(out / "edges.png") in report["written"]
    saved = np.load(out / "activations.npz")
    channel = saved["activation"][3].astype(np.float64)
    # the Sobel magnitude by scipy, the map's border repeated outward, against the view's own
    gx = scipy.ndimage.sobel(channel, axis=1, mode="nearest")
    gy = scipy.ndimage.sobel(channel, axis=0, mode="nearest")
    np.testing.assert_allclose(saved["edges"], np.hypot(gx, gy), rtol=1e-4, atol=1e-5)
    assert report["edges_max"] == pytest.approx(float(np.hypot(gx, gy).max()), rel=1e-4)
    edges = cv2.imread(str(out / "edges.png"))
    frame = cv2.imread(str(chelsea_path))
    assert edges.shape == frame.shape and not np.array_equal(edges, frame)
    gray = edges[..., 0].astype(int) - edges[..., 1].astype(int)
    assert np.abs(gray).max() < 60, "--edges-colormap gray draws grey edges (the frame keeps its colours)"


def test_without_the_plug_in_the_view_is_unknown(tmp_path, chelsea_path, capsys):
    from livevis.app.cli import main

    code = main(["render", str(chelsea_path), "--model", "lenet", "--view", "edges", "--out", str(tmp_path)])
    assert code == 2 and "unknown view 'edges'" in capsys.readouterr().err


WINDOW = """
import json, sys
from PyQt6.QtWidgets import QApplication
app = QApplication([])
from livevis.app.window.main_window import MainWindow
from livevis.app.window.settings import SettingsStore
window = MainWindow(source=sys.argv[1], model="lenet", settings=SettingsStore(sys.argv[2]))
window.show()
entries = [action.text() for action in window.live.menu_actions.values()]
window.live.set_open("edges", True)
pane = window.live.panes["edges"]
deadline = __import__("time").monotonic() + 120
while __import__("time").monotonic() < deadline:
    app.processEvents()
    result = window.last_result
    if result is not None and "edges" in result.views.images and pane.image.image_array() is not None:
        break
print(json.dumps({"entries": entries, "views": list(window.live.views()), "title": pane.title_text(),
                  "shown": pane.image.image_array() is not None, "key": "edges_colormap" in window.actions_by_name}))
window.close()
"""


def test_the_window_lists_the_plug_in_pane_and_shows_its_view(installed, tmp_path, chelsea_path):
    run = subprocess.run(
        [sys.executable, "-c", WINDOW, str(chelsea_path), str(tmp_path / "settings.ini")],
        env=_env(installed, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert "Edges" in seen["entries"] and "edges" in seen["views"]
    assert seen["shown"] and seen["title"].startswith("edges of relu2:") and seen["key"]


def test_a_broken_plug_in_is_left_out_with_one_line(tmp_path, chelsea_path):
    site = tmp_path / "site"
    info = site / "broken_view-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-view\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[livevis.views]\nbroken = no_such_module:VIEW\n")
    run = livevis(site, tmp_path, "render", str(chelsea_path), "--model", "lenet", "--out", str(tmp_path / "o"))
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stderr.splitlines() if "broken" in line]
    assert len(said) == 1 and "no_such_module" in said[0] and "not loaded" in said[0]
    assert (tmp_path / "o" / "grid.png").is_file()
