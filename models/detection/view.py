"""The detections view's producer (declared in `livevis.views.detection`): a detector's boxes or a segmenter's
classes on the frame, every detection the model returned kept for saving, the drawn ones above the threshold."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..producer import Producer
from .draw import draw_detections, draw_segmentation, legend
from .outputs import DETECT, SEGMENT


def _host(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class DetectionsProducer(Producer):
    """Boxes, labels, scores (masks, keypoints) or the segmentation, drawn on the frame as the window shows it.

    The frame, the masks and the class map are made small on the device (the size shown); the boxes and labels
    are drawn on the host, with OpenCV."""

    def render(self, ctx):
        task = ctx.engine.task
        if task not in (DETECT, SEGMENT):
            return {}
        shown, _ = ctx.shown_frame
        out = {"shown": shown, "task": task}
        if task == SEGMENT:
            scores = ctx.result.logits[0]
            # max's indices (the first maximum, as argmax's) come three times faster than argmax over classes
            out["classes"] = torch.max(scores, 0).indices.to(torch.uint8)
            if ctx.with_arrays:
                out["segmentation_scores"] = scores.float()
            return out
        found = ctx.result.detections
        # the box the explanation follows on this frame (the backprop view is drawn before this one)
        out["followed"] = ctx.memory.pop("followed_box", None)
        out |= {key: found[key] for key in ("boxes", "scores", "labels", "keypoints") if key in found}
        if "masks" in found:
            drawn = found["scores"] >= ctx.options["score_threshold"]
            masks = found["masks"][drawn]
            height, width = (shown.shape[0], shown.shape[1])
            if masks.numel():
                masks = F.interpolate(masks.float(), size=(height, width), mode="bilinear", align_corners=False)
            out["masks_shown"] = masks.reshape(-1, height, width)
            if ctx.with_arrays:
                out["masks"] = found["masks"][:, 0].float()
        return out

    def finish(self, host, ctx):
        engine, options = ctx.engine, ctx.options
        shown = _host(host["shown"])
        frame_w, frame_h = ctx.crop.x + ctx.crop.w, ctx.crop.y + ctx.crop.h
        if host["task"] == SEGMENT:
            classes = _host(host["classes"])
            count = len(engine.class_names)
            pixels = np.bincount(classes.ravel(), minlength=count)
            present = [int(i) for i in np.argsort(-pixels, kind="stable") if pixels[i]]
            out = {
                "segmentation": draw_segmentation(shown, classes, count, options.class_index),
                "segmentation_classes": classes,
                "segmentation_legend": [(i, engine.class_name(i), float(pixels[i] / classes.size)) for i in present],
            }
            if "segmentation_scores" in host:
                out["segmentation_scores"] = host["segmentation_scores"]
            return out
        boxes, scores = _host(host["boxes"]).astype(np.float32), _host(host["scores"]).astype(np.float32)
        labels = _host(host["labels"]).astype(np.int64)
        drawn = np.flatnonzero(scores >= options["score_threshold"])
        keypoints = _host(host["keypoints"]) if "keypoints" in host else None
        masks = _host(host["masks_shown"]) if "masks_shown" in host else None
        followed = host.get("followed")
        selected = int(followed) if followed is not None else self.selected_index(boxes, labels, options)
        picture = draw_detections(
            shown,
            boxes[drawn],
            labels[drawn],
            scores[drawn],
            engine.class_names,
            masks=masks,
            keypoints=keypoints[drawn] if keypoints is not None else None,
            scale=(shown.shape[1] / frame_w, shown.shape[0] / frame_h),
            selected=int(np.searchsorted(drawn, selected)) if selected in drawn else None,
        )
        out = {
            "detections": picture,
            "boxes": boxes,
            "scores": scores,
            "labels": labels,
            "detections_drawn": drawn,
            "selected_box": selected,
        }
        if keypoints is not None:
            out["keypoints"] = keypoints.astype(np.float32)
        if "masks" in host:
            out["masks"] = host["masks"]
        return out

    @staticmethod
    def selected_index(boxes: np.ndarray, labels: np.ndarray, options) -> int | None:
        """The detection the explanations explain on this frame: the one `box` names, else the one of the
        target's label overlapping it most."""
        if options["box"] is not None:
            return options["box"] if options["box"] < len(boxes) else None
        target = options["box_target"]
        if target is None or not len(boxes):
            return None
        x0, y0, x1, y1, label = target
        inter_w = np.clip(np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0), 0, None)
        inter_h = np.clip(np.minimum(boxes[:, 3], y1) - np.maximum(boxes[:, 1], y0), 0, None)
        inter = inter_w * inter_h
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (x1 - x0) * (y1 - y0) - inter
        iou = np.where(labels == int(label), inter / np.maximum(areas, 1e-9), 0.0)
        best = int(iou.argmax())
        return best if iou[best] > 0 else None

    def summary(self, values):
        if "segmentation_legend" in values:
            return {
                "segmentation": [
                    {"class": index, "name": name, "share": round(share, 4)}
                    for index, name, share in values["segmentation_legend"]
                ]
            }
        if "boxes" not in values:
            return {}
        return {
            "detections": [
                {"box": [round(float(v), 2) for v in box], "label": int(label), "score": round(float(score), 4)}
                for box, label, score in zip(values["boxes"], values["labels"], values["scores"], strict=True)
            ],
            "drawn": len(values["detections_drawn"]),
        }

    def report(self, values, engine):
        if "segmentation_legend" in values:
            shares = ", ".join(f"{name} {share:.0%}" for _, name, share in values["segmentation_legend"][:6])
            return [f"segmentation: {shares}"]
        if "boxes" not in values:
            return []
        drawn = values["detections_drawn"]
        lines = [f"{len(values['boxes'])} detections, {len(drawn)} at or above the score threshold:"]
        for i in drawn[:10]:
            box = ", ".join(f"{v:.0f}" for v in values["boxes"][i])
            lines.append(f"{i:>3}. {engine.class_name(int(values['labels'][i]))} {values['scores'][i]:.3f} at ({box})")
        return lines

    def for_file(self, images, values, title):
        found = values.get("segmentation_legend")
        if not found or images.get("segmentation") is None:
            return {}
        count = max(index for index, _, _ in found) + 1
        entries = [(name, share) for _, name, share in found]
        return {"segmentation": legend(images["segmentation"], entries, count, [index for index, _, _ in found])}
