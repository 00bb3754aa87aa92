"""Click-to-repaint on a frozen frame: a click on a tile of the channel grid until the grid, the overlay and
the zoomed channel are painted for the new channel, with AlexNet on the CPU.

On a frozen frame the views are redrawn from the cached forward result, without a model forward; what a
forward of the same frame would have cost is measured alongside for comparison.

    QT_QPA_PLATFORM=offscreen python bench/frozen_browse.py --clicks 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--model", default="alexnet")
    args = parser.parse_args()

    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    from livevis.app.window.main_window import MainWindow
    from livevis.app.window.settings import SettingsStore
    from livevis.assets import SAMPLES_DIR

    app = QApplication.instance() or QApplication(sys.argv[:1])
    folder = Path(tempfile.mkdtemp())
    window = MainWindow(
        source=str(SAMPLES_DIR / "chelsea.jpg"),
        model=args.model,
        weights="none",
        device="cpu",
        settings=SettingsStore(folder / "settings.ini"),
    )
    window.resize(1500, 860)
    window.show()
    grid = window.live.panes["grid"].grid
    painted = {"at": 0.0}
    paint = grid.paintEvent

    def timed_paint(event):
        paint(event)
        painted["at"] = time.perf_counter()

    grid.paintEvent = timed_paint
    shown = {"at": 0.0}
    # connected after the window's own slot: called once the window has applied the result
    window.worker.result_ready.connect(lambda: shown.__setitem__("at", time.perf_counter()))

    def wait_until(condition, timeout=60.0):
        deadline = time.perf_counter() + timeout
        while not condition():
            app.processEvents()
            if time.perf_counter() > deadline:
                raise TimeoutError("no repaint")

    wait_until(lambda: window.last_result is not None and grid.geometry_ is not None)
    # a forward's cost for comparison: the same frame run through the model again, 20 times
    engine = window.worker.visualizer.engine
    frame = window.last_result.views.frame
    forward_ms = []
    for _ in range(20):
        started = time.perf_counter()
        engine.run(frame, [window.last_result.views.layer.path])
        forward_ms.append((time.perf_counter() - started) * 1000)
    window.state.frozen = True
    wait_until(lambda: window.worker.frozen and window.last_result.sequence == window.worker.held_sequence)
    visualizer = window.worker.visualizer
    forwards = visualizer.forwards
    rng = np.random.default_rng(0)
    latencies = []
    for _ in range(args.clicks):
        channel = int(rng.integers(0, grid.geometry_.channels))
        if channel == window.state.channel:
            continue
        x, y, w, h = grid.geometry_.tile_rect(channel)
        point = grid.to_widget(x + w / 2, y + h / 2)
        start = time.perf_counter()
        QTest.mouseClick(grid, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
        wait_until(
            lambda c=channel, t=start: (
                window.last_result.views.channel == c and shown["at"] > t and painted["at"] > shown["at"]
            )
        )
        latencies.append((painted["at"] - start) * 1000)
    report = {
        "model": args.model,
        "device": "cpu",
        "clicks": len(latencies),
        "click_to_repaint_ms_p50": float(np.percentile(latencies, 50)),
        "click_to_repaint_ms_p95": float(np.percentile(latencies, 95)),
        "model_forwards_while_frozen": visualizer.forwards - forwards,
        "preprocess_and_forward_ms_p50": float(np.percentile(forward_ms, 50)),
    }
    window.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
