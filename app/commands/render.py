"""`livevis render`: the views of one image, video frame or folder of images, as PNG files.

Which views are drawn, the flags that set their options, what is printed and saved of each: all of it comes
from the views' declarations (`livevis.views`), so a plug-in's view renders here as livevis's own do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livevis.app.commands.common import (
    add_edit_options,
    add_model_options,
    add_view_options,
    asked_views,
    edits_from,
    load_engine,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    render = commands.add_parser("render", help="render the views of one image or video frame to PNG files")
    render.add_argument(
        "input",
        metavar="INPUT",
        help="an image file, a video file, a folder of images, or a stream URL (http://PHONE:8080/video, "
        "rtsp://...: its current frame)",
    )
    add_model_options(render)
    render.add_argument("--layer", help="module path or friendly name (default: the model's default layer)")
    render.add_argument("--channel", type=int, default=0, help="selected channel (default: 0)")
    render.add_argument("--colormap", default="signed", help="signed (default), gray, viridis or inferno")
    render.add_argument("--norm", default="layer", help="layer (default) or channel normalisation")
    render.add_argument("--gamma", type=float, default=1.0, help="gamma boost, < 1 lifts weak responses")
    render.add_argument("--boost", type=float, default=0.0, help="per-channel boost in [0, 1]")
    render.add_argument("--overlay-mode", default="overlay", help="overlay (default) or mask")
    render.add_argument(
        "--class",
        dest="class_index",
        type=int,
        metavar="K",
        help="the class the explanations explain (Grad-CAM; default: the top-1)",
    )
    render.add_argument("--frame", type=int, default=0, metavar="N", help="frame of a video (default: 0)")
    render.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    render.add_argument(
        "--save-activations",
        action="store_true",
        help="also write DIR/activations.npz (input, activation, and what each view saves)",
    )
    render.add_argument(
        "--at",
        type=_point,
        metavar="X,Y",
        help="rank the layer's channels by their activation at this frame pixel (top 10)",
    )
    render.add_argument(
        "--all-frames",
        action="store_true",
        help="every frame of a video: one video per picture a recording keeps (overlay.mp4, "
        "grid.mp4, backprop.mp4, ...)",
    )
    render.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_view_options(render)
    add_edit_options(render)
    render.set_defaults(handler=run)


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel X,Y (for example 120,80)") from None
    return x, y


def run(args: argparse.Namespace) -> int:
    from livevis.app.sources.files import read_frame, scan_folder
    from livevis.models import Visualizer
    from livevis.models.errors import InputError, OptionError
    from livevis.models.render.base import grid_layout, tile_of

    options = _options(args)  # bad options fail before a model loads
    if args.all_frames:
        return _render_video(args)
    batch = Path(args.input).is_dir()
    if batch:
        if args.frame:
            raise InputError("--frame is for a video, not a folder of images")
        if args.at is not None:
            raise InputError("--at is for one image or video frame, not a folder")
        folder = scan_folder(args.input)
    else:
        first = read_frame(args.input, args.frame)
        if args.at is not None:
            height, width = first.shape[:2]
            if not (0 <= args.at[0] < width and 0 <= args.at[1] < height):
                raise InputError(f"--at {args.at[0]:g},{args.at[1]:g} is outside the frame ({width} x {height} pixels)")
    engine = load_engine(args)
    visualizer = Visualizer(engine, options)
    layer = visualizer.layer_info(options)
    visualizer.check_channel(layer, args.channel)
    classes = engine.categories or engine.class_names  # a segmenter's classes
    if args.class_index is not None and not 0 <= args.class_index < len(classes):
        raise OptionError(f"class {args.class_index} is out of range: {engine.name} has classes 0..{len(classes) - 1}")
    edits = edits_from(args, engine)
    options = options.with_(edits=edits, compare=bool(edits))
    visualizer.check(options)
    natural = grid_layout(layer.channels, *tile_of(layer.shape))
    options = options.with_(grid_scale=max(1, 720 // max(natural.width, natural.height)))
    header = f"{engine.name} [{engine.weights.label}] on {engine.device}: {layer.name} ({layer.path})"
    header += f" channel {args.channel}"
    if not batch:
        views, written = _render_to(Path(args.out), visualizer, first, options, args.save_activations)
        units = _units_at(visualizer, args.at, layer) if args.at is not None else None
        if args.json:
            print(json.dumps({**_about(visualizer, layer, views), "units_at": units, "written": written}, indent=1))
            return 0
        print(header)
        for line in _report(visualizer, views):
            print(line)
        if units is not None:
            print(f"units of {layer.name} at frame x={args.at[0]:g} y={args.at[1]:g} (cell {units['cell']}):")
            for rank, unit in enumerate(units["top"], 1):
                print(f"{rank:>2}. channel {unit['channel']:<5} {unit['value']:.4g}")
        print(f"wrote {args.out}/{', '.join(Path(name).name for name in written)}")
        return 0
    return _render_folder(args, visualizer, folder, options, header)


def _render_folder(args, visualizer, folder, options, header: str) -> int:
    """Each readable image of a folder into a folder of its own; a line (or, with --json, one object) for the
    whole run, the unreadable files with why."""
    from livevis.app.sources.files import read_frame
    from livevis.models.errors import InputError

    images, skipped, names = [], [{"file": str(s.path), "reason": s.reason} for s in folder.skipped], set()
    if not args.json:
        print(header)
    for path in folder.images:
        try:
            frame = read_frame(path)
        except InputError as exc:
            skipped.append({"file": str(path), "reason": str(exc)})
            if not args.json:
                print(f"skipped: {exc}", file=sys.stderr)
            continue
        name = path.stem if path.stem not in names else path.name  # a.jpg and a.png both keep a folder
        names.add(name)
        views, written = _render_to(Path(args.out) / name, visualizer, frame, options, args.save_activations)
        images.append({"file": str(path), **_about(visualizer, views.layer, views), "written": written})
        if not args.json:
            first_lines = [lines[0] for lines in _reports(visualizer, views) if lines]
            print(f"{path.name}: {'; '.join(first_lines)} -> {args.out}/{name}/")
    if args.json:
        print(json.dumps({"folder": str(args.input), "images": images, "skipped": skipped}, indent=1))
    elif folder.skipped:
        print(f"livevis: {folder.skipped_summary()}", file=sys.stderr)
    if not images:
        raise InputError(f"none of the {len(folder.images)} images in {args.input} could be read")
    if not args.json:
        files = ", ".join(Path(name).name for name in images[-1]["written"])
        print(f"wrote {files} for {len(images)} of {len(folder.images)} images")
    return 0


def _reports(visualizer, views) -> list[list[str]]:
    """What each view drawn says of the frame, view by view."""
    engine = visualizer.engine
    return [visualizer.producer(name).report(views.values, engine) for name in views.views if _drew(name, views)]


def _report(visualizer, views) -> list[str]:
    return [line for lines in _reports(visualizer, views) for line in lines]


def _about(visualizer, layer, views) -> dict:
    """What `--json` says of one frame: the model, the layer and the crop, and each view's summary."""
    engine = visualizer.engine
    about = {
        "model": engine.name,
        "weights": engine.weights.label,
        "layer": layer.path,
        "layer_name": layer.name,
        "channel": views.channel,
        "crop": views.crop.as_array().tolist(),
    }
    for name in views.views:
        about.update(visualizer.producer(name).summary(views.values) if _drew(name, views) else {})
    return about


