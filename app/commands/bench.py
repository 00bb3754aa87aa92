"""`livevis bench`: the live pipeline, headless, against the bare model forward on the same frames.

Both run in the same process on the same frames, interleaved frame by frame (alternating which goes
first), so machine drift hits both alike and their ratio is what to compare across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from itertools import count, cycle
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from livevis.app.commands.common import add_edit_options, add_model_options, add_view_options, asked_views, edits_from
from livevis.app.sources.files import VideoFileSource
from livevis.app.sources.synthetic import Resolution, synthetic_frames
from livevis.models import Engine, ViewOptions, Visualizer
from livevis.models.detection.outputs import DETECT, confident_random_detector
from livevis.models.errors import InputError
from livevis.models.layers import as_maps, layout_of
from livevis.views import live_views


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    bench.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_view_options(bench)
    add_edit_options(bench)
    bench.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The views the app shows by default, and those the arguments add (`--backprop guided` turns the
    backprop pane on, `--concepts 5` the concepts pane, `--view NAME` any other)."""
    views, settings = asked_views(args, ())
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
        views=views,
        settings=settings,
        edits=lambda engine: edits_from(args, engine),
    )
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


STAGES = ("decode", "preprocess", "forward", "forward+backward", "render", "copy")


def _frames(source: str, resolution: Resolution):
    """An endless iterator of frames plus a label; a video loops, synthetic frames cycle."""
    if source == "synthetic":
        return cycle(synthetic_frames(resolution)), f"synthetic {resolution.width}x{resolution.height}"
    video = VideoFileSource(Path(source))  # loops, and says so when no frame decodes
    return (video.read() for _ in count()), source


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values_ms, 50)), "p95": float(np.percentile(values_ms, 95))}


def run_bench(
    model: str = "alexnet",
    weights: str = "none",
    source: str = "synthetic",
    frames: int = 200,
    warmup: int = 10,
    resolution: str = "640x480",
    device: str = "auto",
    layer: str | None = None,
    view_size: str | None = None,
    progress: bool = True,
    views: tuple[str, ...] = (),
    settings: dict | None = None,
    edits=None,
) -> dict:
    """The views the app's Live tab computes by default for this model, plus `views`, with the view options
    `settings` (`{"backprop": "guided"}`). Where a view needs a backward pass (backprop), the baseline becomes
    the bare forward plus backward of the same model on the same input (the least such a view can cost). A
    view that times a part of its own work (`NAME_ms` among its values: the concepts' factorisation) has it
    reported as a stage, a part of render. `edits(engine)`: the edits the pipeline runs with (units switched
    off in the forward); the baseline stays the bare network."""
    if frames < 1:
        raise InputError("--frames must be 1 or more")
    size = Resolution.parse(resolution)
    shown = Resolution.parse(view_size) if view_size else None
    stream, label = _frames(source, size)  # a bad source fails before a model loads
    options = ViewOptions(views=("grid",), **(settings or {}))  # bad options fail before a model loads too
    engine = Engine.load(model, weights, device=device, progress=progress)
    if engine.task == DETECT and not engine.weights.trained:
        confident_random_detector(engine.model)  # boxes to draw and explain, as a trained detector gives
    options = options.with_(
        layer=layer,
        # a detector's or a segmenter's live tab opens its detections pane
        views=tuple(dict.fromkeys((*live_views(transformer=bool(engine.blocks)), *_opened_for(engine), *views))),
        display_size=shown and (shown.width, shown.height),
        edits=tuple(edits(engine)) if edits else (),
    )
    visualizer = Visualizer(engine, options)
    layer_info = visualizer.layer_info(options)
    layer_path = layer_info.path
    visualizer.check(options)
    backward = any(visualizer.producer(n).backward(engine, layer_info, options) for n in options.views)
    timed_by_views = [f"{name}_ms" for name in options.views]

    stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}
    pipeline_ms: list[float] = []
    bare_ms: list[float] = []

    def pipeline(frame_start: float) -> None:
        frame = next(stream)
        decoded = time.perf_counter()
        views = visualizer.process(frame)
        done = time.perf_counter()
        if timed:
            stage_ms["decode"].append((decoded - frame_start) * 1000)
            for stage, ms in views.timings_ms.items():
                stage_ms.setdefault(stage, []).append(ms)
            for name in timed_by_views:
                if name in views.values:
                    stage_ms.setdefault(name.removesuffix("_ms"), []).append(float(views.values[name]))
            pipeline_ms.append((done - frame_start) * 1000)

    def bare(x: torch.Tensor) -> None:
        start = time.perf_counter()
        if not backward:
            engine.forward(x)
        else:
            bare_forward_backward(engine.model, x, layer_path)
        if engine.device.type == "cuda":
            torch.cuda.synchronize()
        if timed:
            bare_ms.append((time.perf_counter() - start) * 1000)

    probe = synthetic_frames(size, count=1)[0] if source == "synthetic" else next(stream)
    with torch.inference_mode():
        bare_input, _ = engine.preprocess(engine.upload(probe))
    steps = range(warmup + frames)
    for step in tqdm(steps, desc="bench", unit="frame", disable=not progress, leave=False):
        timed = step >= warmup
        if step % 2:
            bare(bare_input)
            pipeline(time.perf_counter())
        else:
            pipeline(time.perf_counter())
            bare(bare_input)

    pipeline_p50 = float(np.percentile(pipeline_ms, 50))
    bare_p50 = float(np.percentile(bare_ms, 50))
    return {
        "model": engine.name,
        "weights": engine.weights.label,
        "device": str(engine.device),
        "device_name": torch.cuda.get_device_name(engine.device)
        if engine.device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "source": label,
        "view_size": view_size or f"{size.width}x{size.height}",
        "layer": visualizer.layer_info(options).name,
        "frames": frames,
        "fps": 1000.0 / pipeline_p50,
        "bare_fps": 1000.0 / bare_p50,
        "pipeline_ms": _percentiles(pipeline_ms),
        "bare_forward_ms": _percentiles(bare_ms),
        "stages_ms": {stage: _percentiles(values) for stage, values in stage_ms.items() if values},
        "overhead_ratio": pipeline_p50 / bare_p50,
        "options": {name: value for name, value in options.settings},
        "edits": [edit.describe() for edit in options.edits],
        "baseline": "bare forward + backward" if backward else "bare forward",
        "views": list(options.views),
    }


