"""`livevis layers` and `livevis models`: what a model is made of, and which models there are."""

from __future__ import annotations

import argparse
import json

from livevis.app.commands.common import add_model_options, custom_options


def add_parser(commands: argparse._SubParsersAction) -> None:
    layers = commands.add_parser("layers", help="list a model's layers in execution order")
    add_model_options(layers, device=False)
    layers.set_defaults(weights=None, handler=list_layers)
    layers.add_argument("--json", action="store_true", help="one JSON array on stdout")

    models = commands.add_parser("models", help="list the models, and whether their trained weights are at hand")
    models.add_argument("--json", action="store_true", help="one JSON array on stdout")
    models.add_argument("--all", action="store_true", help="also every other torchvision classifier, by its name")
    models.set_defaults(handler=list_models)


def list_layers(args: argparse.Namespace) -> int:
    from livevis.models import Engine
    from livevis.models.zoo import DEFAULT, RANDOM, get_spec
    from livevis.models.zoo.spec import EmbeddedWeights

    name, custom = args.model or "alexnet", custom_options(args)
    weights = args.weights
    if weights is None:  # shapes need no trained weights, except where they come inside the model file
        weights = DEFAULT if isinstance(get_spec(name, **custom).weights, EmbeddedWeights) else RANDOM
    engine = Engine.load(name, weights, device="cpu", **custom)
    rows = [
        {
            "path": layer.path,
            "name": layer.name,
            "shape": list(layer.shape),
            "type": layer.module_type,
            "prefix_tokens": layer.prefix_tokens,
            "reads_as": layer.layout.describe()
            if layer.layout is not None
            else "maps"
            if layer.is_spatial
            else "vector",
        }
        for layer in engine.layers
    ]
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
        note = (
            f"; tokens read as maps over the patch grid, + N: prefix tokens ({', '.join(engine.tokens.prefix)})"
            if engine.tokens.prefix
            else "; channels-last stages read as C x H x W"
        )
    print(f"(* default layer; {len(rows)} layers of {engine.name}{note})")
    return 0


def list_models(args: argparse.Namespace) -> int:
    from livevis.models import get_spec, model_names
    from livevis.models.zoo.torchvision_catalog import task_names, torchvision_names
    from livevis.models.zoo.weights import availability

    rows = []
    everything = [*torchvision_names(), *task_names()]  # classifiers, then detectors and segmenters
    names = model_names() + ([n for n in everything if n not in model_names()] if args.all else [])
    for name in names:
        spec = get_spec(name)
        available, where = availability(spec)
        rows.append(
            {
                "name": name,
                "family": spec.family,
                "input_size": spec.input_size,
                "in_channels": spec.in_channels,
                "default_layer": spec.default_layer,
                "trained_weights_available": available,
                "weights": where,
                "description": spec.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "yes" if r["trained_weights_available"] else "no "
        print(f"{r['name']:<{width}}  {r['family']:<13} {r['input_size']:>3}px  trained now: {mark}  {r['weights']}")
    more = "" if args.all else "every torchvision classifier, detector and segmenter by its name (--all lists them), "
    print(
        f"Also: {more}timm:NAME, a .pt2 (torch.export) or TorchScript file, or package.module:factory with --weights."
    )
    return 0
