"""`livevis features`: learn a layer's sparse features on a folder of photos (`train`), and look at them (`show`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livevis.app.commands.common import add_model_options
from livevis.models.features import Recipe


def add_parser(commands: argparse._SubParsersAction) -> None:
    features = commands.add_parser(
        "features", help="sparse features of a layer (a TopK sparse autoencoder) learnt on a folder of photos"
    )
    actions = features.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser("train", help="learn the features of a layer over a folder's photos")
    add_model_options(train)
    train.add_argument("--layer", help="module path or friendly name (default: the model's default layer)")
    train.add_argument("--folder", required=True, help="the folder of photos (its sub-folders too)")
    train.add_argument("--width", default="4x", help="features per channel (default: 4x)")
    train.add_argument("--k", type=int, default=32, help="codes kept per cell (default: 32)")
    train.add_argument(
        "--epochs", type=int, default=Recipe.epochs, help=f"passes over the cells (default: {Recipe.epochs})"
    )
    train.add_argument(
        "--views",
        type=int,
        choices=(1, 2, 4),
        default=Recipe.views,
        help="views of each training photo: 1 as the live view sees it, 2 and mirrored, 4 and zoomed "
        f"(default: {Recipe.views})",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=Recipe.batch_size,
        metavar="N",
        help=f"cells per step (default: {Recipe.batch_size})",
    )
    train.add_argument(
        "--lr", type=float, default=Recipe.lr, help=f"Adam's peak learning rate (default: {Recipe.lr:g})"
    )
    train.add_argument("--seed", type=int, default=0, help="initialisation, order and held-out photos (default: 0)")
    train.add_argument("--workers", type=int, default=0, metavar="N", help="processes decoding photos (default: 0)")
    train.add_argument(
        "--out",
        metavar="FILE",
        help="the .safetensors file to write (default: beside the atlas, in livevis's cache folder)",
    )
    train.add_argument("--no-cache", action="store_true", help="read the photos again, not the cached cells")
    train.add_argument("--json", action="store_true", help="one JSON object on stdout")
    train.set_defaults(handler=run_train)

    show = actions.add_parser("show", help="a features file's figures; with --out, each feature's pictures")
    add_model_options(show)
    show.add_argument("file", metavar="FILE", help="a features file (.safetensors) written by `features train`")
    show.add_argument("--out", metavar="DIR", help="write feature_J.png (top crops, optimised image, classes) here")
    show.add_argument("--features", default="", metavar="J,K", help="which features (default: the 8 most used)")
    show.add_argument("--steps", type=int, default=128, help="steps of each optimised image (default: 128)")
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.set_defaults(handler=run_show)


class _Progress:
    """tqdm with an ETA, a new bar for each stage (reading the photos, learning), fed by models.progress."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.stage = enabled, None, None

    def __call__(self, what: str, done: int, total: int) -> bool:
        if not self.enabled:
            return True
        stage = what.split(":")[0]
        if self.bar is None or stage != self.stage:
            from tqdm import tqdm

            self.close()
            self.bar, self.stage = tqdm(total=total or None, desc=stage, file=sys.stderr, dynamic_ncols=True), stage
        self.bar.update(done - self.bar.n)
        return True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_train(args: argparse.Namespace) -> int:
    from livevis.app.commands.common import load_engine
    from livevis.app.sources.files import read_frame
    from livevis.models.atlas.topk import Processes
    from livevis.models.errors import InputError, OptionError
    from livevis.models.features import parse_width
    from livevis.models.features.train import read_views

    folder = Path(args.folder)
    if not folder.is_dir():  # fails before a model loads
        raise InputError(f"{folder} is not a folder" if folder.exists() else f"{folder}: no such folder")
    recipe = Recipe(
        parse_width(args.width), args.k, args.epochs, args.batch_size, args.lr, seed=args.seed, views=args.views
    )
    processes = Processes.from_environment()
    try:
        if processes.world > 1:
            if args.no_cache:
                raise OptionError(
                    "under torchrun the processes share the photos' reading through the cache: drop --no-cache"
                )
            args.device = processes.device(args.device)
        engine = load_engine(args, progress=processes.is_main)
        if processes.world > 1:  # every process reads its share of the photos; rank 0 learns from all of them
            bar = _Progress(processes.is_main and not args.json)
            try:
                reading = {"workers": args.workers, "reader": read_frame, "progress": bar}
                read_views(engine, folder, args.layer, recipe, processes=processes, **reading)
            finally:
                bar.close()
            if not processes.is_main:
                return 0
        return _train(args, engine, folder, recipe)
    finally:
        processes.close()


def _train(args: argparse.Namespace, engine, folder: Path, recipe) -> int:
    from livevis.app.sources.files import read_frame
    from livevis.models.features import train_features
    from livevis.models.features.train import checkpoint_of, default_output

    bar = _Progress(not args.json)
    out = Path(args.out) if args.out else None
    try:
        sae, written = train_features(
            engine,
            folder,
            args.layer,
            recipe,
            out=out,
            workers=args.workers,
            reader=read_frame,
            progress=bar,
            use_cache=not args.no_cache,
        )
    except KeyboardInterrupt:
        bar.close()
        if out is None:
            from livevis.models.atlas.folder import list_folder

            out = default_output(engine, engine.layer(args.layer), list_folder(folder), recipe)
        if checkpoint_of(out).is_file():
            print(f"livevis: stopped; {checkpoint_of(out)} keeps the run: the same command resumes it", file=sys.stderr)
        raise
    finally:
        bar.close()
    figures = sae.figures
    if args.json:
        print(json.dumps({"file": str(written), "features": sae.features, "k": sae.k, **figures}, indent=1))
        return 0
    print(_describe(sae, written))
    return 0


def _describe(sae, file: Path) -> str:
    f = sae.figures
    lines = [
        f"{file}: {sae.features} features of {sae.meta.get('model', '?')} {sae.meta.get('layer', '?')} "
        f"({sae.channels} channels), k {sae.k}",
    ]
    if f:
        lines.append(
            f"held-out photos ({f['held_out_images']}, {f['held_out_cells']} cells): explained variance "
            f"{f['explained_variance']:.3f}, L0 {f['l0']:.1f}; dead {f['dead']:.1%}; "
            f"{f['epochs']} epochs over {f['train_cells']} cells of {f['train_images']} photos in {f['seconds']:.0f} s"
        )
    return "\n".join(lines)


def run_show(args: argparse.Namespace) -> int:
    from livevis.models.features import read_features

    sae = read_features(args.file)
    if not args.out:
        if args.json:
            print(json.dumps({"file": args.file, "features": sae.features, "k": sae.k, **sae.meta}, indent=1))
        else:
            print(_describe(sae, Path(args.file)))
        return 0
    from livevis.app.commands.common import load_engine
    from livevis.app.sources.files import read_frame
    from livevis.models.features.gallery import write_gallery
    from livevis.models.interventions import parse_channels

    if not args.model:
        args.model = sae.meta.get("model")
    engine = load_engine(args)
    chosen = parse_channels(args.features) if args.features else None
    written = write_gallery(engine, Path(args.file), Path(args.out), chosen, steps=args.steps, reader=read_frame)
    if args.json:
        print(json.dumps({"file": args.file, "written": [str(p) for p in written]}, indent=1))
    else:
        print(_describe(sae, Path(args.file)))
        print(f"wrote {len(written)} pictures to {args.out}")
    return 0
