"""`livevis dream`: its arguments and what it runs."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds the subcommand; `set_defaults(handler=run)` makes `livevis.app.cli.main` call `run(args)`."""
    from livevis.app.commands.common import add_model_options

    dream = commands.add_parser(
        "dream", help="optimised images: what a channel or class wants to see (regularised activation maximisation)"
    )
    add_model_options(dream)
    dream.add_argument(
        "--layer", help="module path or friendly name; `prob` for a class's logit (default: the model's default layer)"
    )
    dream.add_argument("--channel", type=int, default=0, help="channel, unit or class index (default: 0)")
    dream.add_argument("--channels", metavar="A-B", help="channels A to B as batches, plus a contact sheet of them")
    dream.add_argument(
        "--objective", default="channel", help="channel (mean over the map, default) or neuron (the map's centre unit)"
    )
    dream.add_argument(
        "--method",
        default="fourier",
        help="fourier (Lucid's: decorrelated colour, Fourier basis, "
        "random jitter, scale and rotation, Adam; default) or yosinski (pixels, Table 1 "
        "regularisers)",
    )
    dream.add_argument(
        "--preset",
        type=int,
        help="yosinski's regulariser set, 1-4 as in Table 1 of Yosinski et al. "
        "2015 (default: 3, the paper's; 1-3 were tuned for CaffeNet's pixel scale and barely move a "
        "small network such as LeNet, where 4 works)",
    )
    dream.add_argument("--steps", type=int, help="optimisation steps (default: 512; yosinski: its preset's)")
    dream.add_argument("--size", type=int, metavar="PIXELS", help="image side (default: the model's input size)")
    dream.add_argument("--seed", type=int, default=0, help="the same seed gives the same image (default: 0)")
    dream.add_argument("--batch", type=int, default=8, metavar="N", help="channels per batch (default: 8)")
    dream.add_argument("--out", default="dreams", metavar="DIR", help="output folder (default: dreams)")
    dream.add_argument("--no-cache", action="store_true", help="optimise again even where the image is cached")
    dream.add_argument("--json", action="store_true", help="one JSON object on stdout")
    dream.set_defaults(handler=run)


def parse_channels(text: str) -> list[int]:
    """`A-B` (inclusive) or a single `A`."""
    from livevis.models.errors import OptionError

    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise OptionError(f"--channels takes a range A-B such as 0-15, got {text!r}")
    first, last = int(match[1]), int(match[2] or match[1])
    if last < first:
        raise OptionError(f"--channels {text}: the range ends before it starts")
    return list(range(first, last + 1))


def _tile_label(unit: int, label: str | None) -> str:
    if label is None:
        return f"ch {unit}"
    return label if label == str(unit) else f"{unit} {label}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from livevis.app.commands.common import load_engine
    from livevis.models.dream.run import check_options, classify, contact_sheet, dream, plan, read_png, save_png
    from livevis.models.errors import OptionError

    # what can be wrong without a model fails before one loads
    check_options(args.method, args.steps, args.preset, args.objective)
    channels = parse_channels(args.channels) if args.channels else [args.channel]
    if args.batch < 1:
        raise OptionError(f"--batch must be at least 1, got {args.batch}")
    engine = load_engine(args, progress=not args.json)
    request = plan(
        engine,
        args.layer,
        channels,
        objective=args.objective,
        method=args.method,
        steps=args.steps,
        size=args.size,
        preset=args.preset,
        seed=args.seed,
    )
    with tqdm(total=0, desc="dream", unit="step", leave=False, disable=args.json) as bar:

        def progress(what: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description(what, refresh=False)
            bar.update(done - bar.n)

        result = dream(engine, request, batch_size=args.batch, use_cache=not args.no_cache, progress=progress)

    layer = request.layer
    out = Path(args.out)
    stem = f"{_slug(engine.name)}-{_slug(layer.name)}"
    settings = f"{request.method}{request.preset or ''}-seed{request.seed}"
    is_class = len(engine.categories) == layer.channels and layer.path in (
        engine.layers[-1].path,
        engine.layers[-2].path,
    )
    rows = []
    for index, unit in enumerate(request.channels):
        path = save_png(out / f"{stem}-{unit}-{settings}.png", result.images[index])
        top5 = classify(engine, read_png(path))  # as written: uint8, re-read, preprocessed as the live view does
        rows.append(
            {
                "channel": unit,
                "label": engine.categories[unit] if is_class else None,
                "png": str(path),
                "objective_first": float(result.objective[0, index]),
                "objective_last": float(result.objective[-1, index]),
                "top5": [{"index": p.index, "label": p.label, "probability": p.probability} for p in top5],
            }
        )
    sheet = None
    if args.channels:
        labels = [_tile_label(row["channel"], row["label"]) for row in rows]
        first, last = request.channels[0], request.channels[-1]
        sheet = save_png(out / f"{stem}-{first}-{last}-{settings}-sheet.png", contact_sheet(result.images, labels))

    summary = {
        "model": engine.name,
        "weights": engine.weights.source,
        "layer": layer.name,
        "path": layer.path,
        "objective": "logit" if is_class else request.objective,
        "method": request.method,
        "preset": request.preset,
        "steps": request.steps,
        "size": request.size,
        "seed": request.seed,
        "seconds": result.seconds,
        "cached": result.cached,
        "sheet": str(sheet) if sheet else None,
        "channels": rows,
    }
    if len(rows) == 1:  # one image: its figures at the top level too
        summary.update({key: rows[0][key] for key in ("objective_first", "objective_last", "png", "top5")})
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    cached = " (from the cache)" if result.cached else ""
    print(
        f"{engine.name} [{engine.weights.label}] {layer.name} ({layer.path}), {summary['objective']}, "
        f"{request.method}{f' preset {request.preset}' if request.preset else ''}, {request.steps} steps at "
        f"{request.size}px, seed {request.seed}: {result.seconds:.1f} s{cached}"
    )
    for row in rows:
        best = row["top5"][0]
        name = f"{row['channel']} ({row['label']})" if row["label"] else str(row["channel"])
        print(
            f"{name}: objective {row['objective_first']:.3g} -> {row['objective_last']:.3g}, "
            f"seen as {best['label']} {best['probability']:.3f} -> {row['png']}"
        )
    if sheet:
        print(f"contact sheet: {sheet}")
    sys.stdout.flush()
    return 0
