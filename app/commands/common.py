"""What the commands share: the options that name a model, and loading it."""

from __future__ import annotations

import argparse
import sys


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
    own.add_argument(
        "--in-channels",
        type=int,
        metavar="N",
        help="input channels (default: the first convolution's; photos need 1 or 3, others a tensor)",
    )
    own.add_argument("--mean", type=_floats, metavar="M[,M,M]", help="per-channel mean (default ImageNet's)")
    own.add_argument("--std", type=_floats, metavar="S[,S,S]", help="per-channel std (default ImageNet's)")
    own.add_argument("--labels", metavar="FILE", help="class names, one per line")
    own.add_argument(
        "--trust-model-file",
        action="store_true",
        help="open a .pt2 file even where it carries pickles, compiled code or Python source, which run as it "
        "loads (without this, such a file is refused and nothing in it runs); only for a file you trust. "
        "A TorchScript file is a program whatever this says: livevis runs its code, which can call any "
        "torch operator (reading and writing files included) but cannot import Python modules",
    )


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def custom_options(args: argparse.Namespace) -> dict:
    """The options that describe a user's own model, for `Engine.load(..., **custom)`."""
    options = {key: getattr(args, key, None) for key in ("input_size", "in_channels", "mean", "std", "labels")}
    return options | {"trust_model_file": bool(getattr(args, "trust_model_file", False))}


def load_engine(args: argparse.Namespace, *, progress: bool = True):
    """The model the arguments name, or the default one; a fallback is said on stderr, never silent."""
    from livevis.models import Engine

    if args.model:
        return Engine.load(args.model, args.weights, device=args.device, progress=progress, **custom_options(args))
    engine, notice = Engine.load_default(args.weights, device=args.device, progress=progress)
    if notice:
        print(f"livevis: {notice}", file=sys.stderr)
    return engine
