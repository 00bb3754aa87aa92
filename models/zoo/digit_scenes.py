"""A small detector and a small segmenter of digits on real photos, trained by livevis, and the script that
trains the bundled weights:

    python -m livevis.models.zoo.digit_scenes --train detector --out assets/weights/digits_detector.pth
    python -m livevis.models.zoo.digit_scenes --train segmenter --init assets/weights/digits_detector.pth \
        --out assets/weights/digits_segmenter.pth
    python -m livevis.models.zoo.digit_scenes --evaluate detector      # the bundled weights, held-out scenes

Both are torchvision's own classes, so whatever handles torchvision's detectors and segmenters handles them:
`digits_detector()` is a `torchvision.models.detection.FasterRCNN` over a seven-layer convolutional backbone
with a feature pyramid (strides 8, 16 and 32, 64 channels; `min_size` 320, so a 640 x 480 frame is seen at
427 x 320), and `digits_segmenter()` a `torchvision.models.segmentation.FCN` whose backbone merges strides 16,
8 and 4 and returns `out` at stride 4 (the FCN upsamples it to the input's size). Categories: `CATEGORIES`
("__background__", "0", ..., "9"); the segmenter takes ImageNet-normalised input, as torchvision's.

They train on scenes of `models.data.digit_scenes` (real MNIST digits, 24-96 px tall, on real photos) and are
measured on 300 held-out 640 x 480 scenes: digits and photos no model trained on. The bundled weights:

- detector: mAP@0.5 0.770 over the 10 digits (AP from 0.59 for "1", whose thin boxes leave little room at IoU
  0.5, and 0.67 for "8" to 0.93 for "0"), after 25 minutes of training (2,073 steps of 8 scenes of 192 x 160)
  on two CPU cores shared with other work.
- segmenter: mean IoU 0.447 over the 11 classes (background 0.99), 0.393 over the 10 digits (0.30 for "2" to
  0.49 for "0"), after 25 minutes of training (1,074 steps of 12 scenes of 160 x 128) from the detector's trained
  body, and its background logit raised by 3.5 as `calibrate_background` chose on training scenes (0.348 and
  0.285 before).

A 640 x 480 frame takes the detector about 0.8 and the segmenter about 1.2 times ResNet-18's forward at
224 x 224 (21 and 31 ms on two CPU cores; bench/digit_scenes_speed.py). The figures are in `HELD_OUT_FIGURES`,
in each weights file (under "metrics"; `weights_metrics`) and in bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.segmentation import FCN
from torchvision.ops import MultiScaleRoIAlign, box_iou
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from livevis.assets import ASSETS_DIR

from ..data.digit_scenes import CATEGORIES, Scene, make_scene
from ..errors import WeightsError

DETECTOR_WEIGHTS = ASSETS_DIR / "weights" / "digits_detector.pth"
SEGMENTER_WEIGHTS = ASSETS_DIR / "weights" / "digits_segmenter.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_CLASSES = len(CATEGORIES)

HELD_OUT_SCENES = 300
HELD_OUT_SEED = 1_000_000
"""Held-out scene i is `make_scene(HELD_OUT_SEED + i, "held_out")`: 640 x 480, 2-6 digits, 24-96 px tall."""

HELD_OUT_FIGURES: dict[str, dict[str, float]] = {
    "detector": {"mAP@0.5": 0.770},
    "segmenter": {"mean IoU": 0.447, "mean IoU digits": 0.393},
}
"""The bundled weights on the 300 held-out scenes (`--evaluate`)."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _stages(widths: Sequence[int], depths: Sequence[int]) -> nn.Sequential:
    """A plain convolutional body: a stride-2 stem, then stages that each halve the resolution (strides 4, 8,
    16), named stem, layer1, layer2, ... for `IntermediateLayerGetter`."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=_conv(3, widths[0], 2))
    for index, (cin, cout, depth) in enumerate(zip(widths, widths[1:], depths, strict=False), start=1):
        layers[f"layer{index}"] = nn.Sequential(_conv(cin, cout, 2), *(_conv(cout, cout) for _ in range(depth - 1)))
    return nn.Sequential(layers)


BODY_WIDTHS, BODY_DEPTHS = (16, 32, 64, 128), (2, 3, 2)
"""The convolutional body both models share (7 convolutions, strides 2 to 16), so that the segmenter can start
from the detector's trained body."""


