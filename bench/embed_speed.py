"""Layers-as-embeddings speed: 2,000 MNIST digits through every LeNet layer, a cached rerun, and
placing one new frame into a map.

    python bench/embed_speed.py [--samples 2000] [--layers all|stages]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--layers", choices=("all", "stages"), default="all")
    args = parser.parse_args()
    os.environ["LIVEVIS_CACHE"] = tempfile.mkdtemp(prefix="livevis-bench-")

    from livevis.models import Engine
    from livevis.models.data.datasets import embedding_dataset
    from livevis.models.embeddings.tsne import MapPlacer, activations, embed_dataset

    start = time.perf_counter()
    engine = Engine.load("lenet", device="cpu")
    data, _ = embedding_dataset("mnist", args.samples, 0, 28)
    layers = [layer.path for layer in engine.layers if layer.path != "prob"] if args.layers == "all" else None
    run = embed_dataset(engine, data, "mnist", layers)
    first = time.perf_counter() - start

    start = time.perf_counter()
    engine = Engine.load("lenet", device="cpu")
    data, _ = embedding_dataset("mnist", args.samples, 0, 28)
    embed_dataset(engine, data, "mnist", layers)
    cached = time.perf_counter() - start

    layer_map = next(m for m in run.layers if m.path == "relu3")
    placer = MapPlacer(layer_map)
    place_ms = []
    for image in data.images[:30]:
        t = time.perf_counter()
        flat = activations(engine, image[None], [engine.layer("relu3")])["relu3"]
        placer.place(flat)
        place_ms.append((time.perf_counter() - t) * 1000)
    print(
        json.dumps(
            {
                "samples": args.samples,
                "layers": len(run.layers),
                "first_run_s": first,
                "cached_run_s": cached,
                "place_one_frame_ms_p50": statistics.median(place_ms),
                "place_one_frame_ms_max": max(place_ms),
                "knn_accuracy": {m.name: round(m.knn_accuracy, 4) for m in run.layers},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
