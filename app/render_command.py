"""`livevis render`: the views of one image, video frame or folder of images, as PNG files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from livevis.app.cli import add_model_options, load_engine


def add_parser(commands: argparse._SubParsersAction) -> None:
    render = commands.add_parser("render", help="render the views of one image or video frame to PNG files")
    render.add_argument("input", metavar="INPUT", help="an image file, a video file, or a folder of images")
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

    render.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from livevis.app.sources import read_frame, scan_folder
    from livevis.models import ViewOptions, Visualizer
    from livevis.models.errors import InputError
    from livevis.models.render import grid_layout, tile_of

    # bad input fails before a model loads
    batch = Path(args.input).is_dir()
    if batch:
        if args.frame:
            raise InputError("--frame is for a video, not a folder of images")
        folder = scan_folder(args.input)
        images = folder.images
    else:
        first = read_frame(args.input, args.frame)
    options = ViewOptions(
        layer=args.layer,
        channel=args.channel,
        colormap=args.colormap,
        norm=args.norm,
        gamma=args.gamma,
        boost=args.boost,
        overlay_mode=args.overlay_mode,
    )
    engine = load_engine(args)
    visualizer = Visualizer(engine, options)
    layer = visualizer.layer_info(options)
    visualizer.check_channel(layer, args.channel)
    natural = grid_layout(layer.channels, *tile_of(layer.shape))
    options = options.with_(grid_scale=max(1, 720 // max(natural.width, natural.height)))
    written = ", activations.npz" if args.save_activations else ""
    header = f"{engine.name} [{engine.weights.label}] on {engine.device}: {layer.name} ({layer.path})"
    header += f" channel {args.channel}"
    if not batch:
        views = _render_to(Path(args.out), visualizer, first, options, args.save_activations)
        print(f"{header}, peak {views.peak.value:.3g} at frame x={views.peak.frame_xy[0]} y={views.peak.frame_xy[1]}")
        for rank, prediction in enumerate(views.top5, 1):
            print(f"{rank}. {prediction.label:<32} {prediction.probability:.4f}")
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
        rendered += 1
    if folder.skipped:
        print(f"livevis: {folder.skipped_summary()}", file=sys.stderr)
    if not rendered:
        raise InputError(f"none of the {len(images)} images in {args.input} could be read")
    print(f"wrote {', '.join(f'{name}.png' for name in views.images)}{written} for {rendered} of {len(images)} images")
    return 0


def _render_to(folder: Path, visualizer, frame, options, save_npz: bool):
    """One frame's views as PNGs (and the activations) in `folder`."""
    from livevis.models.pipeline import output_folder, save_activations, save_images

    views = visualizer.process(frame, options, with_activations=save_npz)
    out = output_folder(folder)
    save_images(out, views.images)
    if save_npz:
        save_activations(out / "activations.npz", views)
    return views
