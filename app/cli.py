"""`livevis` command line: the desktop app by default, and subcommands for scripts and tests.

Errors a user can act on print as one line on stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from livevis.app import __version__

EXIT_USAGE = 2

COMMAND_MODULES = (
    "livevis.app.render_command", "livevis.app.dream_command", "livevis.app.mine_command", "livevis.app.figure_command"
)
"""Subcommands with a module of their own: each has `add_parser(commands)`, which sets a `handler`."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_model_options(parser: argparse.ArgumentParser, *, weights: bool = True, device: bool = True) -> None:
    parser.add_argument(
        "--model",
        help="model name (default: alexnet, or the offline trained efficientnet_lite0 where AlexNet's weights "
        "cannot be had)",
    )
    if weights:
        parser.add_argument(
            "--weights",
            default="default",
            metavar="PATH|none",
            help="a state-dict file, or `none` for random weights (default: the model's trained weights)",
        )
    if device:
        parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda or mps")
    own = parser.add_argument_group("your own model (timm:NAME, a .pt2 or TorchScript file, or module:factory)")
    own.add_argument("--input-size", type=int, metavar="N", help="square input side in pixels (default 224)")
    own.add_argument("--in-channels", type=int, metavar="N",
                     help="input channels (default: the first convolution's; photos need 1 or 3, others a tensor)")
    own.add_argument("--mean", type=_floats, metavar="M[,M,M]", help="per-channel mean (default ImageNet's)")
    own.add_argument("--std", type=_floats, metavar="S[,S,S]", help="per-channel std (default ImageNet's)")
    own.add_argument("--labels", metavar="FILE", help="class names, one per line")


_add_model_options = add_model_options  # the name the dream command imports


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def custom_options(args: argparse.Namespace) -> dict:
    """The options that describe a user's own model, for `Engine.load(..., **custom)`."""
    return {key: getattr(args, key, None) for key in ("input_size", "in_channels", "mean", "std", "labels")}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="livevis",
        description="Live deep visualization of PyTorch convolutional networks. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"livevis {__version__}")
    parser.add_argument("--source", help="camera index (0), an image, video or folder, or a stream URL "
                        "(http://PHONE:8080/video, rtsp://user:pass@CAMERA/stream) (default: camera 0, "
                        "else the bundled sample photos)")  # fmt: skip
    add_model_options(parser)
    parser.add_argument("--layer", help="layer to show first (module path or friendly name)")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help="close the app after that long")
    parser.add_argument("--stats-json", metavar="PATH", help="on exit, write frame counts, fps and latency here")
    parser.add_argument("--settings", metavar="PATH", help="settings file (default: the user's livevis settings)")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    layers = commands.add_parser("layers", help="list a model's layers in execution order")
    add_model_options(layers, device=False)
    layers.set_defaults(weights="none")
    layers.add_argument("--json", action="store_true", help="one JSON array on stdout")

    embed = commands.add_parser("embed", help="t-SNE of a dataset's activations at each layer, coloured by class")
    embed.add_argument(
        "--dataset", required=True, help="mnist, digits, swissroll, or a folder with a sub-folder per class"
    )
    embed.add_argument("--model", help="default: lenet for mnist and digits, else the default model")
    embed.add_argument("--weights", default="default", metavar="PATH|none", help="as for render")
    embed.add_argument("--device", default="auto")
    embed.add_argument("--layers", help="comma-separated layers, or `all` (default: the input and every stage)")
    embed.add_argument(
        "--samples", type=int, default=2000, metavar="N", help="at most N samples (default: 2000; all where fewer)"
    )
    embed.add_argument("--perplexity", type=float, default=30.0)
    embed.add_argument("--method", default="opentsne", help="opentsne (default) or sklearn")
    embed.add_argument("--seed", type=int, default=0)
    embed.add_argument(
        "--out", default="embeddings.png", metavar="FIG.png", help="the figure (default: embeddings.png)"
    )
    embed.add_argument("--tensorboard", metavar="DIR", help="also write each layer's points, classes and "
                       "thumbnails for TensorBoard's embedding projector into DIR")  # fmt: skip
    embed.add_argument(
        "--json", action="store_true", help="per layer: name, dimension, knn_accuracy, trustworthiness, seconds"
    )

    models = commands.add_parser("models", help="list the models, and whether their trained weights are at hand")
    models.add_argument("--json", action="store_true", help="one JSON array on stdout")
    models.add_argument("--all", action="store_true", help="also every other torchvision classifier, by its name")

    bench = commands.add_parser("bench", help="time the live pipeline against the bare model forward")
    add_model_options(bench)
    bench.add_argument("--source", default="synthetic", help="synthetic (default) or a video file")
    bench.add_argument("--frames", type=int, default=200, help="frames to time (default: 200)")
    bench.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    bench.add_argument("--resolution", default="640x480", metavar="WxH", help="frame size (default: 640x480)")
    bench.add_argument("--layer", help="layer to capture and render (default: the model's default layer)")
    bench.add_argument(
        "--view-size", metavar="WxH", help="render the overlay at this size, as the app does (default: the frame's)"
    )
    bench.add_argument("--backprop", default="off", metavar="MODE",
                       help="with the backprop pane on (grad, deconv, guided, gradcam), against the bare forward + "
                       "backward")  # fmt: skip
    bench.add_argument("--concepts", type=int, metavar="K",
                       help="with the concepts view on: the layer cut into K concepts (2-12) each frame")
    bench.add_argument("--json", action="store_true", help="one JSON object on stdout")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(commands)
    return parser


