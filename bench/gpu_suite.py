"""Every benchmark a machine with a GPU should record, in one command, with the figures written down.

    python bench/gpu_suite.py                   # on the GPU (cuda), about 10 minutes
    python bench/gpu_suite.py --device cpu --quick   # the same steps, small, to check the script itself

Runs, on one device: the live pipeline against the bare forward (`livevis bench`) for AlexNet and
ResNet-152 with the whole grid, ResNet-152 with the guided backprop pane against the bare forward +
backward, a vision transformer with its attention views (torchvision's ViT-B/16 and timm's ViT-S/16),
a detector and a segmenter with their detections drawn (and Grad-CAM of a box), mining
(`bench/mine_speed.py`: ResNet-50 layer4 over 2,000 photos against the bare batched forward) and learning sparse
features (`bench/features_speed.py`: EfficientNet-Lite0 blocks.5.0.bn1.act over 204 photos, 4x, k 32).
Random weights throughout (the speed does not depend on them). Writes bench/results/NAME.json with
every report and NAME.md with the table the README quotes; prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

LIVE = [
    # (label, model, backprop)
    ("AlexNet, whole grid", "alexnet", "off"),
    ("ResNet-152, whole grid", "resnet152", "off"),
    ("ResNet-152, guided backprop pane", "resnet152", "guided"),
    ("ViT-B/16 (torchvision), attention views", "vit_b_16", "off"),
    ("ViT-S/16 (timm), attention views", "timm:vit_small_patch16_224", "off"),
    ("Faster R-CNN MobileNetV3 320 FPN, boxes drawn", "fasterrcnn_mobilenet_v3_large_320_fpn", "off"),
    ("Faster R-CNN MobileNetV3 320 FPN, Grad-CAM of a box", "fasterrcnn_mobilenet_v3_large_320_fpn", "gradcam"),
    ("LRASPP MobileNetV3, segmentation drawn", "lraspp_mobilenet_v3_large", "off"),
]


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def run_live(device: str, frames: int) -> list[dict]:
    from livevis.app.commands.bench import run_bench

    reports = []
    for label, model, backprop in LIVE:
        print(f"{label} ...", file=sys.stderr, flush=True)
        report = run_bench(
            model=model,
            weights="none",
            source="synthetic",
            frames=frames,
            device=device,
            progress=False,
            views=("backprop",) if backprop != "off" else (),
            settings={"backprop": backprop},
        )
        reports.append({"label": label, **report})
    return reports


def run_script(script: str, *args: str) -> str:
    """A benchmark script of this folder run in a process of its own; what it printed."""
    command = [sys.executable, str(HERE / script), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=HERE).stdout


def run_mining(device: str, quick: bool) -> dict:
    size, model, layer = ("64", "alexnet", "conv5") if quick else ("2000", "resnet50", "layer4")
    print(f"mining {size} photos with {model} {layer} ...", file=sys.stderr, flush=True)
    baseline, repeats = ("64", "1") if quick else ("512", "3")
    printed = run_script(
        "mine_speed.py",
        "--model",
        model,
        "--layer",
        layer,
        "--sizes",
        size,
        "--device",
        device,
        "--baseline-images",
        baseline,
        "--repeats",
        repeats,
    )
    return json.loads(printed)


def run_features(device: str, quick: bool) -> dict:
    photos, epochs = ("24", "1") if quick else ("204", "30")
    print(f"learning features on {photos} photos ...", file=sys.stderr, flush=True)
    printed = run_script("features_speed.py", "--device", device, "--photos", photos, "--epochs", epochs)
    return json.loads(printed[printed.index("{\n") :])  # the summary, after a line per run


def table(live: list[dict], mining: dict, features: dict) -> str:
    rows = [
        "| what | pipeline fps | baseline fps | overhead_ratio | pipeline p50 ms | baseline p50 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in live:
        rows.append(
            f"| {r['label']} ({r['baseline']}) | {r['fps']:.1f} | {r['bare_fps']:.1f} | "
            f"{r['overhead_ratio']:.3f} | {r['pipeline_ms']['p50']:.2f} | {r['bare_forward_ms']['p50']:.2f} |"
        )
    for size, m in mining["by_folder_size"].items():
        rows.append(
            f"| mining {size} images, {mining['model']} {mining['layer']} (images/s) | "
            f"{m['mined_images_per_s']} | {m['bare_forward_images_per_s']} | {m['ratio']} | | |"
        )
    for run in features["runs"]:
        rows.append(
            f"| features, {features['model']} {features['layer']}, {features['images']} photos, "
            f"{features['features']} features k {features['k']}, {run['epochs']} epochs | "
            f"{run['seconds']:.1f} s | explained variance {run['explained_variance']:.3f} | "
            f"dead {run['dead']:.3f} | | |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, mps or cpu")
    parser.add_argument("--quick", action="store_true", help="few frames and a small folder: checks the script")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder of the results (bench/results)")
    parser.add_argument("--name", help="file name of the results (default: device and date)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_suite: no CUDA GPU here; run it where there is one, or pass --device cpu --quick")
    frames = 10 if args.quick else 200
    started = time.strftime("%Y-%m-%d %H:%M")
    live = run_live(args.device, frames)
    mining = run_mining(args.device, args.quick)
    features = run_features(args.device, args.quick)
    text = table(live, mining, features)
    name = args.name or f"{args.device.replace(':', '')}-{time.strftime('%Y%m%d-%H%M')}"
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "started": started,
        "device": args.device,
        "device_name": device_name(args.device),
        "torch": torch.__version__,
        "frames": frames,
        "live": live,
        "mining": mining,
        "features": features,
    }
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
    header = f"{device_name(args.device)}, torch {torch.__version__}, {started}, {frames} frames a pipeline run"
    (args.out / f"{name}.md").write_text(f"{header}\n\n{text}\n")
    print(f"{header}\n\n{text}\n\nwrote {args.out / name}.json and .md")


if __name__ == "__main__":
    main()
