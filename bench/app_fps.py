"""The desktop app's throughput against the bare model forward, on one machine in one run.

Writes a 640x480 video of a real photo at a high frame rate (so the source never limits), runs
`livevis` on it for a while with --stats-json, with `livevis bench` on the same video before and after
each run for the headless pipeline's and the bare forward's rates, and prints the app's processed fps over
each (the median of `--repeats` runs), GUI event-loop latency, grid paint times and both sides' stage
times. Uses a real window when DISPLAY is set (e.g. under Xvfb), Qt's offscreen platform otherwise.

    python bench/app_fps.py [--model alexnet] [--seconds 20] [--repeats 3] [--backprop guided]
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


def run_app(video: Path, folder: Path, args, env: dict) -> dict:
    """The app on the video for `args.seconds`: its --stats-json."""
    stats_path = folder / "stats.json"
    # the app starts with the pane as the settings say
    (folder / "settings.ini").write_text(f"[General]\nformat=livevis-settings-1\nbackprop={args.backprop}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "livevis",
            "--source",
            str(video),
            "--model",
            args.model,
            "--weights",
            "none",
            "--device",
            "cpu",
            "--quit-after",
            str(args.seconds),
            "--stats-json",
            str(stats_path),
            "--settings",
            str(folder / "settings.ini"),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return json.loads(stats_path.read_text())


def run_headless(video: Path, args) -> dict:
    """`livevis bench` on the same video: the headless pipeline's and the bare forward's rates."""
    return json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "livevis",
                "bench",
                "--model",
                args.model,
                "--weights",
                "none",
                "--device",
                "cpu",
                "--source",
                str(video),
                "--frames",
                "200",
                "--backprop",
                args.backprop,
                "--json",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--backprop",
        default="off",
        help="with the backprop pane on: grad, deconv, guided, gradcam; the bare rate is then the forward + backward's",
    )
    parser.add_argument("--repeats", type=int, default=3, help="app runs, each between two headless runs")
    args = parser.parse_args()
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = write_video(tmp / "cat.avi")
        headless, apps = [run_headless(video, args)], []
        for _ in range(args.repeats):
            apps.append(run_app(video, tmp, args, env))
            headless.append(run_headless(video, args))
    # each app run against the mean of the headless runs just before and after it: a machine that drifts
    # over the minute a pair takes moves both alike
    pairs = list(zip(headless, headless[1:], strict=False))
    pipeline = [(before["fps"] + after["fps"]) / 2 for before, after in pairs]
    bare = [(before["bare_fps"] + after["bare_fps"]) / 2 for before, after in pairs]
    over_pipeline = [app["fps"] / rate for app, rate in zip(apps, pipeline, strict=True)]
    middle = sorted(range(len(apps)), key=over_pipeline.__getitem__)[len(apps) // 2]
    stats, bench = apps[middle], headless[middle + 1]
    report = {
        "platform": "xcb" if env.get("DISPLAY") else "offscreen",
        "model": args.model,
        "backprop": args.backprop,
        "app_over_pipeline": over_pipeline[middle],
        "app_over_pipeline_runs": [round(r, 3) for r in over_pipeline],
        "app_over_bare": stats["fps"] / bare[middle],
        "app_fps_runs": [round(app["fps"], 1) for app in apps],
        "pipeline_fps_headless_runs": [round(h["fps"], 1) for h in headless],
        "bare_forward_fps_runs": [round(h["bare_fps"], 1) for h in headless],
        # the rest from the median run
        "app_fps": stats["fps"],
        "app_frames_processed": stats["frames_processed"],
        "app_frames_dropped": stats["frames_dropped"],
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