def _load(model: nn.Module, path: Path, train: str) -> nn.Module:
    from .weights import read_state_dict

    if not Path(path).is_file():
        command = f"python -m livevis.models.zoo.digit_scenes --train {train}"
        raise WeightsError(f"{path} is missing; train it with {command}")
    model.load_state_dict(read_state_dict(path))
    return model.eval()


def digits_detector(weights: Path | None = DETECTOR_WEIGHTS) -> FasterRCNN:
    """torchvision's Faster R-CNN over a small backbone with a feature pyramid, trained on digit scenes
    (`weights=None`: random weights)."""
    body = _stages(BODY_WIDTHS, BODY_DEPTHS)
    backbone = BackboneWithFPN(
        body, {"layer2": "0", "layer3": "1"}, [64, 128], 64, extra_blocks=LastLevelMaxPool(), norm_layer=None
    )
    anchors = AnchorGenerator(((12, 20), (28, 40), (56, 80)), ((1.0, 2.0, 4.0),) * 3)
    model = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=320,
        max_size=640,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=150,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2),
        box_head=TwoMLPHead(64 * 7 * 7, 128),
        box_predictor=FastRCNNPredictor(128, NUM_CLASSES),
        box_batch_size_per_image=64,
        box_detections_per_img=30,
    )
    return model if weights is None else _load(model, weights, "detector")


class PyramidBackbone(nn.Module):
    """A small convolutional body whose strides 16, 8 and 4 are merged top-down (as a feature pyramid) into one
    map at stride 4: `{"out": N x 32 x H/4 x W/4}`, what torchvision's segmentation heads take."""

    def __init__(self, widths: Sequence[int] = BODY_WIDTHS, channels: int = 32):
        super().__init__()
        self.body = _stages(widths, BODY_DEPTHS)
        self.lateral = nn.ModuleList(nn.Conv2d(width, channels, 1) for width in widths[1:])
        self.smooth = nn.ModuleList(_conv(channels, channels) for _ in widths[1:-1])

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = []
        for name, stage in self.body.named_children():
            x = stage(x)
            if name != "stem":
                features.append(x)
        merged = self.lateral[-1](features[-1])
        for lateral, smooth, feature in zip(
            reversed(self.lateral[:-1]), reversed(self.smooth), reversed(features[:-1]), strict=True
        ):
            merged = smooth(lateral(feature) + F.interpolate(merged, size=feature.shape[-2:], mode="nearest"))
        return OrderedDict(out=merged)


def digits_segmenter(weights: Path | None = SEGMENTER_WEIGHTS) -> FCN:
    """torchvision's FCN over `PyramidBackbone` (stride 4), trained on digit scenes (`weights=None`: random)."""
    classifier = nn.Sequential(_conv(32, 32), nn.Conv2d(32, NUM_CLASSES, 1))
    model = FCN(PyramidBackbone(), classifier)
    return model if weights is None else _load(model, weights, "segmenter")


def weights_metrics(path: Path) -> dict[str, float]:
    """The held-out figures recorded in a weights file by the training script."""
    return dict(torch.load(path, map_location="cpu", weights_only=True).get("metrics", {}))


# ---- training and evaluation ------------------------------------------------------------------------------


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 RGB -> 3 x H x W float in [0, 1], what torchvision's detectors take."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W in [0, 1] -> ImageNet-normalised, what the segmenter takes."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def held_out_scenes(count: int = HELD_OUT_SCENES) -> Iterable[Scene]:
    return (make_scene(HELD_OUT_SEED + i, "held_out") for i in range(count))


