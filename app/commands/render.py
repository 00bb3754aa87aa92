"""`livevis render`: the views of one image, video frame or folder of images, as PNG files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livevis.app.commands.common import add_model_options, load_engine
from livevis.state import VIEW_DEFAULTS


def add_parser(commands: argparse._SubParsersAction) -> None:
    render = commands.add_parser("render", help="render the views of one image or video frame to PNG files")
    render.add_argument(
        "input",
        metavar="INPUT",
        help="an image file, a video file, a folder of images, or a "
        "stream URL (http://PHONE:8080/video, rtsp://...: its current frame)",
    )
    add_model_options(render)
    render.add_argument("--layer", help="module path or friendly name (default: the model's default layer)")
    render.add_argument("--channel", type=int, default=0, help="selected channel (default: 0)")
    render.add_argument("--colormap", default="signed", help="signed (default), gray, viridis or inferno")
    render.add_argument("--norm", default="layer", help="layer (default) or channel normalisation")
    render.add_argument("--gamma", type=float, default=1.0, help="gamma boost, < 1 lifts weak responses")
    render.add_argument("--boost", type=float, default=0.0, help="per-channel boost in [0, 1]")
    render.add_argument("--overlay-mode", default="overlay", help="overlay (default) or mask")
    render.add_argument("--frame", type=int, default=0, metavar="N", help="frame of a video (default: 0)")
    render.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    render.add_argument(
        "--save-activations", action="store_true", help="also write DIR/activations.npz (input, activation, top-5)"
    )

    unit = render.add_argument_group("unit analysis")
    unit.add_argument(
        "--backprop",
        default="off",
        metavar="MODE",
        help="also write backprop.png: grad, deconv or guided (what drives the channel) or gradcam",
    )
    unit.add_argument(
        "--backprop-view",
        default=VIEW_DEFAULTS["backprop_view"],
        metavar="VIEW",
        help="raw, gray, norm or normblur (default: the gradient's norm, blurred)",
    )
    unit.add_argument(
        "--class", dest="class_index", type=int, metavar="K", help="the class Grad-CAM explains (default: the top-1)"
    )
    unit.add_argument(
        "--gradcam-layer",
        metavar="LAYER",
        help="the layer Grad-CAM explains the class at (default: the last layer with maps)",
    )
    unit.add_argument(
        "--at",
        type=_point,
        metavar="X,Y",
        help="rank the layer's channels by their activation at this frame pixel (top 10)",
    )
    unit.add_argument(
        "--concepts",
        type=int,
        metavar="K",
        help="also write concepts.png: the layer cut into K concepts (2-12) by NMF, on the frame, with "
        "each one's top channels (and classes where the layer feeds the classifier)",
    )
    vit = render.add_argument_group("transformers")
    vit.add_argument(
        "--attention",
        default="heads",
        metavar="MODE",
        help="attention.png and attention_overlay.png: heads (default: every head at the layer's "
        "block), rollout (up to it) or off",
    )
    vit.add_argument(
        "--head", type=int, default=-1, metavar="H", help="the head drawn on the frame (default: the mean of the heads)"
    )
    vit.add_argument(
        "--query",
        type=_cell,
        metavar="ROW,COL",
        help="ask attention from this patch-grid cell (default: the class token)",
    )
    render.add_argument(
        "--all-frames",
        action="store_true",
        help="every frame of a video: DIR/overlay.mp4 and DIR/grid.mp4 (and backprop.mp4, concepts.mp4)",
    )
    render.add_argument("--json", action="store_true", help="one JSON object on stdout")
    render.set_defaults(handler=run)


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel X,Y (for example 120,80)") from None
    return x, y


def _cell(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a grid cell ROW,COL (for example 3,7)") from None
    if row < 0 or col < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a cell's row and column count from 0")
    return row, col


def run(args: argparse.Namespace) -> int:
    from livevis.app.sources.files import read_frame, scan_folder
    from livevis.models import Visualizer
    from livevis.models.errors import InputError, OptionError
    from livevis.models.render.base import grid_layout, tile_of
    from livevis.models.transformers.views import TRANSFORMER_VIEWS

    # bad input fails before a model loads
    options = _options(args)
    if args.all_frames:
        return _render_video(args)
    batch = Path(args.input).is_dir()
    if batch:
        if args.frame:
            raise InputError("--frame is for a video, not a folder of images")
        folder = scan_folder(args.input)
        images = folder.images
    else:
        first = read_frame(args.input, args.frame)
    if args.at is not None:
        if batch:
            raise InputError("--at is for one image or video frame, not a folder")
        height, width = first.shape[:2]
        if not (0 <= args.at[0] < width and 0 <= args.at[1] < height):
            raise InputError(f"--at {args.at[0]:g},{args.at[1]:g} is outside the frame ({width} x {height} pixels)")
    engine = load_engine(args)
    visualizer = Visualizer(engine, options)
    layer = visualizer.layer_info(options)
    visualizer.check_channel(layer, args.channel)
    if args.concepts is not None:
        from livevis.models.concepts import check_layer

        check_layer(layer, args.concepts)
    if args.class_index is not None and not 0 <= args.class_index < len(engine.categories):
        raise OptionError(
            f"class {args.class_index} is out of range: {engine.name} has classes 0..{len(engine.categories) - 1}"
        )
    natural = grid_layout(layer.channels, *tile_of(layer.shape))
    options = options.with_(grid_scale=max(1, 720 // max(natural.width, natural.height)))
    if engine.blocks:  # a transformer: its attention, token norms and prefix tokens as well
        _check_query(args.query, engine.block_of(layer) or layer)
        options = options.with_(views=(*options.views, *TRANSFORMER_VIEWS))
    written = ", activations.npz" if args.save_activations else ""
    header = f"{engine.name} [{engine.weights.label}] on {engine.device}: {layer.name} ({layer.path})"
    header += f" channel {args.channel}"
    if not batch:
        views = _render_to(Path(args.out), visualizer, first, options, args.save_activations)
        units = _units_at(visualizer, args.at, layer) if args.at is not None else None
        if args.json:
            print(json.dumps(_summary(engine, layer, views, units, Path(args.out), written), indent=1))
            return 0
        print(f"{header}, peak {views.peak.value:.3g} at frame x={views.peak.frame_xy[0]} y={views.peak.frame_xy[1]}")
        for rank, prediction in enumerate(views.top5, 1):
            print(f"{rank}. {prediction.label:<32} {prediction.probability:.4f}")
        if args.backprop in ("deconv", "guided") and views.values.get("backprop_rule_count") == 0:
            print(f"note: no ReLU in {engine.name} (GELU and the like): {args.backprop} is the plain gradient here")
        if views.values.get("attention_note"):
            print(f"attention: {views.values['attention_note']}")
        if "concepts_summary" in views.values:
            _print_concepts(views.values["concepts_summary"])
        if units is not None:
            print(f"units of {layer.name} at frame x={args.at[0]:g} y={args.at[1]:g} (cell {units['cell']}):")
            for rank, unit in enumerate(units["top"], 1):
                print(f"{rank:>2}. channel {unit['channel']:<5} {unit['value']:.4g}")
        print(f"wrote {args.out}/{', '.join(f'{name}.png' for name in views.images)}{written}")
        return 0
    print(header)
    rendered, folders = 0, set()
    for path in images:
        try:
            frame = read_frame(path)
        except InputError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            continue
        name = path.stem if path.stem not in folders else path.name  # a.jpg and a.png both keep a folder
        folders.add(name)
        views = _render_to(Path(args.out) / name, visualizer, frame, options, args.save_activations)
        best = views.top5[0]
        print(f"{path.name}: {best.label} {best.probability:.4f}, peak {views.peak.value:.3g} -> {args.out}/{name}/")
        if not rendered and views.values.get("attention_note"):  # the same for every image: said once
            print(f"attention: {views.values['attention_note']}")
        rendered += 1
    if folder.skipped:
        print(f"livevis: {folder.skipped_summary()}", file=sys.stderr)
    if not rendered:
        raise InputError(f"none of the {len(images)} images in {args.input} could be read")
    print(f"wrote {', '.join(f'{name}.png' for name in views.images)}{written} for {rendered} of {len(images)} images")
    return 0


def _check_query(query: tuple[int, int] | None, block) -> None:
    from livevis.models.errors import OptionError

    if query is not None and not (block.is_spatial and query[0] < block.shape[1] and query[1] < block.shape[2]):
        grid = " x ".join(map(str, block.shape[1:]))
        raise OptionError(f"--query {query[0]},{query[1]} is outside {block.name}'s {grid} patch grid")


def _units_at(visualizer, at: tuple[float, float], layer) -> dict:
    from livevis.models.errors import InputError

    if not layer.is_spatial:
        raise InputError(f"--at needs a layer with spatial maps; {layer.name} outputs {layer.shape[0]} values")
    ranked = visualizer.units_at(at, layer.path)
    if ranked is None:
        raise InputError(f"--at {at[0]:g},{at[1]:g} is outside the square the network sees (the dashed crop)")
    cell, units = ranked
    return {
        "x": at[0],
        "y": at[1],
        "cell": list(cell),
        "top": [{"channel": channel, "value": value} for channel, value in units],
    }


def _summary(engine, layer, views, units: dict | None, out: Path, written: str) -> dict:
    """What `--json` prints for one frame."""
    return {
        "model": engine.name,
        "weights": engine.weights.label,
        "layer": layer.path,
        "layer_name": layer.name,
        "channel": views.channel,
        "peak": {"value": views.peak.value, "cell": list(views.peak.cell), "frame_xy": list(views.peak.frame_xy)},
        "top5": [{"index": p.index, "label": p.label, "probability": p.probability} for p in views.top5],
        "units_at": units,
        "backprop_rule_count": views.values.get("backprop_rule_count"),
        "concepts": _concepts_json(views.values.get("concepts_summary")),
        "gradcam_class": views.values.get("backprop_class"),
        "attention": None
        if "attention_block" not in views.values
        else {
            "block": views.values["attention_block"],
            "mode": views.values["attention_mode"],
            "query": views.values["attention_query_cell"],
            "heads": views.values["attention_layout"].channels,
        },
        "attention_note": views.values.get("attention_note") or None,
        "token_outliers": views.values.get("token_outliers"),
        "written": [str(out / f"{name}.png") for name in views.images]
        + ([str(out / "activations.npz")] if written else []),
    }


def _print_concepts(summary) -> None:
    print(f"{len(summary.concepts)} concepts ({summary.milliseconds:.1f} ms); {summary.note}:")
    for number, concept in enumerate(summary.concepts, 1):
        classes = ", ".join(f"{label} {p:.2f}" for label, p in concept.classes)
        channels = ", ".join(str(c) for c, _ in concept.channels)
        named = f"; {classes}" if classes else ""
        print(f"{number:>2}. {concept.share:4.0%} of the map, channels {channels}{named}")


def _concepts_json(summary) -> list | None:
    if summary is None:
        return None
    return [
        {
            "colour": list(c.rgb),
            "share": c.share,
            "channels": [channel for channel, _ in c.channels],
            "classes": [{"label": label, "probability": p} for label, p in c.classes],
        }
        for c in summary.concepts
    ]


def _render_to(folder: Path, visualizer, frame, options, save_npz: bool):
    """One frame's views as PNGs (and the activations) in `folder`; concepts.png with its legend."""
    from livevis.models.data.output import output_folder, save_images
    from livevis.models.pipeline import save_activations

    views = visualizer.process(frame, options, with_activations=save_npz, frame_key=folder)
    out = output_folder(folder)
    images = dict(views.images)
    if "concepts" in images:
        from livevis.models.concepts.images import concepts_figure

        summary = views.values["concepts_summary"]
        title = f"{visualizer.engine.name} {views.layer.name}: {len(summary.concepts)} concepts"
        images["concepts"] = concepts_figure(images["concepts"], summary, title)
    save_images(out, images)
    if save_npz:
        save_activations(out / "activations.npz", views)
    return views


