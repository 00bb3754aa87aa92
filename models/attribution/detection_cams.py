"""Why a detector found a box, or a segmenter a class: class activation maps for detection and segmentation.

The targets are pytorch-grad-cam's: a box's score (`FasterRCNNBoxScoreTarget`: the score of the predicted box
of the same label that overlaps the chosen one by IoU > 0.5, plus that IoU) and a class's mask
(`SemanticSegmentationTarget`: the sum of the class's logits over the mask). The maps are EigenCAM (the
layer's first principal component, forward only) and Grad-CAM (one backward from the target to the layer).
`explain_detection` and `explain_segmentation` run either in one forward (and one backward) at a module, or
at one level of a module that outputs several (`backbone.fpn:0`); `track_box` follows the explained box
from frame to frame.

torchvision's detectors keep their scores differentiable when called with autograd on and the model in eval
mode: boxes and scores come out of the postprocessing with a graph back to the features.

Everything stays on the model's device; results hold detached tensors only (no graph outlives a frame).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from ..errors import InputError, LayerNotFoundError, ModelError, OptionError
from ..layers import this_thread_only
from .backprop import _module_at, grad_cam_maps

CAM_METHODS = ("eigencam", "gradcam")
"""How a box or a class is explained: the layer's first principal component (forward only), or Grad-CAM."""

# ---------------------------------------------------------------------------------------------------------------------
# Targets


def box_score(
    outputs: Sequence[Mapping[str, torch.Tensor]] | Mapping[str, torch.Tensor],
    target_box: torch.Tensor | Sequence[float],
    target_label: int,
    iou_threshold: float = 0.5,
    *,
    same_label_only: bool = True,
) -> tuple[torch.Tensor, float, int | None]:
    """pytorch-grad-cam's FasterRCNNBoxScoreTarget for one box: (score, iou, index).

    `score` is a 0-d tensor, the predicted box's score plus its IoU with `target_box`, both differentiable
    (the IoU through the predicted box's coordinates); `index` is that box among the detections. The box is
    the one of label `target_label` that overlaps `target_box` most, if by IoU > `iou_threshold`. With
    `same_label_only=False` it is pytorch-grad-cam's choice exactly: the box that overlaps most whatever its
    label, kept only if its label is `target_label` (a box of another class on the same object then loses
    it). Lost (`index` None): `score` is a zero that still backpropagates (to zero gradients) and `iou` the
    best overlap seen among the boxes considered (0.0 if none).

    `outputs`: a detector's output for one image (its list, whose first image is taken, or the dict).
    """
    out = outputs[0] if isinstance(outputs, Sequence) else outputs
    boxes, labels, scores = out["boxes"], out["labels"], out["scores"]
    zero = scores.sum() * 0.0
    if len(boxes) == 0:
        return zero, 0.0, None
    box = torch.as_tensor(target_box, dtype=boxes.dtype, device=boxes.device).reshape(1, 4)
    ious = box_iou(box, boxes)[0]
    same_label = labels == int(target_label)
    if same_label_only:
        if not bool(same_label.any()):
            return zero, 0.0, None
        index = int(torch.where(same_label, ious.detach(), ious.new_tensor(-1.0)).argmax())
    else:
        index = int(ious.detach().argmax())
    iou = float(ious[index].detach())
    if not (iou > iou_threshold and bool(same_label[index])):
        return zero, iou, None
    return ious[index] + scores[index], iou, index


