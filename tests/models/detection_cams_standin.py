"""A stand-in for `livevis.models.attribution.detection_cams` with the same functions, written plainly (an SVD,
the Grad-CAM formula), used where that module is not installed."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou


def box_score(outputs, target_box, target_label, iou_threshold=0.5):
    out = outputs[0] if isinstance(outputs, list | tuple) else outputs
    boxes, labels, scores = out["boxes"], out["labels"], out["scores"]
    zero = scores.sum() * 0.0
    same = labels == int(target_label)
    if not len(boxes) or not bool(same.any()):
        return zero, 0.0, None
    ious = box_iou(torch.as_tensor(target_box, dtype=boxes.dtype).reshape(1, 4), boxes)[0]
    index = int(torch.where(same, ious.detach(), ious.new_tensor(-1.0)).argmax())
    iou = float(ious[index].detach())
    if iou <= iou_threshold:
        return zero, iou, None
    return ious[index] + scores[index], iou, index


def segmentation_class_score(out, class_index, mask=None):
    mask = out[0].detach().argmax(0) == class_index if mask is None else mask
    return (out[0, class_index] * mask).sum()


def eigencam(activation):
    cells = activation.detach().double().reshape(activation.shape[0], -1).T
    centred = cells - cells.mean(0, keepdim=True)
    projection = centred @ torch.linalg.svd(centred, full_matrices=False).Vh[0]
    if projection.min().abs() > projection.max().abs():
        projection = -projection
    return projection.reshape(activation.shape[1:]).to(activation.dtype)


def gradcam_from(activation, gradient):
    weights = gradient.mean(dim=(1, 2))
    return torch.relu((weights[:, None, None] * activation).sum(0))


def track_box(previous_box, label, boxes, labels, min_iou=0.3):
    if not len(boxes):
        return None
    ious = box_iou(torch.as_tensor(previous_box, dtype=boxes.dtype).reshape(1, 4), boxes)[0]
    ious = torch.where(labels == int(label), ious, ious.new_tensor(-1.0))
    index = int(ious.argmax())
    return index if float(ious[index]) > min_iou else None
