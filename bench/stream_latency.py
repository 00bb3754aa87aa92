"""How old the frame on screen is, from a network camera: the app reads a stamped MJPEG stream (each frame
carries the time it was sent, as black and white blocks) from a server in another process on 127.0.0.1,
and the stamp is read back from each new frame as the input pane paints it.

Prints the age of the frame shown (p50, p95) against the stream's frame interval, the frames sent, decoded
and shown, and the app's rate. Qt's offscreen platform unless DISPLAY is set.

    python bench/stream_latency.py [--fps 15] [--size 640x480] [--seconds 20] [--model alexnet]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.mjpeg_server import read_stamp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=15.0, help="the stream's frame rate (default 15)")
    parser.add_argument("--size", default="640x480", metavar="WxH")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt6.QtCore import QEvent, QObject, QTimer
    from PyQt6.QtWidgets import QApplication

    from livevis.app.window.main_window import MainWindow
    from livevis.app.window.settings import SettingsStore

    command = [sys.executable, "-m", "tests.app.mjpeg_server", "--fps", str(args.fps), "--size", args.size, "--stamp"]
    server = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    ages_ms: list[float] = []

    class PaintAges(QObject):
        """At each paint of the input pane showing a new frame: now minus the frame's stamp."""

        last = None

        def eventFilter(self, watched, event) -> bool:
            array = watched.image_array()
            if event.type() == QEvent.Type.Paint and array is not None and array is not self.last:
                self.last = array
                now = time.time()
                if measuring:
                    ages_ms.append((now - read_stamp(array, now)) * 1000)
            return False

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(
            source=f"http://127.0.0.1:{port}/video",
            model=args.model,
            weights="none",
            device="cpu",
            settings=SettingsStore(Path(tmp) / "settings.ini"),
        )
        ages = PaintAges()
        window.live.input.image.installEventFilter(ages)
        window.show()
        measuring = False
        warm = 5.0  # the model loads and the first frames warm the caches

        def start_measuring():
            nonlocal measuring
            measuring = True

        QTimer.singleShot(int(warm * 1000), start_measuring)
        QTimer.singleShot(int((warm + args.seconds) * 1000), window.close)
        app.exec()
        stats = window.stats_dict()
    server.stdin.close()
    server.wait(10)
    interval_ms = 1000 / args.fps
    p50, p95 = (float(np.percentile(ages_ms, q)) for q in (50, 95))
    report = {
        "stream_fps": args.fps,
        "size": args.size,
        "model": args.model,
        "frame_interval_ms": interval_ms,
        "shown_age_ms_p50": p50,
        "shown_age_ms_p95": p95,
        "p50_in_frame_intervals": p50 / interval_ms,
        "frames_measured": len(ages_ms),
        "app_fps": stats["fps"],
        "frames_grabbed": stats["frames_captured"],
        "frames_not_shown": stats["frames_dropped"],
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"stream {args.size} at {args.fps:g} fps (a frame every {interval_ms:.1f} ms), {args.model} on the CPU")
    print(f"age of the frame shown: p50 {p50:.1f} ms ({p50 / interval_ms:.2f} frame intervals), p95 {p95:.1f} ms")
    print(
        f"{len(ages_ms)} frames measured; the app at {stats['fps']:.1f} fps; {stats['frames_captured']} frames "
        f"grabbed, {stats['frames_dropped']} of them not shown (most never decoded)"
    )


if __name__ == "__main__":
    main()
