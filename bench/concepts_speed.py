"""Cost of the concepts view: the live pipeline with and without it, against the bare forward, and the
factorisation alone per frame for a few layer sizes.

    python bench/concepts_speed.py [--frames 200] [--concepts 5] [--threads N]

(a) bare: the model's forward alone; (b) live: the Live tab's views (what `livevis bench` times); (c) live +
concepts: the same with the concepts view (the layer factorised each frame, warm-started, colours matched,
drawn on the frame). AlexNet (random weights) on 640x480 synthetic frames, run interleaved so that the
machine's drift hits all three alike; prints the medians of the wall time and of the process's CPU time (the
steadier measure on a shared machine) and their ratios to (a). Then the factorisation alone (ms per frame,
p50) on a real video's frames for AlexNet's conv5 and trained EfficientNet-Lite0's blocks.4 and bn2.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--concepts", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sklearn.datasets import load_sample_image

    from livevis.app.sources.synthetic import Resolution, synthetic_frames
    from livevis.models import Engine, ViewOptions, Visualizer
    from livevis.models.concepts import ConceptTracker, min_shifted
    from livevis.views import live_views

    torch.manual_seed(0)
    engine = Engine.load("alexnet", weights="none", device="cpu")
    frames = synthetic_frames(Resolution(640, 480))
    live = Visualizer(engine, ViewOptions(views=live_views(transformer=False)))
    concepts = Visualizer(
        engine, ViewOptions(views=(*live_views(transformer=False), "concepts"), concept_count=args.concepts)
    )
    x, _ = engine.preprocess(engine.upload(frames[0]))
    runs = {"bare": lambda _f: engine.forward(x), "live": live.process, "live + concepts": concepts.process}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    factorisation: list[float] = []
    for step in range(args.frames + 10):
        frame = frames[step % len(frames)]
        order = list(runs) if step % 2 else list(runs)[::-1]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            views = runs[name](frame)
            if step >= 10:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                if name == "live + concepts":
                    factorisation.append(views.values["concepts_summary"].milliseconds / 1000)
    print(
        f"AlexNet conv5 (256 x 13 x 13), {args.concepts} concepts, {args.frames} frames, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'':18}{'wall ms':>9}{'ratio':>8}{'cpu ms':>9}{'ratio':>8}")
    for name in runs:
        w, c = _median_ms(wall[name]), _median_ms(cpu[name])
        print(f"{name:18}{w:9.2f}{w / _median_ms(wall['bare']):8.3f}{c:9.2f}{c / _median_ms(cpu['bare']):8.3f}")
    print(f"{'factorisation':18}{_median_ms(factorisation):9.2f}  (p50 per frame, within live + concepts)")

    video = load_sample_image("china.jpg")
    pan = [np.ascontiguousarray(video[40:280, 10 * i : 10 * i + 320]) for i in range(24)]
    lite0 = Engine.load("efficientnet_lite0", device="cpu")
    for model, layer in ((engine, "features.10"), (lite0, "blocks.4"), (lite0, "bn2")):
        maps = [min_shifted(model.run(frame, [layer]).activations[layer].numpy())[0] for frame in pan]
        tracker, times = ConceptTracker(), []
        for _ in range(4):  # the video back and forth: warm starts all the way
            for V in maps:
                times.append(tracker.update(V, args.concepts, layer).milliseconds)
            maps.reverse()
        c, n = maps[0].shape
        print(
            f"factorisation alone, {model.name} {layer} ({c} x {n}), K={args.concepts}: "
            f"p50 {statistics.median(times[1:]):.2f} ms, p95 {np.percentile(times[1:], 95):.2f} ms"
        )


if __name__ == "__main__":
    main()
