"""`livevis mine`: every unit's top images in a folder (the unit atlas), on one process or many under torchrun."""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds the subcommand; `set_defaults(handler=run)` makes `livevis.app.cli.main` call `run(args)`."""
    from livevis.app.commands.common import add_model_options

    mine = commands.add_parser(
        "mine",
        help="every unit's top images in a folder, with receptive-field boxes (the unit atlas)",
        description="Mines FOLDER (recursively) for each unit's top images by the unit's spatial maximum. "
        "Tensor files are fed to the network as they are, each at its own size; a folder holds photos or "
        "tensors, not both. Results are cached; an interrupted run resumes. Under torchrun each process mines a "
        "share.",
    )
    mine.add_argument(
        "folder",
        metavar="FOLDER",
        help="a folder of images (and videos, with --video-step), or of "
        "tensor files (.npy, .pt: C x H x W, the network input as it is)",
    )
    add_model_options(mine)
    mine.add_argument(
        "--layer", help="layer(s), comma-separated: module paths or friendly names (default: the model's default layer)"
    )
    mine.add_argument("--top", type=int, default=9, metavar="K", help="images kept per unit (default: 9)")
    mine.add_argument(
        "--out",
        metavar="DIR",
        help="write per unit a mosaic of crops and of deconvolutions, and index.json / index.html",
    )
    mine.add_argument("--no-deconv", action="store_true", help="with --out, leave the deconvolution mosaics out")
    mine.add_argument("--json", action="store_true", help="one JSON object on stdout (a list for several layers)")
    mine.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per forward (default: 64)")
    mine.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="processes decoding and resizing images (default: 2; 0: in this process)",
    )
    mine.add_argument("--video-step", type=int, metavar="K", help="also mine every K-th frame of the videos")
    mine.add_argument("--no-cache", action="store_true", help="mine again even where a cached atlas exists")
    mine.set_defaults(handler=run)


class _ProgressBar:
    """tqdm with images/s and ETA, fed by the models.progress protocol."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def __call__(self, what: str, done: int, total: int) -> bool:
        if not self.enabled:
            return True
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, desc=what, unit="img", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        return True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from livevis.app.commands.common import load_engine
    from livevis.app.sources.files import TENSOR_SUFFIXES, read_frame
    from livevis.models.atlas.mining import Processes, mine
    from livevis.models.data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
    from livevis.models.errors import InputError

    folder = Path(args.folder)
    if not folder.is_dir():  # fails before a model loads
        raise InputError(f"{folder} is not a folder" if folder.exists() else f"{folder}: no such folder")
    processes = Processes.from_environment()
    try:
        args.device = processes.device(args.device)
        engine = load_engine(args, progress=processes.is_main)
        layers = [key.strip() for key in args.layer.split(",") if key.strip()] if args.layer else None
        bar = _ProgressBar(processes.is_main)
        try:
            atlases = mine(
                engine,
                folder,
                layers,
                top=args.top,
                batch_size=args.batch_size,
                workers=args.workers,
                video_step=args.video_step,
                reader=read_frame,
                image_suffixes=IMAGE_SUFFIXES,
                video_suffixes=VIDEO_SUFFIXES,
                tensor_suffixes=TENSOR_SUFFIXES,
                progress=bar,
                use_cache=not args.no_cache,
                processes=processes,
            )
        finally:
            bar.close()
        if not processes.is_main:
            return 0
        written = write_atlas_folder(Path(args.out), atlases, engine, not args.no_deconv) if args.out else None
        _print_summary(atlases, args.json, written)
        return 0
    finally:
        processes.close()


def _print_summary(atlases, as_json: bool, written: Path | None) -> None:
    atlas = atlases[0]
    if atlas.skipped:
        names = ", ".join(name for name, _ in atlas.skipped[:10]) + (", ..." if len(atlas.skipped) > 10 else "")
        print(f"livevis: skipped {len(atlas.skipped)} files: {names}", file=sys.stderr)
    if as_json:
        objects = [a.as_dict() for a in atlases]
        print(json.dumps(objects[0] if len(objects) == 1 else objects, indent=1))
        return
    for atlas in atlases:
        how = "cached" if atlas.cached else "mined"
        print(
            f"{atlas.model} [{atlas.weights}] {atlas.layer_name} ({atlas.layer}): {atlas.channels} units, "
            f"top {atlas.top} of {atlas.images} images in {atlas.folder} ({how})"
        )
        for channel in range(min(3, atlas.channels)):
            best = atlas.entries(channel)[:3]
            listed = ", ".join(f"{e.name} {e.value:.3g} at {e.at[0]},{e.at[1]}" for e in best)
            print(f"  unit {channel}: {listed}")
        if atlas.channels > 3:
            print(f"  ... {atlas.channels - 3} more units (--json for all, --out DIR for mosaics)")
    if written is not None:
        print(
            f"wrote {written}/index.html, index.json and per unit a mosaic of its top crops and one of what "
            "drives it in each (deconv, or guided backprop where the network's deconvolution ignores the image)"
        )


def _reader(entry):
    from livevis.app.sources.files import read_frame

    return read_frame(entry.path, entry.frame or 0)


def write_atlas_folder(out: Path, atlases, engine, deconv: bool = True) -> Path:
    """Per layer and unit: NAME/unit_0000.png (crops) and unit_0000_deconv.png (unit_0000_guided.png where the
    network's deconvolution does not depend on the image); index.json and index.html."""
    from tqdm import tqdm

    from livevis.models.atlas.mosaics import unit_mosaics, write_png

    out.mkdir(parents=True, exist_ok=True)
    index = []
    for atlas in atlases:
        layer_folder = atlas.layer_name.replace("/", "_")
        units = []
        for channel in tqdm(
            range(atlas.channels), desc=f"mosaics of {atlas.layer_name}", unit="unit", file=sys.stderr, disable=None
        ):
            mosaics = unit_mosaics(engine if deconv else None, atlas, channel, _reader)
            crops_file = f"{layer_folder}/unit_{channel:04d}.png"
            write_png(out / crops_file, mosaics.crops)
            unit = {"channel": channel, "crops": crops_file}
            if mosaics.gradients is not None:  # under the method's name: deconv, or guided where it is blind
                unit[mosaics.method] = f"{layer_folder}/unit_{channel:04d}_{mosaics.method}.png"
                write_png(out / unit[mosaics.method], mosaics.gradients)
            units.append(unit)
        summary = atlas.as_dict()
        for unit, channel in zip(units, summary["channels"], strict=True):
            channel.update(unit)
        index.append(summary)
    (out / "index.json").write_text(json.dumps(index, indent=1))
    (out / "index.html").write_text(_index_html(index))
    return out


def _index_html(index: list[dict]) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>livevis unit atlas</title>",
        "<style>body{font-family:sans-serif;background:#111;color:#ddd}img{margin:2px;image-rendering:pixelated}"
        "div.unit{display:inline-block;margin:6px;text-align:center}</style>",
    ]
    for layer in index:
        parts.append(
            f"<h2>{html.escape(layer['model'])} {html.escape(layer['layer'])}: top images of "
            f"{layer['images']} in {html.escape(layer['folder'])}</h2>"
        )
        for unit in layer["channels"]:
            best = ", ".join(html.escape(t["image"]) for t in unit["top"][:3])
            images = f"<img src='{html.escape(unit['crops'])}' title='{best}'>"
            for method in ("deconv", "guided"):
                if method in unit:
                    images += f"<img src='{html.escape(unit[method])}' title='{method}'>"
            parts.append(f"<div class='unit'>{images}<br>unit {unit['channel']}</div>")
    return "\n".join(parts) + "\n"