def average_precision(
    detections: Sequence[dict[str, torch.Tensor]], truths: Sequence[Scene], iou: float = 0.5
) -> dict[int, float]:
    """Per class, the area under the precision-recall curve (all points, precision made monotone, as VOC 2010+
    and COCO): detections ranked by score over all scenes, each a true positive when it overlaps a not yet
    matched ground-truth box of its class by `iou` or more (best overlap first, COCO-style)."""
    aps = {}
    for label in range(1, NUM_CLASSES):
        scores, hits, positives = [], [], 0
        for found, truth in zip(detections, truths, strict=True):
            true_boxes = torch.from_numpy(truth.boxes[truth.labels == label])
            positives += len(true_boxes)
            keep = found["labels"] == label
            boxes, confidence = found["boxes"][keep], found["scores"][keep]
            order = confidence.argsort(descending=True)
            overlaps = box_iou(boxes[order], true_boxes) if len(true_boxes) else torch.zeros(len(order), 0)
            taken = torch.zeros(len(true_boxes), dtype=torch.bool)
            for row, score in zip(overlaps, confidence[order], strict=True):
                row = row.masked_fill(taken, -1.0)
                hit = bool(len(row)) and float(row.max()) >= iou
                if hit:
                    taken[row.argmax()] = True
                scores.append(float(score))
                hits.append(hit)
        if positives == 0:
            continue
        ranked = np.asarray(hits, bool)[np.argsort(-np.asarray(scores), kind="stable")]
        true_pos = np.cumsum(ranked)
        precision = true_pos / np.arange(1, len(ranked) + 1)
        recall = true_pos / positives
        precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone: the best precision at this recall or more
        steps = np.diff(np.concatenate([[0.0], recall]))
        aps[label] = float((steps * precision).sum())
    return aps