def _drew(name: str, views) -> bool:
    """Whether a view gave anything for this frame (a transformer's view gives nothing for other networks)."""
    return name in views.drawn


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


def _render_to(folder: Path, visualizer, frame, options, save_npz: bool):
    """One frame's views as PNGs (as each view writes its pictures: concepts.png with its legend), and the
    activations, in `folder`; the views and the files written."""
    from livevis.models.data.output import output_folder, save_images
    from livevis.models.pipeline import save_activations

    views = visualizer.process(frame, options, with_activations=save_npz, frame_key=folder)
    out = output_folder(folder)
    title = f"{visualizer.engine.name} {views.layer.name}"
    images = dict(views.images)
    for name in views.views:
        images.update(visualizer.producer(name).for_file(images, views.values, title))
    save_images(out, images)
    written = [str(out / f"{name}.png") for name, image in images.items() if image.size]
    if save_npz:
        save_activations(out / "activations.npz", views)
        written.append(str(out / "activations.npz"))
    return views, written


def _options(args: argparse.Namespace, views: tuple[str, ...] | None = None):
    """The render request the arguments make: the views drawn by default and those asked for, each image on
    its own (`sequence=False`) unless `views` are given for the frames of a video."""
    from livevis.models import ViewOptions
    from livevis.models.pipeline import rendered_views

    asked, given = asked_views(args, rendered_views() if views is None else views)
    return ViewOptions(
        layer=args.layer,
        channel=args.channel,
        colormap=args.colormap,
        norm=args.norm,
        gamma=args.gamma,
        boost=args.boost,
        overlay_mode=args.overlay_mode,
        class_index=args.class_index,
        views=asked,
        sequence=views is not None,
        **given,
    )


def _render_video(args: argparse.Namespace) -> int:
    """Every frame of a video through the pipeline, written as one video per view, with a progress bar."""
    import cv2
    from tqdm import tqdm

    from livevis import views as declared
    from livevis.app.sources.network import is_stream_url
    from livevis.models import Visualizer
    from livevis.models.data.images import check_regular_file
    from livevis.models.data.videos import ViewVideos, is_video_path, open_video
    from livevis.models.errors import InputError
    from livevis.models.pipeline import rendered_views

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
    # the views that leave pictures in a recording, each frame following the last (as in the app)
    recorded = tuple(name for name in rendered_views() if declared.view(name).recorded)
    options = _options(args, recorded)
    options = options.with_(views=tuple(name for name in options.views if declared.view(name).recorded))
    kept = {picture for name in options.views for picture in declared.view(name).recorded}
    engine = load_engine(args)
    options = options.with_(edits=edits_from(args, engine))
    visualizer = Visualizer(engine, options)
    layer = visualizer.layer_info(options)
    visualizer.check_channel(layer, args.channel)
    visualizer.check(options)
    videos = ViewVideos(Path(args.out), fps if 1 <= fps <= 240 else 25.0)
    try:
        with tqdm(total=total or None, desc=path.name, unit="frame", disable=args.json) as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                views = visualizer.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), options)
                videos.write({name: image for name, image in views.images.items() if name in kept})
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