def _options(args: argparse.Namespace):
    from livevis.models import ViewOptions
    from livevis.models.views import DEFAULT_VIEWS

    concepts = (
        {}
        if args.concepts is None
        else {"views": (*DEFAULT_VIEWS, "concepts"), "concept_count": args.concepts, "concept_warm_start": False}
    )
    return ViewOptions(
        layer=args.layer,
        channel=args.channel,
        colormap=args.colormap,
        norm=args.norm,
        gamma=args.gamma,
        boost=args.boost,
        overlay_mode=args.overlay_mode,
        backprop=args.backprop,
        backprop_view=args.backprop_view,
        class_index=args.class_index,
        attention=args.attention,
        attention_head=args.head,
        attention_query=args.query,
        gradcam_layer=args.gradcam_layer,
        **concepts,
    )


def _render_video(args: argparse.Namespace) -> int:
    """Every frame of a video through the pipeline, written as one video per view, with a progress bar."""
    import cv2
    from tqdm import tqdm

    from livevis.app.sources.files import is_video_path
    from livevis.app.sources.network import is_stream_url
    from livevis.models import Visualizer
    from livevis.models.data.images import check_regular_file
    from livevis.models.data.videos import ViewVideos, open_video
    from livevis.models.errors import InputError

    if is_stream_url(args.input):
        raise InputError(
            "--all-frames is for a video file; a live stream has no last frame (without --all-frames, "
            "render takes its current frame)"
        )
    path = check_regular_file(args.input)
    if not is_video_path(path):
        raise InputError(f"--all-frames is for a video file; {path.name} is not one")
    capture = open_video(path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    options = _options(args)
    visualizer = Visualizer(load_engine(args), options)
    layer = visualizer.layer_info(options)
    visualizer.check_channel(layer, args.channel)
    views = ("grid", "overlay", "backprop", "peak")
    if args.concepts is not None:  # concepts.mp4: each frame's concepts follow the frames, as in the app
        from livevis.models.concepts import check_layer

        check_layer(layer, args.concepts)
        views, options = (*views, "concepts"), options.with_(concept_warm_start=True)
    options = options.with_(views=views)
    videos = ViewVideos(Path(args.out), fps if 1 <= fps <= 240 else 25.0)
    try:
        with tqdm(total=total or None, desc=path.name, unit="frame", disable=args.json) as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                views = visualizer.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), options)
                videos.write(views.images)
                bar.update()
    finally:
        capture.release()
        videos.close()
    if not videos.frames:
        raise InputError(f"{path}: no frame could be decoded")
    written = {str(p): videos.frames[p.stem] for p in videos.paths()}
    print(
        json.dumps({"written": written}, indent=1)
        if args.json
        else "wrote " + ", ".join(f"{p} ({n} frames)" for p, n in written.items())
    )
    return 0
