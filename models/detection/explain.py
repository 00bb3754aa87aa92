"""Why a detector found a box, or a segmenter a class, in the live pipeline's one pass.

EigenCAM (the chosen layer's first principal component) needs nothing but the forward: the layer is captured
with the others. Grad-CAM needs one backward, from the target to the layer, in the same pass: the box's score
as pytorch-grad-cam's FasterRCNNBoxScoreTarget defines it (the score of this frame's box of the same label
that overlaps the target by IoU > 0.5, plus that IoU), or a class's logits summed over its mask
(SemanticSegmentationTarget). The target box is followed from frame to frame by IoU. The targets and the maps
themselves are `attribution.detection_cams`'.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from ..layers import ActivationCapture
from .outputs import DETECT, SEGMENT, last_detections

EXPLANATIONS = ("eigencam", "gradcam")


def cams():
    """The targets and maps (imported when first used: they need torchvision's box operations)."""
    from ..attribution import detection_cams

    return detection_cams


@dataclass(frozen=True)
class TargetRequest:
    """Grad-CAM of a detection or a segmentation class at `layer_path`, in the pass that finds them.

    A detector's target is `box` (x0, y0, x1, y1, label; followed from the frame before), else this frame's
    detection number `box_index`, else its top-scoring one. A segmenter's is `class_index`, else the class
    (not the background) that covers most pixels."""

    layer_path: str
    task: str
    box: tuple[float, ...] | None = None
    box_index: int | None = None
    class_index: int | None = None


@dataclass(frozen=True)
class TargetPass:
    """One forward with its backward half, as `forward_backward`'s `PassResult` (which the engine reads)."""

    logits: torch.Tensor
    activations: dict[str, torch.Tensor]
    prefix_tokens: dict[str, torch.Tensor]
    cam: torch.Tensor
    """h x w Grad-CAM at the layer, >= 0, not normalised."""
    index: int | None
    """The detection explained (None: lost); a segmenter's: the class explained."""
    iou: float
    score: float
    gradient = None
    rule_count = 0


def detection_target(
    detections: dict[str, torch.Tensor], request: TargetRequest
) -> tuple[torch.Tensor | None, int | None]:
    """The target box (4) and its label for this frame's detections, as the request names it."""
    boxes, labels = detections["boxes"], detections["labels"]
    if request.box is not None:
        return torch.tensor(request.box[:4], dtype=boxes.dtype, device=boxes.device), int(request.box[4])
    index = request.box_index if request.box_index is not None else (0 if len(boxes) else None)
    if index is None or index >= len(boxes):
        return None, None
    return boxes[index].detach(), int(labels[index])


def target_pass(model: nn.Module, x: torch.Tensor, capture_paths: Sequence[str], request: TargetRequest) -> TargetPass:
    """The forward the views need and Grad-CAM of the request's target at its layer, from one pass."""
    found = cams()
    with torch.inference_mode(False), torch.enable_grad():
        leaf = x.detach().clone()
        module, key = found.split_layer(model, request.layer_path)
        with found.LayerKeep(module, key, request.layer_path) as keep:
            with ActivationCapture(model, capture_paths) as capture:
                logits = model(leaf)
        index, iou = None, 0.0
        if request.task == DETECT:
            detections = last_detections(model)[0]
            box, label = detection_target(detections, request)
            score = logits.sum() * 0.0
            if box is not None:
                score, iou, index = found.box_score([detections], box, label)
        else:
            index = request.class_index if request.class_index is not None else dominant_class(logits[0])
            score = found.segmentation_class_score(logits, index, None)
        activation = keep.activation
        gradient = None
        if score.requires_grad:
            (gradient,) = torch.autograd.grad(score, activation, allow_unused=True)
        gradient = torch.zeros_like(activation) if gradient is None else gradient
        cam = found.gradcam_from(activation[0].detach(), gradient[0].detach())
    return TargetPass(
        logits.detach(), capture.activations, capture.prefix_tokens, cam, index, float(iou), float(score.detach())
    )


def dominant_class(out: torch.Tensor) -> int:
    """The class (not the background, 0) whose pixels are most in a K x H x W segmentation; 0 where only the
    background is seen."""
    counts = out.detach().argmax(0).flatten().bincount(minlength=out.shape[0])
    counts[0] = -1 if counts[1:].sum() > 0 else counts[0]
    return int(counts.argmax())


def covered_share(model: nn.Module) -> tuple[float, float]:
    """The share of a detector's layer maps that the image covers, from the top left (its transform pads the
    resized image to a multiple of its stride), at its last call on this thread; (1, 1) for other models."""
    return getattr(_COVERED, "value", (1.0, 1.0)) if hasattr(model, "transform") else (1.0, 1.0)


_COVERED = threading.local()


def watch_padding(model: nn.Module) -> None:
    """A hook on a detector's `transform` that reads how much of its padded batch the image covers."""
    transform = getattr(model, "transform", None)
    if transform is None:
        return

    def hook(_module, _inputs, output):
        images = output[0] if isinstance(output, tuple) else output
        sizes, tensors = getattr(images, "image_sizes", None), getattr(images, "tensors", None)
        if sizes and tensors is not None:
            (height, width), (padded_h, padded_w) = sizes[0], tensors.shape[-2:]
            _COVERED.value = (height / padded_h, width / padded_w)

    transform.register_forward_hook(hook)


class TargetExplanations:
    """The selected detection (or class) explained at one layer, frame after frame: what the pass is asked
    (`request`), the map drawn on the frame (`render`), the box followed by IoU into the next frame.

    A box clicked in the window (`box_target`) starts it; `box` (render's `--box K`) names this frame's
    detection K; with neither, the top-scoring detection (a segmenter: `class_index`, else the class that
    covers most pixels). EigenCAM is the layer's first principal component (the whole frame's); the box it
    follows is marked on the picture."""

    def __init__(self, layer_path: str, task: str):
        self.layer_path = layer_path
        self.task = task
        self.tracked: tuple[float, ...] | None = None
        """The box followed: x0, y0, x1, y1 in frame pixels and its label."""
        self._source: tuple[float, ...] | None = None

    def request(self, options) -> TargetRequest | None:
        target = options["box_target"]
        if target != self._source:
            self._source = self.tracked = target
        if options["backprop"] != "gradcam" or self.task not in (DETECT, SEGMENT):
            return None
        box = self.tracked if options["box"] is None else None
        return TargetRequest(self.layer_path, self.task, box, options["box"], options.class_index)

    def _followed(self, detections: dict[str, torch.Tensor], options) -> int | None:
        """EigenCAM's box on this frame: `box`, else the followed box's match, else the top-scoring one."""
        boxes, labels = detections["boxes"], detections["labels"]
        if options["box"] is not None:
            return options["box"] if options["box"] < len(boxes) else None
        if self.tracked is not None:
            return cams().track_box(torch.tensor(self.tracked[:4]), int(self.tracked[4]), boxes, labels)
        return 0 if len(boxes) else None

    def render(self, ctx, draw) -> dict:
        result, options = ctx.result, ctx.options
        method = options["backprop"]
        passed = result.backward if isinstance(result.backward, TargetPass) else None
        iou = score = 0.0
        if passed is not None:
            cam, index, iou, score = passed.cam, passed.index, passed.iou, passed.score
        else:
            activation = result.activations[self.layer_path]
            cam = cams().eigencam(activation[0] if activation.dim() == 4 else activation).clamp(min=0)
            index = None
            if self.task == DETECT:
                index = self._followed(result.detections, options)
            elif self.task == SEGMENT:
                index = options.class_index if options.class_index is not None else dominant_class(result.logits[0])
        out = {
            "explained_task": self.task,
            "explained_method": method,
            "explained_layer": self.layer_path,
            "explained_index": index,
            "explained_iou": iou,
            "explained_score": score,
        }
        ctx.memory["followed_box"] = index  # the detections view marks it
        if self.task == DETECT and index is not None:
            box = result.detections["boxes"][index]
            self.tracked = (*(float(v) for v in box), float(result.detections["labels"][index]))
            out["explained_box"] = box
        high, wide = result.covered
        shown = cam[: max(1, math.ceil(cam.shape[0] * high - 1e-6)), : max(1, math.ceil(cam.shape[1] * wide - 1e-6))]
        out["backprop"] = draw(ctx, shown)
        if ctx.with_arrays:
            out[f"{method}_map"] = cam.float()
        return out

    @staticmethod
    def finish(host, ctx) -> dict:
        """The followed box outlined on the picture (in white)."""
        out = dict(host)
        box = host.get("explained_box")
        picture = host.get("backprop")
        if box is not None and picture is not None:
            picture = np.ascontiguousarray(picture).copy()
            sx = picture.shape[1] / (ctx.crop.x + ctx.crop.w)
            sy = picture.shape[0] / (ctx.crop.y + ctx.crop.h)
            box = np.asarray(box, dtype=np.float64)
            corners = (round(box[0] * sx), round(box[1] * sy)), (round(box[2] * sx), round(box[3] * sy))
            cv2.rectangle(picture, *corners, (255, 255, 255), max(2, round(min(picture.shape[:2]) / 160)), cv2.LINE_AA)
            out["backprop"] = picture
            out["explained_box"] = box.astype(np.float32)
        return out
