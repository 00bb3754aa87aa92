"""A short MP4 of real MNIST digits moving over a real photo, for the app's window tests and benchmarks.

    python bench/digit_scenes_video.py --out digits.mp4                    # 4 s, 15 fps, 640 x 480
    python bench/digit_scenes_video.py --out digits.mp4 --truth truth.json # and each frame's boxes and labels

The frames come from `models.data.digit_scenes.moving_scenes`: held-out digits (no bundled model trained on them)
on scikit-learn's china.jpg (held out too), gliding and bouncing off the edges; the same seed gives the same video.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from livevis.models.data.digit_scenes import moving_scenes


def write_video(out: Path, seconds: float, fps: float, size: tuple[int, int], seed: int, truth: Path | None) -> int:
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise SystemExit(f"cannot write {out} (OpenCV's mp4v writer)")
    frames = []
    try:
        for scene in moving_scenes(seed, max(1, round(seconds * fps)), size):
            writer.write(scene.image[:, :, ::-1].copy())
            frames.append({"boxes": scene.boxes.tolist(), "labels": scene.labels.tolist()})
    finally:
        writer.release()
    if truth is not None:
        truth.write_text(json.dumps({"categories": "label k is digit k - 1", "frames": frames}))
    return len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("digits.mp4"))
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truth", type=Path, help="also write each frame's boxes and labels (JSON)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    count = write_video(args.out, args.seconds, args.fps, (width, height), args.seed, args.truth)
    print(f"wrote {args.out}: {count} frames of {width} x {height} at {args.fps:g} fps")


if __name__ == "__main__":
    main()
