"""`livevis embed`: layers as embeddings on the command line, one figure with a panel per layer."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from livevis.models.data.output import output_folder
from livevis.models.embeddings.tsne import EmbeddingRun
from livevis.models.errors import OutputError


def save_figure(run: EmbeddingRun, out: Path) -> Path:
    """A panel per layer, points coloured by class, k-NN accuracy in each title, one legend.

    Built on a bare `Figure`, not pyplot's global state, so that any thread may save one.
    """
    import matplotlib
    from matplotlib.figure import Figure

    count = len(run.layers)
    cols = min(count, 3 if count in (5, 6, 9) else 4)
    rows = math.ceil(count / cols)
    figure = Figure(figsize=(4.2 * cols, 4.2 * rows + 0.6))
    axes = figure.subplots(rows, cols, squeeze=False)
    colors = matplotlib.colormaps["tab10" if len(run.classes) <= 10 else "tab20"]
    for axis, layer in zip(axes.flat, run.layers, strict=False):
        for index, name in enumerate(run.classes):
            chosen = run.labels == index
            axis.scatter(*layer.coords[chosen].T, s=3, color=colors(index % colors.N), label=name, linewidths=0)
        axis.set_title(f"{layer.name} ({layer.dimension}-d)\nk-NN accuracy {layer.knn_accuracy:.3f}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in list(axes.flat)[count:]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(10, len(labels)), markerscale=4, frameon=False)
    figure.suptitle(f"t-SNE of {run.dataset} through {run.model}, layer by layer", fontsize=12)
    figure.tight_layout(rect=(0, 0.05, 1, 0.97))
    try:
        figure.savefig(out, dpi=110)
    except OSError as exc:
        raise OutputError(f"could not write {out}: {exc.strerror or exc}") from None
    return out


def check_figure_path(out: Path) -> Path:
    """Before the long computation: a folder that can be made, and a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        raise OutputError(f"cannot write a figure as {out.name!r}; name it .png, .pdf or .svg")
    output_folder(out.parent)
    return out


def check_tensorboard_folder(folder: Path) -> Path:
    """Before the long computation: TensorBoard's writer can be imported and the folder made."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise OutputError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return output_folder(folder)


def write_tensorboard(run: EmbeddingRun, folder: Path) -> list[str]:
    """Each layer's PCA-reduced points (what its t-SNE map was made from) for TensorBoard's embedding
    projector, one tag per layer, with the class of each point and its thumbnail: there they can be
    explored in 3-D with PCA, t-SNE or UMAP. Returns the tags written."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    # metadata.tsv has one class name a line: a tab or a newline in a folder's name would shift the columns
    classes = [re.sub(r"\s+", " ", name).strip() or "?" for name in run.classes]
    metadata = [classes[label] for label in run.labels]
    sprites = torch.from_numpy(np.ascontiguousarray(run.thumbnails)).permute(0, 3, 1, 2).float().div_(255)
    tags = []
    try:
        with SummaryWriter(str(folder)) as writer:
            for layer in run.layers:
                if layer.reduced is None:
                    continue
                writer.add_embedding(layer.reduced, metadata=metadata, label_img=sprites, tag=layer.name)
                tags.append(layer.name)
    except OSError as exc:
        raise OutputError(f"could not write TensorBoard files into {folder}: {exc.strerror or exc}") from None
    return tags


def run_embed(args) -> tuple[EmbeddingRun, Path]:
    from tqdm import tqdm

    from livevis.models import Engine
    from livevis.models.data.datasets import embedding_dataset
    from livevis.models.embeddings.tsne import embed_dataset, embed_swiss_roll

    out = check_figure_path(Path(args.out))
    tensorboard = getattr(args, "tensorboard", None)
    if tensorboard:
        tensorboard = check_tensorboard_folder(Path(tensorboard))
    bars: dict[str, tqdm] = {}

    def progress(what: str, done: int, total: int) -> bool:
        if args.json:
            return True
        stage = "activations" if what == "activations" else "t-SNE"
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, leave=False))
        bar.set_postfix_str(what if stage == "t-SNE" else "", refresh=False)
        bar.update(done - bar.n)
        return True

    if args.dataset == "swissroll":
        run = embed_swiss_roll(args.samples, method=args.method, perplexity=args.perplexity, seed=args.seed)
    else:
        default_model = "lenet" if args.dataset in ("mnist", "digits") else None
        name = args.model or default_model
        engine = (
            Engine.load(name, args.weights, device=args.device)
            if name
            else Engine.load_default(args.weights, device=args.device)[0]
        )
        data, skipped = embedding_dataset(args.dataset, args.samples, args.seed, engine.spec.input_size)
        layers = [key.strip() for key in args.layers.split(",")] if args.layers else None
        run = embed_dataset(
            engine,
            data,
            args.dataset,
            layers,
            method=args.method,
            perplexity=args.perplexity,
            seed=args.seed,
            progress=progress,
        )
        run.skipped = skipped
    for bar in bars.values():
        bar.close()
    figure = save_figure(run, out)
    if tensorboard:
        tags = write_tensorboard(run, tensorboard)
        if not args.json:
            print(f"wrote {len(tags)} embeddings to {tensorboard} (see them with: tensorboard --logdir {tensorboard})")
    return run, figure


def summary_rows(run: EmbeddingRun) -> list[dict]:
    return [layer.as_dict() for layer in run.layers]


def print_table(run: EmbeddingRun, figure: Path) -> None:
    print(
        f"{run.dataset}: {len(run.labels)} samples, {len(run.classes)} classes, model {run.model}"
        + (f", {run.skipped} unreadable images skipped" if run.skipped else "")
    )
    print(f"{'layer':<22}{'dim':>7}{'k-NN acc':>10}{'trust':>8}{'seconds':>9}")
    for layer in run.layers:
        seconds = "cached" if layer.cached else f"{layer.seconds:.1f}"
        print(
            f"{layer.name:<22}{layer.dimension:>7}{layer.knn_accuracy:>10.3f}{layer.trustworthiness:>8.3f}{seconds:>9}"
        )
    print(f"wrote {figure}")


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    embed.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write each layer's points, classes and thumbnails for TensorBoard's embedding projector into DIR",
    )
    embed.add_argument(
        "--json", action="store_true", help="per layer: name, dimension, knn_accuracy, trustworthiness, seconds"
    )
    embed.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    run, figure = run_embed(args)
    if args.json:
        summary = {
            "dataset": run.dataset,
            "model": run.model,
            "samples": int(len(run.labels)),
            "skipped": run.skipped,
            "figure": str(figure),
            "layers": summary_rows(run),
        }
        print(json.dumps(summary, indent=1))
    else:
        print_table(run, figure)
    return 0
