"""Unit-atlas mining speed: mined images/s against the bare batched forward of the same model on the
same preprocessed batches, and peak memory for a folder of 200 images against one of 2,000.

    python bench/mine_speed.py [--model alexnet] [--layer conv5] [--sizes 200,2000] [--workers 2] [--device cuda]
    python bench/mine_speed.py --sizes 204 --sides 300,1400     # photos as cameras and the web have them

The folders are JPEGs made from real photos (scikit-image, scikit-learn) with random crops and flips, with
`--sides` each scaled to a longer side drawn from that range. Each size is mined in a fresh process, so its
peak memory (max RSS) is its own. A folder of a few hundred images mines in seconds, where this machine's
speed drifts by a fifth: mining and the bare forward are timed in turn `--repeats` times and the ratio is the
median of the pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_folder(folder: Path, count: int, seed: int = 0, sides: tuple[int, int] | None = None) -> Path:
    import cv2
    import numpy as np
    from skimage import data
    from sklearn.datasets import load_sample_image

    photos = [
        data.chelsea(),
        data.coffee(),
        data.astronaut(),
        data.rocket(),
        load_sample_image("china.jpg"),
        load_sample_image("flower.jpg"),
    ]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(rng.integers(h // 2, h + 1)), int(rng.integers(w // 2, w + 1))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = photo[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if sides is not None:
            scale = int(rng.integers(sides[0], sides[1] + 1)) / max(ch, cw)
            size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        sub = folder / f"part{i % 10}"
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"img{i:05d}.jpg"), cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
    return folder


def measure(
    folder: Path,
    model: str,
    layer: str,
    workers: int,
    batch_size: int,
    baseline_images: int,
    device: str = "cpu",
    repeats: int = 1,
) -> dict:
    """Mine the folder and time the bare forward on its preprocessed batches, in turn `repeats` times."""
    import statistics

    import torch

    from livevis.models import Engine
    from livevis.models.atlas.mining import crop_and_resize, list_folder, mine, read_with_opencv

    torch.manual_seed(0)
    engine = Engine.load(model, weights="none", device=device, progress=False)
    synchronise = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    mine(
        engine, folder, layer, top=9, batch_size=batch_size, workers=workers, use_cache=False, checkpoint_every=10**9
    )  # warm-up: worker server, receptive fields

    items = list_folder(folder).items[:baseline_images]
    frames = torch.stack(
        [crop_and_resize(read_with_opencv(folder / item.path), engine.spec.input_size)[0] for item in items]
    )
    batches = [
        engine.preprocess(frames[i : i + batch_size].to(engine.device))[0] for i in range(0, len(frames), batch_size)
    ]
    engine.forward(batches[0])
    synchronise()
    mined_rates, bare_rates = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        (atlas,) = mine(engine, folder, layer, top=9, batch_size=batch_size, workers=workers, use_cache=False)
        mined_rates.append(atlas.images / (time.perf_counter() - start))
        start = time.perf_counter()
        for x in batches:
            engine.forward(x)
        synchronise()
        bare_rates.append(len(frames) / (time.perf_counter() - start))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratios = [m / b for m, b in zip(mined_rates, bare_rates, strict=True)]
    return {
        "images": atlas.images,
        "mined_images_per_s": round(statistics.median(mined_rates), 1),
        "bare_forward_images_per_s": round(statistics.median(bare_rates), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "peak_rss_mb": round(peak_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--layer", default="conv5")
    parser.add_argument("--sizes", default="200,2000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--baseline-images", type=int, default=512)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    parser.add_argument("--folder", type=Path, help="mine this folder (of real photos) instead of generated ones")
    parser.add_argument("--sides", help="MIN,MAX: scale each generated photo to a longer side in this range")
    parser.add_argument("--repeats", type=int, default=5, help="mine and time the bare forward in turn N times")
    parser.add_argument("--measure", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(
            json.dumps(
                measure(
                    Path(args.measure),
                    args.model,
                    args.layer,
                    args.workers,
                    args.batch_size,
                    args.baseline_images,
                    args.device,
                    args.repeats,
                )
            )
        )
        return
    root = Path(tempfile.mkdtemp(prefix="livevis-mine-bench-"))
    env = {**os.environ, "LIVEVIS_CACHE": str(root / "cache")}
    results = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    sides = tuple(int(s) for s in args.sides.split(",")) if args.sides else None
    folders = (
        {"given": args.folder}
        if args.folder
        else {size: make_folder(root / f"photos{size}", size, sides=sides) for size in sizes}
    )
    for size, folder in folders.items():
        command = [
            sys.executable,
            __file__,
            "--measure",
            str(folder),
            "--model",
            args.model,
            "--layer",
            args.layer,
            "--workers",
            str(args.workers),
            "--batch-size",
            str(args.batch_size),
            "--baseline-images",
            str(args.baseline_images),
            "--device",
            args.device,
            "--repeats",
            str(args.repeats),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        results[size] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{size} images: {results[size]}", file=sys.stderr)
    print(
        json.dumps(
            {
                "model": args.model,
                "layer": args.layer,
                "workers": args.workers,
                "device": args.device,
                "batch_size": args.batch_size,
                "sides": args.sides,
                "repeats": args.repeats,
                "by_folder_size": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
