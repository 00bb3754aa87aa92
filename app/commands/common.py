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


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """`--view NAME` and a flag for each view option that declares one (`--backprop`, `--concepts`, a
    plug-in's own), from the views' declarations (`livevis.views`)."""
    from livevis import views

    named = ", ".join(
        f"{name} ({spec.description})" if spec.description else name
        for name, spec in views.all_views().items()
        if spec.pictures and not spec.rendered
    )
    group = parser.add_argument_group("views", "pictures beyond those drawn by default (grid, overlay, ...)")
    group.add_argument(
        "--view", action="append", default=[], metavar="NAME", help=f"also draw this view (repeat for several): {named}"
    )
    for option in views.options().values():
        if option.flag and option.default is False and set(option.choices) == {False, True}:  # a switch
            group.add_argument(option.flag, dest=option.name, action="store_const", const=True, help=option.help)
        elif option.flag:
            group.add_argument(
                option.flag,
                dest=option.name,
                type=_argument(option.parse),
                help=option.help,
                metavar=option.name.upper(),
            )


def _argument(parse):
    """A view option's parser, its ValueError one line of argparse's."""

    def parsed(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed


def asked_views(args: argparse.Namespace, default: tuple[str, ...]) -> tuple[tuple[str, ...], dict]:
    """The views the arguments ask for (`default`, those named by --view, and those whose flags were given)
    and the view options given."""
    from livevis import views
    from livevis.models.errors import OptionError

    given = {
        name: getattr(args, name)
        for name, o in views.options().items()
        if o.flag and getattr(args, name, None) is not None
    }
    asked = list(default)
    for name in args.view:
        try:
            views.view(name)
        except ValueError as exc:  # an unknown name: the views there are
            raise OptionError(f"--view: {exc}") from None
        asked.append(name)
    asked += [name for name, spec in views.all_views().items() if any(o.name in given for o in spec.options)]
    return tuple(dict.fromkeys(asked)), given


def add_edit_options(parser: argparse.ArgumentParser) -> None:
    """Units switched off, set to their means or scaled in the forward pass (`models.interventions`)."""
    group = parser.add_argument_group("interventions", "switch units off and see what the network does without them")
    group.add_argument(
        "--ablate",
        action="append",
        default=[],
        metavar="LAYER:CHANNELS",
        help="edit these channels of a layer (conv5:3,17,40-63); repeat for several layers",
    )
    group.add_argument(
        "--ablate-mode",
        default="zero",
        type=_edit_mode,
        metavar="MODE",
        help="zero (default), mean (each channel's mean over a mined folder of the layer, else over "
        "the frames seen) or scale=F (each unit times F)",
    )


def _edit_mode(text: str) -> tuple[str, float]:
    mode, _, factor = text.partition("=")
    if mode in ("zero", "mean") and not factor:
        return mode, 0.0
    if mode == "scale" and factor:
        try:
            return mode, float(factor)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"{text!r} is not an edit mode: zero, mean or scale=F (for example scale=0.5)")


def edits_from(args: argparse.Namespace, engine) -> tuple:
    """The edits `--ablate` and `--ablate-mode` ask for, their layers checked against the model; the mean mode
    takes each channel's mean from a folder mined for the layer where there is one."""
    from livevis.models.atlas.mining import mined_means
    from livevis.models.errors import OptionError
    from livevis.models.interventions import UnitEdit, parse_channels

    mode, factor = args.ablate_mode
    edits = []
    for text in args.ablate:
        layer, found, channels = text.rpartition(":")
        if not found or not layer:
            raise OptionError(f"--ablate {text!r}: give LAYER:CHANNELS, for example conv5:3,17,40-63")
        info = engine.layer(layer)
        chosen = parse_channels(channels)
        means = mined_means(engine, info.path, chosen) if mode == "mean" else None
        edits.append(UnitEdit(info.path, chosen, mode, factor, means=means))
    edits += _feature_edits(args)
    return tuple(engine.checked_edits(edits))  # one line now for an edit that does not fit its layer


def _feature_edits(args: argparse.Namespace) -> list:
    """`--feature-off J,K` with `--features FILE`: those features switched off at the file's layer."""
    from livevis.models.errors import OptionError
    from livevis.models.features import FeatureEdit, features_at
    from livevis.models.interventions import parse_channels

    off, file = getattr(args, "feature_off", None), getattr(args, "features", None)
    if not off:
        return []
    if not file:
        raise OptionError("--feature-off needs --features FILE: the features file the numbers refer to")
    return [FeatureEdit(features_at(file).layer, file, parse_channels(off), 0.0)]