def load_engine(args: argparse.Namespace, *, progress: bool = True):
    """The model the arguments name, or the default one; a fallback is said on stderr, never silent."""
    from livevis.models import Engine

    if args.model:
        return Engine.load(args.model, args.weights, device=args.device, progress=progress, **custom_options(args))
    engine, notice = Engine.load_default(args.weights, device=args.device, progress=progress)
    if notice:
        print(f"livevis: {notice}", file=sys.stderr)
    return engine


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from livevis.models.errors import LivevisError

    try:
        if args.command is None:
            from livevis.app.gui import AppConfig, run_app

            return run_app(AppConfig(
                source=args.source, model=args.model, weights=args.weights, layer=args.layer, device=args.device,
                settings=args.settings and Path(args.settings), custom=custom_options(args),
                quit_after=args.quit_after, stats_json=args.stats_json and Path(args.stats_json),
            ))  # fmt: skip
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except LivevisError as exc:
        print(f"livevis: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("livevis: interrupted", file=sys.stderr)
        return 130


def _cmd_layers(args: argparse.Namespace) -> int:
    from livevis.models import Engine

    engine = Engine.load(args.model or "alexnet", args.weights, device="cpu", **custom_options(args))
    rows = [
        {"path": layer.path, "name": layer.name, "shape": list(layer.shape), "type": layer.module_type,
         "prefix_tokens": layer.prefix_tokens,
         "reads_as": layer.layout.describe() if layer.layout is not None else "maps" if layer.is_spatial else "vector"}
        for layer in engine.layers
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    default = engine.layer().path
    width = max(len(r["name"]) for r in rows)
    path_width = max(len(r["path"]) for r in rows)
    print(f"  {'name':<{width}}  {'module path':<{path_width}}  {'output':<16} type")
    for row in rows:
        mark = "*" if row["path"] == default else " "
        shape = " x ".join(map(str, row["shape"]))
        tokens = f" + {row['prefix_tokens']}" if row["prefix_tokens"] else ""
        print(f"{mark} {row['name']:<{width}}  {row['path']:<{path_width}}  {shape + tokens:<16} {row['type']}")
    note = ""
    if engine.tokens is not None:
        note = (f"; tokens read as maps over the patch grid, + N: prefix tokens ({', '.join(engine.tokens.prefix)})"
                if engine.tokens.prefix else "; channels-last stages read as C x H x W")  # fmt: skip
    print(f"(* default layer; {len(rows)} layers of {engine.name}{note})")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from livevis.app.bench import format_report, run_bench

    report = run_bench(
        model=args.model or "alexnet",
        weights=args.weights,
        source=args.source,
        frames=args.frames,
        warmup=args.warmup,
        resolution=args.resolution,
        device=args.device,
        layer=args.layer,
        view_size=args.view_size,
        progress=not args.json,
        backprop=args.backprop,
        concepts=args.concepts,
    )
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from livevis.models import get_spec, model_names
    from livevis.models.zoo.torchvision_catalog import torchvision_names
    from livevis.models.zoo.weights import availability

    rows = []
    names = model_names() + ([n for n in torchvision_names() if n not in model_names()] if args.all else [])
    for name in names:
        spec = get_spec(name)
        available, where = availability(spec)
        rows.append({
            "name": name, "family": spec.family, "input_size": spec.input_size, "in_channels": spec.in_channels,
            "default_layer": spec.default_layer, "trained_weights_available": available, "weights": where,
            "description": spec.description,
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "yes" if r["trained_weights_available"] else "no "
        print(f"{r['name']:<{width}}  {r['family']:<13} {r['input_size']:>3}px  trained now: {mark}  {r['weights']}")
    more = "" if args.all else "every torchvision classifier by its name (--all lists them), "
    print(f"Also: {more}timm:NAME, a .pt2 (torch.export) or TorchScript file, or package.module:factory with "
          "--weights.")  # fmt: skip
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from livevis.app.embed import print_table, run_embed, summary_rows

    run, figure = run_embed(args)
    if args.json:
        summary = {"dataset": run.dataset, "model": run.model, "samples": int(len(run.labels)),
                   "skipped": run.skipped, "figure": str(figure), "layers": summary_rows(run)}  # fmt: skip
        print(json.dumps(summary, indent=1))
    else:
        print_table(run, figure)
    return 0


COMMANDS = {
    "layers": _cmd_layers,
    "bench": _cmd_bench,
    "models": _cmd_models,
    "embed": _cmd_embed,
}


if __name__ == "__main__":
    sys.exit(main())
