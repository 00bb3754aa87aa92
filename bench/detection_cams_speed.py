"""Cost of explaining a detection or a segmented class over the bare passes it rests on, on a real 640x480 photo.

    python bench/detection_cams_speed.py [--frames 20] [--device cpu] [--threads N] [--no-peer] [--profile]

Models (random weights): fasterrcnn_mobilenet_v3_large_320_fpn (`box_score_thresh=0.0`, the explained box its
top detection, at `backbone.fpn:0`) and lraspp_mobilenet_v3_large (the class covering most pixels, at
`backbone:high`). Per frame, in turn:
(a) bare forward: the model in inference mode;
(b) EigenCAM: `explain_detection` / `explain_segmentation(method="eigencam")`; ratio (b) / (a), target <= 1.20;
(c) bare forward + backward: the forward with autograd, the box score (`box_score`) or the class score
    (`segmentation_class_score`), and `.backward()` to the parameters, as plain PyTorch code does it;
(d) Grad-CAM: `explain_*(method="gradcam")`; ratio (d) / (c), target <= 1.25, and (d) / (a).
With pytorch-grad-cam installed (`pip install grad-cam`; not a livevis dependency), its EigenCAM and its GradCAM
with FasterRCNNBoxScoreTarget / SemanticSegmentationTarget are timed in the same turns at the same layers (the
detector's at `backbone.fpn.layer_blocks[0]`, which outputs level 0). Prints the medians of the wall time and of
the process's CPU time; `--profile` adds torch.profiler's top operators of one Grad-CAM pass.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def _photo(device: str) -> torch.Tensor:
    import cv2
    from skimage import data

    frame = cv2.resize(data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    return (torch.from_numpy(frame).permute(2, 0, 1).float() / 255).to(device)


def _peer_cases(detector, segmenter, image, batch, box, label, class_index, mask) -> dict[str, Callable]:
    """pytorch-grad-cam's EigenCAM and GradCAM on the same inputs, or nothing where it is not installed."""
    try:
        from pytorch_grad_cam import EigenCAM, GradCAM
        from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget, SemanticSegmentationTarget
    except ImportError:
        return {}

    class SegmentationOut(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)["out"]

    # its gradient hook skips a module that outputs a dict (the FPN): the layer block that makes level 0 instead
    layers = [detector.backbone.fpn.layer_blocks[0]]
    det_eigen, det_grad = EigenCAM(detector, layers), GradCAM(detector, layers)
    box_target = [FasterRCNNBoxScoreTarget(labels=[label], bounding_boxes=[box.cpu().numpy()])]
    wrapped = SegmentationOut(segmenter)
    seg_layers = [segmenter.backbone.get_submodule("16")]  # the module whose output is backbone:high
    seg_eigen, seg_grad = EigenCAM(wrapped, seg_layers), GradCAM(wrapped, seg_layers)
    seg_target = [SemanticSegmentationTarget(class_index, mask.cpu().numpy().astype("float32"))]
    det_input = image[None]
    return {
        "det peer EigenCAM": lambda: det_eigen(det_input, targets=box_target),
        "det peer GradCAM": lambda: det_grad(det_input, targets=box_target),
        "seg peer EigenCAM": lambda: seg_eigen(batch, targets=seg_target),
        "seg peer GradCAM": lambda: seg_grad(batch, targets=seg_target),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-peer", action="store_true", help="leave pytorch-grad-cam out even if installed")
    parser.add_argument("--profile", action="store_true", help="torch.profiler's top operators of one Grad-CAM")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from torchvision.models import detection, segmentation

    from livevis.models.attribution import detection_cams as cams

    torch.manual_seed(0)
    detector = detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, box_score_thresh=0.0
    )
    detector = detector.eval().to(args.device)
    segmenter = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).eval().to(args.device)
    image = _photo(args.device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=args.device)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], device=args.device)[:, None, None]
    batch = ((image - mean) / std)[None]
    det_layer, seg_layer = "backbone.fpn:0", "backbone:high"

    with torch.inference_mode():
        first = detector([image])[0]
        out = segmenter(batch)["out"]
    box, label = first["boxes"][0].clone(), int(first["labels"][0])
    class_index = int(out[0].argmax(0).flatten().bincount(minlength=out.shape[1]).argmax())
    mask = out[0].argmax(0) == class_index

    def det_bare() -> None:
        with torch.inference_mode():
            detector([image])

    def det_bare_backward() -> None:
        detector.zero_grad(set_to_none=True)
        score, _, _ = cams.box_score(detector([image]), box, label)
        score.backward()

    def seg_bare() -> None:
        with torch.inference_mode():
            segmenter(batch)

    def seg_bare_backward() -> None:
        segmenter.zero_grad(set_to_none=True)
        cams.segmentation_class_score(segmenter(batch)["out"], class_index, mask).backward()

    cases: dict[str, Callable] = {
        "det bare forward": det_bare,
        "det EigenCAM": lambda: cams.explain_detection(detector, image, det_layer, box, label, method="eigencam"),
        "det bare forward+backward": det_bare_backward,
        "det Grad-CAM": lambda: cams.explain_detection(detector, image, det_layer, box, label, method="gradcam"),
        "seg bare forward": seg_bare,
        "seg EigenCAM": lambda: cams.explain_segmentation(segmenter, batch, seg_layer, class_index, method="eigencam"),
        "seg bare forward+backward": seg_bare_backward,
        "seg Grad-CAM": lambda: cams.explain_segmentation(
            segmenter, batch, seg_layer, class_index, method="gradcam", mask=mask
        ),
    }
    if not args.no_peer:
        cases.update(_peer_cases(detector, segmenter, image, batch, box, label, class_index, mask))

    explained = cases["det Grad-CAM"]()
    assert explained.index == 0 and float(explained.cam.max()) > 0, "the top box's Grad-CAM is empty"

    def timed(fn: Callable) -> tuple[float, float]:
        """(wall, CPU) seconds of one call, the device's queue drained before and after."""
        synchronize = torch.cuda.synchronize if image.device.type == "cuda" else (lambda: None)
        synchronize()
        start = (time.perf_counter(), time.process_time())
        fn()
        synchronize()
        return time.perf_counter() - start[0], time.process_time() - start[1]

    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.frames):  # in turns, so that the machine's drift hits every case alike
        for name, fn in cases.items():
            times[name].append(timed(fn))
    wall = {name: [w for w, _ in pairs] for name, pairs in times.items()}
    cpu = {name: [c for _, c in pairs] for name, pairs in times.items()}

    threads = torch.get_num_threads()
    print(f"device {args.device}, {threads} threads, 640x480 astronaut, {args.frames} frames, medians")
    print(f"{'case':28s} {'wall ms':>8s} {'cpu ms':>8s} {'wall ratio':>11s} {'cpu ratio':>10s}  against")
    for name in cases:
        model = name.split()[0]
        base = f"{model} bare forward+backward" if name.endswith(("Grad-CAM", "GradCAM")) else f"{model} bare forward"
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        bw, bc = statistics.median(wall[base]), statistics.median(cpu[base])
        against = "" if name == base else base
        print(f"{name:28s} {w * 1e3:8.1f} {c * 1e3:8.1f} {w / bw:11.2f} {c / bc:10.2f}  {against}")
    for model in ("det", "seg"):
        ratio = statistics.median(wall[f"{model} Grad-CAM"]) / statistics.median(wall[f"{model} bare forward"])
        print(f"{model} Grad-CAM / bare forward (wall): {ratio:.2f}")

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            cases["det Grad-CAM"]()
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
