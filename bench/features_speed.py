"""Sparse features' training figures: held-out explained variance, L0, dead share and seconds of a TopK SAE
learnt on a layer over a folder (`livevis features train`), the reading of the photos timed apart.

    python bench/features_speed.py                                  # Lite0 blocks.5.0.bn1.act, 204 photos, 4x, k 32
    python bench/features_speed.py --epochs 10,20,40                # one run per epoch count, the cells read once
    python bench/features_speed.py --model lenet --layer relu2 --digits 1000 --width 4 --k 8 --gallery out/lenet
    python bench/features_speed.py --model vit_mnist --layer blocks.1 --digits 1000 --k 16 --gallery out/vit

The photo folder is bench/mine_speed.py's (JPEGs cut from real photos, longer sides 300-1400 px); `--digits N`
writes the first N of the bundled real MNIST digits instead. `--gallery DIR` writes `livevis features show`'s
pictures of the last run (each feature's top crops and optimised image). Time it alone on the machine:
`flock -x /tmp/livevis-cpu.lock python bench/features_speed.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path


def digit_folder(folder: Path, count: int) -> Path:
    import cv2
    import numpy as np

    from livevis.assets import ASSETS_DIR

    digits = np.load(ASSETS_DIR / "datasets" / "mnist10k.npz")["images"][:count]
    folder.mkdir(parents=True, exist_ok=True)
    for i, digit in enumerate(digits):
        cv2.imwrite(str(folder / f"digit{i:05d}.png"), digit)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default="blocks.5.0.bn1.act")
    parser.add_argument("--photos", type=int, default=204)
    parser.add_argument("--digits", type=int, default=0, help="real MNIST digits instead of photos")
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--epochs", default="30", help="epoch counts, comma-separated: one run each")
    parser.add_argument("--views", type=int, help="views of each training photo: 1, 2 or 4 (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="cells per step (default: the recipe's)")
    parser.add_argument("--lr", type=float, default=None, help="Adam's peak learning rate (default: the recipe's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gallery", metavar="DIR", help="write the last run's feature pictures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["LIVEVIS_CACHE"] = str(scratch / "cache")
        import torch

        from livevis.models import Engine
        from livevis.models.atlas.topk import Processes
        from livevis.models.features import Recipe, folder_cells, train_features
        from livevis.models.features.train import read_views

        if args.digits:
            folder = digit_folder(scratch / "digits", args.digits)
        else:
            from mine_speed import make_folder

            folder = make_folder(scratch / "photos", args.photos, sides=(300, 1400))
        engine = Engine.load(args.model, device=args.device)
        layer = engine.layer(args.layer)
        chosen = {"views": 1 if args.digits else args.views, "batch_size": args.batch_size, "lr": args.lr}
        recipe = Recipe(args.width, args.k, **{name: value for name, value in chosen.items() if value is not None})
        start = time.perf_counter()
        read_views(engine, folder, layer.path, recipe, processes=Processes())
        read_seconds = time.perf_counter() - start
        cells = folder_cells(engine, folder, layer)  # from the cache
        runs = []
        for epochs in (int(e) for e in args.epochs.split(",")):
            recipe = dataclasses.replace(recipe, epochs=epochs)
            out = scratch / f"features-{epochs}.safetensors"
            sae, _ = train_features(engine, folder, layer.path, recipe, out=out)
            runs.append({"epochs": epochs, **{k: v for k, v in sae.figures.items() if k != "epochs"}})
            print(json.dumps(runs[-1]), flush=True)
        if args.gallery:
            from livevis.models.features.gallery import write_gallery

            write_gallery(engine, out, Path(args.gallery), steps=128 if not args.digits else 64)
        print(
            json.dumps(
                {
                    "model": args.model,
                    "layer": layer.path,
                    "channels": layer.channels,
                    "features": args.width * layer.channels,
                    "k": args.k,
                    "images": len(cells.listing.items),
                    "cells": len(cells.rows),
                    "views": recipe.views,
                    "read_seconds": round(read_seconds, 1),
                    "threads": torch.get_num_threads(),
                    "device": args.device,
                    "runs": runs,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
