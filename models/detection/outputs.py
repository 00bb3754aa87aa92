"""A model's output read by its kind, and the model called so that the rest of livevis sees one tensor.

A classifier outputs N x K class scores; an image-to-image network N x C x H x W maps; a segmenter (torchvision's
FCN, DeepLabV3, LRASPP and any model returning the same) a mapping whose `out` is N x K x H x W; a detector
(Faster R-CNN, RetinaNet, FCOS, SSD, Mask and Keypoint R-CNN) a list of one mapping per image with `boxes`,
`scores` and `labels` (and `masks`, `keypoints`). Anything else is refused with one line that says so.

`adapt_model` makes a segmenter or a detector callable as every other part of livevis calls a model, on one
N x 3 x H x W tensor returning one tensor: a segmenter returns its `out`; a detector takes the batch as its list
of images ([0, 1] RGB, its own transform resizes and normalises) and returns each image's summed scores (N x 1),
its detections kept for the caller on the same thread (`last_detections`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from ..errors import ModelError

CLASSIFY = "classify"
MAPS = "maps"
SEGMENT = "segment"
DETECT = "detect"

EXPECTED = (
    "livevis shows models that output class scores (N x K), maps (N x C x H x W), a segmentation (a mapping "
    "whose 'out' is N x K x H x W) or detections (a list of mappings with 'boxes', 'scores', 'labels')"
)
DETECTION_KEYS = ("boxes", "scores", "labels", "masks", "keypoints", "keypoints_scores")


def describe(output: Any) -> str:
    """What an output is, in a few words, for an error."""
    if isinstance(output, torch.Tensor):
        return "a tensor of shape " + " x ".join(map(str, output.shape))
    if isinstance(output, Mapping):
        return f"{type(output).__name__} with keys {', '.join(map(str, list(output)[:6]))}"
    if isinstance(output, Sequence) and not isinstance(output, str):
        inner = describe(output[0]) if output else "nothing"
        return f"{type(output).__name__} of {len(output)} ({inner})"
    return type(output).__name__


def output_task(output: Any) -> str:
    """The kind of model that gave `output`; `ModelError` saying what livevis expected for anything else."""
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        return CLASSIFY
    if isinstance(output, torch.Tensor) and output.dim() == 4:
        return MAPS
    if isinstance(output, Mapping) and isinstance(output.get("out"), torch.Tensor) and output["out"].dim() == 4:
        return SEGMENT
    if (
        isinstance(output, list | tuple)
        and output
        and all(isinstance(o, Mapping) and {"boxes", "scores", "labels"} <= set(o) for o in output)
    ):
        return DETECT
    raise ModelError(f"the model outputs {describe(output)}; {EXPECTED}")


_LAST = threading.local()


def last_detections(model: nn.Module) -> list[dict[str, torch.Tensor]] | None:
    """The detections of `model`'s last call on this thread (one dict per image), None where it made none."""
    found = getattr(_LAST, "found", None)
    return found[1] if found is not None and found[0] is model else None


def _detector_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    found = type(model).forward(model, list(x))
    detections = [{key: value for key, value in d.items() if isinstance(value, torch.Tensor)} for d in found]
    _LAST.found = (model, detections)
    totals = [d["scores"].sum() if d["scores"].numel() else x.new_zeros(()) for d in detections]
    return torch.stack(totals)[:, None]


def _segmenter_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return type(model).forward(model, x)["out"]


def adapt_model(model: nn.Module, task: str) -> None:
    """Make a segmenter or a detector take one N x 3 x H x W tensor and return one tensor (see the module)."""
    if task == DETECT:
        model.forward = partial(_detector_forward, model)
    elif task == SEGMENT:
        model.forward = partial(_segmenter_forward, model)


VIDEO = "a video model: its input is N x 3 x T x H x W clips of frames"
FLOW = "an optical flow model: its input is two frames"


def unsupported_model(name: str) -> str | None:
    """Why a torchvision model of another kind (video, optical flow) cannot be shown; None for other names."""
    import torchvision.models as tvm

    for module, what in ((tvm.video, VIDEO), (tvm.optical_flow, FLOW)):
        if name in tvm.list_models(module=module):
            return (
                f"{name} is {what}; livevis shows models of one image: classifiers, segmenters (a mapping whose "
                "'out' is N x K x H x W) and detectors (a list of mappings with 'boxes', 'scores', 'labels')"
            )
    return None


def confident_random_detector(model: nn.Module) -> None:
    """Give a torchvision detector with random weights boxes to draw and explain, as a trained one has: its scores
    sit near 1 / the number of classes, under a trained model's threshold. An R-CNN's class 1 gets a bias of 8
    (its boxes then score about 0.97); another detector's score threshold goes to 0 (`bench`)."""
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    if predictor is not None and isinstance(getattr(predictor, "cls_score", None), nn.Linear):
        with torch.no_grad():
            predictor.cls_score.bias[1] += 8.0
    elif isinstance(getattr(model, "score_thresh", None), float):
        model.score_thresh = 0.0