def _opened_for(engine: Engine) -> tuple[str, ...]:
    """The views the Live tab opens for this model beside its default ones: a detector's or a segmenter's boxes
    or classes."""
    return ("detections",) if engine.whole_frame else ()


def bare_forward_backward(model: torch.nn.Module, x: torch.Tensor, layer_path: str) -> None:
    """Plain autograd, no capture, no ReLU rule: the forward, then the backward from one channel of the
    layer to the input, seeded with its activation (what the backprop pane computes, at its least)."""
    tapped = {}
    handle = model.get_submodule(layer_path).register_forward_hook(lambda m, i, out: tapped.setdefault("out", out))
    try:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            model(leaf)
            out = as_maps(tapped["out"], layout_of(model, layer_path))
            torch.autograd.grad(out[:, :1], leaf, grad_outputs=out[:, :1].detach())
    finally:
        handle.remove()


def format_report(report: dict) -> str:
    lines = [
        f"{report['model']} [{report['weights']}] on {report['device']} ({report['device_name']}, "
        f"{report['torch_threads']} threads), {report['source']}, overlay {report['view_size']}, "
        f"layer {report['layer']}, {report['frames']} frames"
        + "".join(f", {name} {value}" for name, value in report["options"].items()),
        f"pipeline {report['fps']:.1f} fps, {report['baseline']} {report['bare_fps']:.1f} fps, "
        f"overhead_ratio {report['overhead_ratio']:.3f}",
        f"{'stage':<24}{'p50 ms':>9}{'p95 ms':>9}",
    ]
    rows = {**report["stages_ms"], "pipeline": report["pipeline_ms"], report["baseline"]: report["bare_forward_ms"]}
    lines += [f"{name:<24}{v['p50']:>9.2f}{v['p95']:>9.2f}" for name, v in rows.items()]
    return "\n".join(lines)
