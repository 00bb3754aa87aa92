"""The desktop app's throughput against the bare model forward, on one machine in one run.

Writes a 640x480 video of a real photo at a high frame rate (so the source never limits), runs
`livevis` on it for a while with --stats-json, then `livevis bench` on the same video for the headless
pipeline's and the bare forward's rates, and prints processed fps, its ratios to both, GUI event-loop
latency and grid paint times. Uses a real window when DISPLAY is set (e.g. under Xvfb), Qt's offscreen
platform otherwise.

    python bench/app_fps.py [--model alexnet] [--seconds 20] [--backprop guided]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_video(path: Path, seconds: float = 2.0, fps: int = 200) -> Path:
    from skimage import data

    image = cv2.resize(data.chelsea(), (720, 480))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(int(seconds * fps)):
        writer.write(cv2.cvtColor(np.ascontiguousarray(image[:, i % 80 : i % 80 + 640]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backprop", default="off", help="with the backprop pane on: grad, deconv, guided, gradcam; "
                        "the bare rate is then the forward + backward's")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = write_video(tmp / "cat.avi")
        env = dict(os.environ)
        if not env.get("DISPLAY"):
            env["QT_QPA_PLATFORM"] = "offscreen"
        stats_path = tmp / "stats.json"
        # the app starts with the pane as the settings say
        (tmp / "settings.ini").write_text(f"[General]\nformat=livevis-settings-1\nbackprop={args.backprop}\n")
        subprocess.run(
            [sys.executable, "-m", "livevis", "--source", str(video), "--model", args.model, "--weights", "none",
             "--device", "cpu", "--quit-after", str(args.seconds), "--stats-json", str(stats_path),
             "--settings", str(tmp / "settings.ini")],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        stats = json.loads(stats_path.read_text())
        bench = json.loads(
            subprocess.run(
                [sys.executable, "-m", "livevis", "bench", "--model", args.model, "--weights", "none",
                 "--device", "cpu", "--source", str(video), "--frames", "200", "--backprop", args.backprop, "--json"],
                cwd=ROOT, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
    # the first seconds include loading the model; count from the first displayed frame on
    report = {
        "platform": "xcb" if env.get("DISPLAY") else "offscreen",
        "model": args.model,
        "backprop": args.backprop,
        "app_fps": stats["fps"],
        "app_frames_processed": stats["frames_processed"],
        "app_frames_dropped": stats["frames_dropped"],
        "bare_forward_fps": bench["bare_fps"],
        "pipeline_fps_headless": bench["fps"],
        "app_over_bare": stats["fps"] / bench["bare_fps"],
        "app_over_pipeline": stats["fps"] / bench["fps"],
        "event_loop_latency_ms_p95": stats["event_loop_latency_ms_p95"],
        "grid_paint_ms_p50": stats["grid_paint_ms_p50"],
        "grid_paint_ms_p95": stats["grid_paint_ms_p95"],
        "latency_ms_p50": stats["latency_ms_p50"],
        "latency_ms_p95": stats["latency_ms_p95"],
        "app_worker_stage_ms_p50": stats["worker_stage_ms_p50"],
        "headless_stage_ms_p50": {stage: v["p50"] for stage, v in bench["stages_ms"].items()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
