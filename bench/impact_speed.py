"""The impact ranking of a frame (every channel's first-order estimate plus the measured change of the strongest
20, in one pass) against the bare forward of the same model on the same input, timed in turn, the median of
the pairs.

    python bench/impact_speed.py --model alexnet --layer conv5 --frames 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def measure(model: str, layer: str, frames: int, weights: str = "none") -> dict:
    from livevis.app.sources.synthetic import Resolution, synthetic_frames
    from livevis.models import Engine
    from livevis.models.interventions.impact import MEASURED, channel_impact

    engine = Engine.load(model, weights, device="cpu")
    info = engine.layer(layer)
    pictures = synthetic_frames(Resolution(640, 480), count=8)
    inputs = [engine.run(picture, []).input for picture in pictures]
    ratios, impact_ms, bare_ms = [], [], []
    for step in range(frames + 3):
        x = inputs[step % len(inputs)]
        start = time.perf_counter()
        channel_impact(engine, x, info)
        middle = time.perf_counter()
        engine.forward(x)
        end = time.perf_counter()
        if step >= 3:  # warm-up
            impact_ms.append((middle - start) * 1000)
            bare_ms.append((end - middle) * 1000)
            ratios.append((middle - start) / (end - middle))
    return {
        "model": model,
        "layer": info.path,
        "measured_channels": MEASURED,
        "frames": frames,
        "torch_threads": torch.get_num_threads(),
        "impact_ms_p50": statistics.median(impact_ms),
        "bare_forward_ms_p50": statistics.median(bare_ms),
        "ratio_p50": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--layer", default="conv5")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.layer, args.frames), indent=1))


if __name__ == "__main__":
    main()
