"""Detections and segmentations drawn on a frame: pure arrays in, a uint8 RGB picture out (OpenCV on the host)."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

KEYPOINT_EDGES = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
)
"""COCO's person skeleton between its 17 keypoints (Keypoint R-CNN's)."""
MASK_OPACITY = 0.45
SEGMENT_OPACITY = 0.55


def class_colours(count: int) -> np.ndarray:
    """count x 3 uint8: a colour per class, neighbours far apart on the hue circle; class 0 (the background) grey."""
    hues = (np.arange(count) * 0.618033988749895) % 1.0
    colours = [colorsys.hsv_to_rgb(h, 0.75, 1.0) for h in hues]
    table = np.round(np.array(colours, dtype=np.float64).reshape(-1, 3) * 255).astype(np.uint8)
    if count:
        table[0] = 128
    return table


def _text(image: np.ndarray, text: str, x: int, y: int, colour) -> None:
    """A label on a filled box of its colour, above (x, y) where there is room, else below it."""
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = 1
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = y - h - base - 2 if y - h - base - 2 >= 0 else y
    cv2.rectangle(image, (x, top), (x + w + 4, top + h + base + 2), tuple(int(c) for c in colour), -1)
    dark = sum(int(c) for c in colour) > 380
    cv2.putText(
        image,
        text,
        (x + 2, top + h + 1),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0) if dark else (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )


def draw_detections(
    frame: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    *,
    masks: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
    scale: tuple[float, float] = (1.0, 1.0),
    selected: int | None = None,
) -> np.ndarray:
    """The detections given (boxes in frame pixels, drawn on `frame` shrunk by `scale`), each in its label's
    colour with `label score`; masks (N x h x w in [0, 1], at `frame`'s size) blended under them; keypoints
    (N x K x 3: x, y, visible) as a skeleton. The selected detection drawn thicker."""
    picture = np.ascontiguousarray(frame).copy()
    colours = class_colours(max(len(names), int(labels.max(initial=0)) + 1))
    if masks is not None and len(masks):
        tint = np.zeros(picture.shape, dtype=np.float32)
        cover = np.zeros(picture.shape[:2], dtype=np.float32)
        for mask, label in zip(masks, labels, strict=True):
            inside = mask > 0.5
            tint[inside] = colours[label]
            cover[inside] = MASK_OPACITY
        picture = (picture * (1 - cover[..., None]) + tint * cover[..., None]).astype(np.uint8)
    sx, sy = scale
    width = max(1, round(min(picture.shape[:2]) / 240))
    for index, (box, label, score) in enumerate(zip(boxes, labels, scores, strict=True)):
        colour = tuple(int(c) for c in colours[label])
        x0, y0, x1, y1 = (round(v) for v in (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
        thick = width * 3 if index == selected else width
        cv2.rectangle(picture, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        name = names[label] if 0 <= label < len(names) and names[label] else f"class {label}"
        _text(picture, f"{name} {score:.2f}", x0, y0, colour)
        if keypoints is not None and index < len(keypoints):
            points = keypoints[index]
            seen = points[:, 2] > 0
            for a, b in KEYPOINT_EDGES:
                if b < len(points) and seen[a] and seen[b]:
                    pa = (round(points[a, 0] * sx), round(points[a, 1] * sy))
                    pb = (round(points[b, 0] * sx), round(points[b, 1] * sy))
                    cv2.line(picture, pa, pb, colour, width, cv2.LINE_AA)
            for x, y, visible in points:
                if visible > 0:
                    cv2.circle(picture, (round(x * sx), round(y * sy)), width + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return picture


def draw_segmentation(frame: np.ndarray, classes: np.ndarray, count: int, selected: int | None = None) -> np.ndarray:
    """Each pixel's class (`classes`, h x w, resized to the frame) in its colour over `frame`; the background
    (class 0) left as it is; the selected class outlined in white."""
    height, width = frame.shape[:2]
    shown = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)
    frame = np.ascontiguousarray(frame)
    blended = cv2.addWeighted(frame, 1 - SEGMENT_OPACITY, class_colours(count)[shown], SEGMENT_OPACITY, 0.0)
    picture = np.where((shown > 0)[..., None], blended, frame)
    if selected is not None:
        mask = (shown == selected).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (255, 255, 255), max(1, round(min(height, width) / 240)))
    return picture


def legend(picture: np.ndarray, entries: list[tuple[str, float]], count: int, indices: list[int]) -> np.ndarray:
    """The picture with a column beside it naming each class present (its colour and its share of the pixels)."""
    colours = class_colours(count)
    row = 22
    side = np.full((max(picture.shape[0], row * (len(entries) + 1)), 220, 3), 255, dtype=np.uint8)
    for i, ((name, share), index) in enumerate(zip(entries, indices, strict=True)):
        y = 6 + i * row
        cv2.rectangle(side, (6, y), (22, y + 16), tuple(int(c) for c in colours[index]), -1)
        cv2.putText(
            side, f"{name} {share:.1%}", (28, y + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    padded = np.full((side.shape[0], picture.shape[1], 3), 255, dtype=np.uint8)
    padded[: picture.shape[0]] = picture
    return np.concatenate([padded, side], axis=1)