def confusion(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """NUM_CLASSES x NUM_CLASSES pixel counts: rows the truth, columns the prediction."""
    index = truth.astype(np.int64).ravel() * NUM_CLASSES + predicted.astype(np.int64).ravel()
    return np.bincount(index, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def class_iou(matrix: np.ndarray) -> np.ndarray:
    """Each class's intersection over union from a confusion matrix (NaN where a class is absent)."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


@torch.no_grad()
def evaluate_detector(model: FasterRCNN, scenes: Iterable[Scene]) -> dict[str, float]:
    model.eval()
    device = next(model.parameters()).device
    scenes = list(scenes)
    detections = []
    for scene in scenes:
        (found,) = model([to_tensor(scene.image).to(device)])
        detections.append({key: value.cpu() for key, value in found.items()})
    aps = average_precision(detections, scenes)
    return {"mAP@0.5": float(np.mean(list(aps.values()))), "scenes": len(scenes)} | {
        f"AP@0.5 {CATEGORIES[k]}": v for k, v in aps.items()
    }


@torch.no_grad()
def segment(model: FCN, image: np.ndarray) -> np.ndarray:
    """The class map (H x W uint8) a segmenter gives an RGB frame."""
    device = next(model.parameters()).device
    logits = model(normalise(to_tensor(image)[None].to(device)))["out"]
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


@torch.no_grad()
def evaluate_segmenter(model: FCN, scenes: Iterable[Scene]) -> dict[str, float]:
    model.eval()
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    count = 0
    for scene in scenes:
        matrix += confusion(segment(model, scene.image), scene.class_map)
        count += 1
    ious = class_iou(matrix)
    return {"mean IoU": float(np.nanmean(ious)), "mean IoU digits": float(np.nanmean(ious[1:])), "scenes": count} | {
        f"IoU {name}": float(v) for name, v in zip(CATEGORIES, ious, strict=True)
    }


BACKGROUND_OFFSETS = tuple(0.5 * step for step in range(11))
"""The raises of the background's logit `calibrate_background` tries: 0 to 5."""


@torch.no_grad()
def calibrate_background(model: FCN, scenes: int = 40, offsets: Sequence[float] = BACKGROUND_OFFSETS) -> float:
    """Adds to the background's logit (the classifier's last bias) the offset, of `offsets`, that gives the best
    mean IoU on `scenes` 640 x 480 training scenes, and returns it. The loss weighs the digits 4 to 1 and its
    Dice term rewards covering them, which makes the masks fatter than the ink; raising the background's score
    undoes that, as a prior correction (log 4 = 1.39 for the weights alone). Training scenes only: the
    held-out figures stay held out."""
    model.eval()
    matrices = {offset: np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64) for offset in offsets}
    device = next(model.parameters()).device
    for index in range(scenes):
        scene = make_scene(CALIBRATION_SEED + index, "train")
        logits = model(normalise(to_tensor(scene.image)[None].to(device)))["out"][0]
        for offset, matrix in matrices.items():
            shifted = logits.clone()
            shifted[0] += offset
            matrix += confusion(shifted.argmax(0).cpu().numpy(), scene.class_map)
    best = max(offsets, key=lambda offset: np.nanmean(class_iou(matrices[offset])))
    model.classifier[-1].bias[0] += best
    return float(best)


CALIBRATION_SEED = 5_000_000
"""Training scenes from this seed on calibrate the segmenter (training itself draws seeds below it)."""


def _detector_loss(model: FasterRCNN, scenes: list[Scene], device: torch.device) -> torch.Tensor:
    images = [to_tensor(scene.image).to(device) for scene in scenes]
    targets = [
        {"boxes": torch.from_numpy(s.boxes).to(device), "labels": torch.from_numpy(s.labels).to(device)} for s in scenes
    ]
    return sum(model(images, targets).values())


def _segmenter_loss(model: FCN, scenes: list[Scene], device: torch.device) -> torch.Tensor:
    """Cross-entropy with the digits weighted 4 to 1 against the background (which covers about 97% of the
    pixels), plus a soft Dice loss over the digit classes present, which rewards overlap directly."""
    images = normalise(torch.stack([to_tensor(s.image) for s in scenes]).to(device))
    truth = torch.from_numpy(np.stack([s.class_map for s in scenes])).long().to(device)
    logits = model(images)["out"]
    weight = torch.full((NUM_CLASSES,), 4.0, device=device)
    weight[0] = 1.0
    cross_entropy = F.cross_entropy(logits, truth, weight=weight)
    probabilities = logits.softmax(1)
    one_hot = F.one_hot(truth, NUM_CLASSES).permute(0, 3, 1, 2).float()
    inter = (probabilities * one_hot).sum((0, 2, 3))
    total = probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    present = one_hot.sum((0, 2, 3))[1:] > 0
    dice = (2 * inter[1:] + 1) / (total[1:] + 1)
    return cross_entropy + (1 - dice[present]).mean()


TRAINING = {
    # kind: (factory, scene options, batch, learning rate, loss, evaluation)
    "detector": (
        digits_detector,
        {"size": (192, 160), "digits": (1, 3), "ink_heights": (16, 64)},
        8,
        2e-3,
        _detector_loss,
        evaluate_detector,
    ),
    "segmenter": (
        digits_segmenter,
        {"size": (160, 128), "digits": (1, 2), "ink_heights": (24, 96)},
        12,
        3e-3,
        _segmenter_loss,
        evaluate_segmenter,
    ),
}
"""Both train on small scenes (crops, in effect) at the scale they see a 640 x 480 frame: the detector at its
own input's scale (its `min_size` 320 makes a frame's 24-96 px ink 16-64 px tall; it trains with `min_size` set
to the scenes' height, so that they are not resized), the segmenter at the frame's, since it does not resize."""


def train(
    kind: str,
    minutes: float,
    seed: int = 0,
    device: str = "cpu",
    scenes: int = HELD_OUT_SCENES,
    init: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[nn.Module, dict[str, float]]:
    """AdamW on freshly generated training scenes for `minutes` of wall time, the learning rate warmed up over
    the first 3% and then on a cosine by the time spent; returns the model and its held-out figures. `init`: a
    weights file of either model whose body (`backbone.body.*`) to start from."""
    from .weights import read_state_dict

    build, options, batch, max_lr, loss_of, evaluate = TRAINING[kind]
    torch.manual_seed(seed)
    model = build(None).to(device)
    if init is not None:
        body = {k: v for k, v in read_state_dict(init).items() if k.startswith("backbone.body.")}
        model.load_state_dict(body, strict=False)
        log(f"started from the {len(body)} tensors of the body in {init}")
    transform = getattr(model, "transform", None)
    if transform is not None:
        transform.min_size = (options["size"][1],)  # train at the input's own scale; 320 again to evaluate
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=1e-4)
    budget, start, step, recent = minutes * 60.0, time.perf_counter(), 0, []
    while (progress := (time.perf_counter() - start) / budget) < 1.0:
        lr = max_lr * min(1.0, progress / 0.03) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        generated = [make_scene(seed * 10_000_000 + step * batch + i, "train", **options) for i in range(batch)]
        loss = loss_of(model, generated, torch.device(device))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        recent.append(loss.item())
        step += 1
        if step % 50 == 0:
            log(f"step {step}  {100 * progress:.0f}%  lr {lr:.2e}  loss {np.mean(recent):.4f}")
            recent = []
        if step % 300 == 0:
            log("  held-out (20 scenes): " + _summary(_evaluated(model, evaluate, 20)))
    log(f"{step} steps of {batch} scenes in {(time.perf_counter() - start) / 60:.1f} min")
    if kind == "segmenter":
        log(f"background logit raised by {calibrate_background(model):.1f} (calibrated on training scenes)")
    log("evaluating on held-out scenes")
    return model, _evaluated(model, evaluate, scenes)


def _evaluated(model: nn.Module, evaluate: Callable, scenes: int) -> dict[str, float]:
    transform = getattr(model, "transform", None)
    training_size = transform.min_size if transform is not None else None
    if transform is not None:
        transform.min_size = (320,)
    try:
        return evaluate(model, held_out_scenes(scenes))
    finally:
        if transform is not None:
            transform.min_size = training_size


def _summary(figures: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in figures.items() if k in ("mAP@0.5", "mean IoU", "mean IoU digits"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train or measure the digit-scene detector and segmenter.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--train", choices=sorted(TRAINING))
    action.add_argument("--evaluate", choices=sorted(TRAINING))
    action.add_argument("--calibrate", type=Path, metavar="WEIGHTS", help="calibrate a trained segmenter's file")
    parser.add_argument("--minutes", type=float, default=25.0, help="training time (wall clock)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument("--scenes", type=int, default=HELD_OUT_SCENES, help="held-out scenes to evaluate on")
    parser.add_argument("--out", type=Path, help="where to save the trained weights")
    parser.add_argument("--init", type=Path, help="start from the body of this weights file (e.g. the detector's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.evaluate:
        build, *_, evaluate = TRAINING[args.evaluate]
        figures = evaluate(build().to(args.device), held_out_scenes(args.scenes))
        print("\n".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in figures.items()))
        return
    if args.calibrate:
        model = digits_segmenter(args.calibrate).to(args.device)
        print(f"background logit raised by {calibrate_background(model):.1f} (calibrated on training scenes)")
        figures = evaluate_segmenter(model, held_out_scenes(args.scenes))
        args.train = "segmenter"
    else:
        model, figures = train(args.train, args.minutes, args.seed, args.device, args.scenes, args.init)
    print("held-out: " + _summary(figures))
    print("\n".join(f"  {k}: {v:.4f}" for k, v in figures.items() if isinstance(v, float)))
    out = args.out or (DETECTOR_WEIGHTS if args.train == "detector" else SEGMENTER_WEIGHTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "metrics": {k: float(v) for k, v in figures.items()}}, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