def segmentation_class_score(out: torch.Tensor, class_index: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """pytorch-grad-cam's SemanticSegmentationTarget: the sum of class `class_index`'s logits over `mask`
    (H x W, bool or weights; None: the pixels whose top class is `class_index`). `out`: 1 x K x H x W."""
    if out.dim() != 4 or out.shape[0] != 1:
        raise InputError(f"a segmenter's output must be 1 x K x H x W, got {tuple(out.shape)}")
    classes = out.shape[1]
    if not 0 <= int(class_index) < classes:
        raise OptionError(f"class {class_index} is out of range: the segmenter has classes 0..{classes - 1}")
    logits = out[0, int(class_index)]
    if mask is None:
        mask = out[0].detach().argmax(0) == int(class_index)
    if tuple(mask.shape) != tuple(logits.shape):
        raise InputError(f"the mask is {tuple(mask.shape)}, the segmenter's output {tuple(logits.shape)}")
    return (logits * mask.to(device=logits.device, dtype=logits.dtype)).sum()


# ---------------------------------------------------------------------------------------------------------------------
# Maps


def eigencam(activation: torch.Tensor) -> torch.Tensor:
    """EigenCAM (Muhammad and Yeasin, 2020) as pytorch-grad-cam's `get_2d_projection` computes it: the cells of
    a C x h x w layer, as h*w points of C values centred on their mean, projected on their first principal
    component; h x w, signed, on the activation's device, in float32 (float64 for a float64 activation).

    The component's sign is arbitrary; it is chosen so that the largest value is positive (the map is flipped
    where |min| > |max|, as pytorch-grad-cam's `get_2d_projection_with_sign_correction` does). NaNs count as 0.
    Instead of an SVD of the h*w x C matrix, the component comes from the smaller Gram matrix's top
    eigenvector, found by subspace iteration where the matrix is wide (`_first_component`): the same map, to
    about 1e-5 of its largest value, for a fraction of the time.
    """
    if activation.dim() != 3:
        raise InputError(f"EigenCAM needs a C x h x w layer output, got {tuple(activation.shape)}")
    channels, height, width = activation.shape
    dtype = torch.float64 if activation.dtype == torch.float64 else torch.float32
    cells = torch.nan_to_num(activation.detach().to(dtype).reshape(channels, -1).T, nan=0.0)
    centred = cells - cells.mean(dim=0, keepdim=True)
    projection = centred @ _first_component(centred)
    if projection.min().abs() > projection.max().abs():
        projection = -projection
    return projection.reshape(height, width)


SMALL_GRAM = 256
"""Up to this width, the Gram matrix's first eigenvector comes from a full eigendecomposition; beyond, from
subspace iteration on it."""


def _first_component(centred: torch.Tensor) -> torch.Tensor:
    """The unit first right singular vector of an n x C matrix (its first principal component, centred), from
    the smaller of its two Gram matrices (n x min(n, C)^2, one matrix product): its top eigenvector by a full
    eigendecomposition up to `SMALL_GRAM` wide, by subspace iteration beyond (`_top_eigenvector`)."""
    cells, channels = centred.shape
    by_cells = cells < channels
    gram = centred @ centred.T if by_cells else centred.T @ centred
    top = torch.linalg.eigh(gram)[1][:, -1] if gram.shape[0] <= SMALL_GRAM else _top_eigenvector(gram)
    if not by_cells:
        return top
    direction = centred.T @ top
    return direction / direction.norm().clamp_min(torch.finfo(centred.dtype).tiny)


def _top_eigenvector(gram: torch.Tensor, block: int = 8, products: int = 64) -> torch.Tensor:
    """The unit eigenvector of a symmetric positive semi-definite matrix's largest eigenvalue.

    Subspace iteration: `block` vectors, started from the matrix's largest columns (they lie in its range and
    lean towards that eigenvector), each step one product, a Rayleigh-Ritz estimate, and a stop when the
    estimate's residual |G v - theta v| falls under 1e-6 of theta (1e-9 in float64). The error falls as
    (lambda_{block+1} / lambda_1) a step, not (lambda_2 / lambda_1) as a power iteration's: close components
    cost few steps. A 960-wide Gram matrix (a 30 x 40 layer of 960 channels) takes a few products of
    960 x 960 x 8 where its full eigendecomposition costs several times the Gram matrix itself."""
    block = min(block, gram.shape[0])
    tolerance = 1e-9 if gram.dtype == torch.float64 else 1e-6
    basis = torch.linalg.qr(gram[:, gram.diagonal().topk(block).indices]).Q
    for _ in range(products):
        image = gram @ basis
        values, vectors = torch.linalg.eigh(basis.T @ image)
        top, theta = vectors[:, -1], values[-1]
        vector = basis @ top
        if float((image @ top - theta * vector).norm()) <= tolerance * float(theta):
            break
        basis = torch.linalg.qr(image).Q
    return vector


def gradcam_from(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM from a C x h x w layer output and the target's gradient with respect to it: ReLU(sum_c w_c A_c)
    with w_c the gradient's mean over the cells, h x w, >= 0, as the classifier's Grad-CAM (`grad_cam`)
    computes it and leaves it: not normalised (the renderer takes 0 to the map's largest value)."""
    if activation.dim() != 3 or activation.shape != gradient.shape:
        raise InputError(
            f"Grad-CAM needs a C x h x w layer output and a gradient of its shape, got {tuple(activation.shape)} "
            f"and {tuple(gradient.shape)}"
        )
    cam, _ = grad_cam_maps(activation.detach()[None], gradient.detach()[None])
    return cam[0]


def cam_on_frame(cam: torch.Tensor, covered: tuple[float, float], size: tuple[int, int]) -> torch.Tensor:
    """An h x w map over the network's input, upsampled (bilinear) onto a frame of `size` (H, W).

    `covered`: the share of the map's height and width that the frame covers, from its top left (a detector
    pads its resized input to a multiple of its stride; `DetectionExplanation.covered`)."""
    frame_h, frame_w = size
    full = (math.ceil(frame_h / covered[0] - 1e-6), math.ceil(frame_w / covered[1] - 1e-6))
    upsampled = F.interpolate(cam[None, None].float(), size=full, mode="bilinear", align_corners=False)
    return upsampled[0, 0, :frame_h, :frame_w]


# ---------------------------------------------------------------------------------------------------------------------
# Tracking


def track_box(
    previous_box: torch.Tensor | Sequence[float],
    label: int,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    min_iou: float = 0.3,
) -> int | None:
    """The index of this frame's detection that is the selected box: of the same label, the one that
    overlaps `previous_box` most, if by an IoU above `min_iou`; None when the box is lost."""
    if len(boxes) == 0:
        return None
    box = torch.as_tensor(previous_box, dtype=boxes.dtype, device=boxes.device).reshape(1, 4)
    ious = box_iou(box, boxes.detach())[0]
    ious = torch.where(labels.to(ious.device) == int(label), ious, ious.new_tensor(-1.0))
    index = int(ious.argmax())
    return index if float(ious[index]) > min_iou else None


# ---------------------------------------------------------------------------------------------------------------------
# One forward (and one backward) at a chosen layer


def split_layer(model: nn.Module, layer: str) -> tuple[nn.Module, str | None]:
    """The module of a layer name and the output it names: `backbone.fpn:0` is level "0" of the dict the FPN
    outputs, `backbone.body.16` the module's one tensor."""
    path, _, key = layer.partition(":")
    return _module_at(model, path), (key or None)


class LayerKeep:
    """A forward hook that keeps one output of a module (one tensor, or one entry of the dict, tuple or list
    it outputs, `key`), as a 1 x C x h x w map.

    With `graph_from_here`, the forward before the layer runs without autograd (the caller's `no_grad`) and the
    hook turns it on: the kept output becomes a leaf that requires grad, so the graph starts at the layer and
    the backward stops there. A module called more than once (`calls` > 1) cannot be cut so; the caller then
    runs the pass again with autograd on throughout, keeping the last call.
    """

    def __init__(self, module: nn.Module, key: str | None, layer: str, *, graph_from_here: bool = False):
        self.key, self.layer, self.graph_from_here = key, layer, graph_from_here
        self.activation: torch.Tensor | None = None
        self.calls = 0
        self._handle = module.register_forward_hook(this_thread_only(self._hook))

    def __enter__(self) -> LayerKeep:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        self._handle.remove()

    def _hook(self, module, inputs, output):
        self.calls += 1
        chosen, replace = self._pick(output)
        if not isinstance(chosen, torch.Tensor) or chosen.dim() != 4 or chosen.shape[0] != 1:
            shape = tuple(chosen.shape) if isinstance(chosen, torch.Tensor) else type(chosen).__name__
            raise ModelError(f"{self.layer} outputs {shape}, not one image's C x h x w maps; choose another layer")
        if not self.graph_from_here or self.calls > 1:
            self.activation = chosen
            return None
        self.activation = chosen.detach().requires_grad_(True)
        torch.set_grad_enabled(True)  # the caller's `no_grad` block restores it
        return replace(self.activation)

    def _pick(self, output) -> tuple[Any, Any]:
        """(the chosen output, a function that gives the module's output with it replaced)."""
        if isinstance(output, torch.Tensor):
            if self.key is not None:
                raise LayerNotFoundError(f"{self.layer}: the module outputs one tensor; leave out ':{self.key}'")
            return output, lambda kept: kept
        if isinstance(output, Mapping):
            names = [str(name) for name in output]
            if self.key is None or (self.key not in names and not self.key.isdigit()):
                choices = ", ".join(f"{self.layer.partition(':')[0]}:{name}" for name in names)
                raise LayerNotFoundError(f"{self.layer} outputs several maps; name one: {choices}")
            name = list(output)[names.index(self.key)] if self.key in names else list(output)[int(self.key)]

            def replace(kept):
                swapped = dict(output)
                swapped[name] = kept
                return type(output)(swapped) if type(output) is not dict else swapped

            return output[name], replace
        if isinstance(output, (tuple, list)) and self.key is not None and self.key.isdigit():
            position = int(self.key)
            if position < len(output):
                return output[position], lambda kept: type(output)(
                    kept if i == position else item for i, item in enumerate(output)
                )
        raise LayerNotFoundError(f"{self.layer}: the module outputs {type(output).__name__}; choose another layer")

    def kept(self) -> torch.Tensor:
        if self.activation is None:
            raise LayerNotFoundError(f"{self.layer} is not run by the model's forward; choose another layer")
        return self.activation


class _InputSize:
    """A forward hook on a detector's `transform` that reads how much of the padded batch the image covers."""

    def __init__(self, model: nn.Module):
        self.covered = (1.0, 1.0)
        transform = getattr(model, "transform", None)
        self._handle = None if transform is None else transform.register_forward_hook(this_thread_only(self._hook))

    def _hook(self, module, inputs, output):
        image_list = output[0] if isinstance(output, tuple) else output
        sizes, tensors = getattr(image_list, "image_sizes", None), getattr(image_list, "tensors", None)
        if sizes and tensors is not None:
            (height, width), (padded_h, padded_w) = sizes[0], tensors.shape[-2:]
            self.covered = (height / padded_h, width / padded_w)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.remove()


@dataclass(frozen=True)
class DetectionExplanation:
    """One frame's detections and the map that explains the chosen box (or, for EigenCAM, the frame)."""

    detections: dict[str, torch.Tensor]
    """The detector's output for the image (boxes in the image's pixels, labels, scores, ...), detached."""
    cam: torch.Tensor
    """h x w at the layer's resolution over the network's (padded) input, >= 0, not normalised."""
    covered: tuple[float, float]
    """The share of the map's height and width the image covers, from its top left (`cam_on_frame`)."""
    method: str
    layer: str
    index: int | None
    """The explained box among `detections`; None when no box matched (Grad-CAM's map is then all zero)."""
    iou: float
    """Its IoU with the target box (when lost: the best overlap seen)."""
    score: float
    """The target's value: the box's score plus its IoU (0 when lost)."""


@dataclass(frozen=True)
class SegmentationExplanation:
    """One frame's segmentation and the map that explains one class."""

    out: torch.Tensor
    """1 x K x H x W logits, detached."""
    cam: torch.Tensor
    """h x w at the layer's resolution, >= 0, not normalised."""
    method: str
    layer: str
    class_index: int
    pixels: int
    """How many pixels the class's mask covers (0: nothing to explain, Grad-CAM's map is all zero)."""
    score: float
    """The target's value: the sum of the class's logits over its mask."""


def _check_method(method: str) -> None:
    if method not in CAM_METHODS:
        raise OptionError(f"unknown explanation {method!r}; choose one of {', '.join(CAM_METHODS)}")


def _model_device(model: nn.Module, fallback: torch.Tensor) -> torch.device:
    return next(iter(model.parameters()), fallback).device


def _forward_at(model: nn.Module, run, module: nn.Module, key: str | None, layer: str, method: str):
    """(model output, kept 1 x C x h x w activation) of one forward: EigenCAM's in inference mode, Grad-CAM's with
    a graph from the layer on (again with the whole graph where the module is called more than once)."""
    if method == "eigencam":
        with torch.inference_mode(), LayerKeep(module, key, layer) as keep:
            return run(), keep.kept()
    with torch.no_grad(), LayerKeep(module, key, layer, graph_from_here=True) as keep:
        output = run()
    if keep.calls == 1:
        return output, keep.kept()
    with torch.enable_grad(), LayerKeep(module, key, layer) as keep:
        return run(), keep.kept()


def _grad_cam_of(score: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of a 0-d target at a kept 1 x C x h x w activation: one backward, through the target alone."""
    gradient = None
    if score.requires_grad and activation.requires_grad:
        (gradient,) = torch.autograd.grad(score, activation, allow_unused=True)
    if gradient is None:  # lost target, or one that does not depend on the layer (an FPN level the heads skip)
        gradient = torch.zeros_like(activation)
    return gradcam_from(activation[0].detach(), gradient[0])


def explain_detection(
    model: nn.Module,
    image: torch.Tensor,
    layer: str,
    target_box: torch.Tensor | Sequence[float] | None = None,
    target_label: int | None = None,
    *,
    method: str = "eigencam",
    iou_threshold: float = 0.5,
    same_label_only: bool = True,
) -> DetectionExplanation:
    """A torchvision detector's detections on one image (3 x H x W, RGB in [0, 1]) and the map that explains
    the box `target_box` of `target_label` (None: the top-scoring detection) at `layer` (`split_layer`).

    EigenCAM costs one forward without autograd; Grad-CAM one forward whose graph starts at the layer and one
    backward from the box's score (`box_score`) to the layer. The model is called as it is (eval mode
    expected: a model in training mode wants targets).
    """
    _check_method(method)
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"a detector takes one 3 x H x W float image in [0, 1], got {shape}")
    module, key = split_layer(model, layer)
    with torch.inference_mode(False):
        frame = image.detach().to(_model_device(model, image)).clone()
        size = _InputSize(model)
        try:
            outputs, activation = _forward_at(model, lambda: model([frame]), module, key, layer, method)
        finally:
            size.release()
        detections = outputs[0]
        if target_box is None:
            if len(detections["boxes"]) == 0:
                target_box, target_label = torch.zeros(4), -1
            else:
                target_box, target_label = detections["boxes"][0].detach(), int(detections["labels"][0])
        if target_label is None:
            raise OptionError("a target box needs its label")
        score, iou, index = box_score(
            detections, target_box, target_label, iou_threshold, same_label_only=same_label_only
        )
        if method == "eigencam":
            cam = eigencam(activation[0]).clamp(min=0)
        else:
            cam = _grad_cam_of(score, activation)
        return DetectionExplanation(
            detections={name: value.detach() for name, value in detections.items()},
            cam=cam,
            covered=size.covered,
            method=method,
            layer=layer,
            index=index,
            iou=iou,
            score=float(score.detach()),
        )


def explain_segmentation(
    model: nn.Module,
    batch: torch.Tensor,
    layer: str,
    class_index: int | None = None,
    *,
    method: str = "eigencam",
    mask: torch.Tensor | None = None,
) -> SegmentationExplanation:
    """A torchvision segmenter's output on one normalised 1 x 3 x H x W batch and the map that explains class
    `class_index` (None: the class that covers most pixels) at `layer` (`split_layer`, e.g. `backbone:high`):
    EigenCAM in one forward, Grad-CAM of the class's logits over its mask (`segmentation_class_score`) in one
    forward and one backward to the layer."""
    _check_method(method)
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4 or batch.shape[0] != 1:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise InputError(f"a segmenter takes one normalised 1 x 3 x H x W batch, got {shape}")
    module, key = split_layer(model, layer)
    with torch.inference_mode(False):
        x = batch.detach().to(_model_device(model, batch)).clone()
        output, activation = _forward_at(model, lambda: model(x), module, key, layer, method)
        out = output["out"] if isinstance(output, Mapping) else output
        top = out[0].detach().argmax(0) if mask is None or class_index is None else None  # once: K x H x W
        if class_index is None:
            class_index = int(top.flatten().bincount(minlength=out.shape[1]).argmax())
        mask = top == class_index if mask is None else mask
        score = segmentation_class_score(out, class_index, mask)
        pixels = int(mask.count_nonzero())
        cam = eigencam(activation[0]).clamp(min=0) if method == "eigencam" else _grad_cam_of(score, activation)
        return SegmentationExplanation(
            out=out.detach(),
            cam=cam,
            method=method,
            layer=layer,
            class_index=int(class_index),
            pixels=pixels,
            score=float(score.detach()),
        )
