"""Optimised images as files, and what is done with them afterwards: PNG in and out, the model's classes
on an image, and contact sheets of many. OpenCV is imported only when one of them is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engine import Engine, Prediction
from ..errors import InputError, OutputError


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """An RGB uint8 image as PNG (lossless: what is classified later is what was made)."""
    import cv2

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except (OSError, cv2.error) as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    if not written:
        raise OutputError(f"cannot write {path}; check the folder exists and is writable")
    return path


def read_png(path: str | Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read {path} as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def classify(engine: Engine, image: np.ndarray, k: int = 5) -> list[Prediction]:
    """The model's top classes on an image, preprocessed exactly as the live view does."""
    x, _crop = engine.preprocess(engine.upload(image))
    logits = engine.forward(x)[0].float().cpu().numpy()
    return engine.top_k(logits, k)


def contact_sheet(images: np.ndarray, labels: Sequence[str], columns: int | None = None) -> np.ndarray:
    """One labelled tile per image in a grid; small images (a digit's 28 pixels) are enlarged to be seen."""
    import cv2

    count, height, width = images.shape[:3]
    zoom = max(1, math.ceil(112 / max(height, width)))
    tile_h, tile_w = height * zoom, width * zoom
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    band, gap = 22, 4
    sheet = np.full((rows * (tile_h + band + gap) + gap, columns * (tile_w + gap) + gap, 3), 255, np.uint8)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        row, col = divmod(index, columns)
        top, left = gap + row * (tile_h + band + gap), gap + col * (tile_w + gap)
        tile = cv2.resize(image, (tile_w, tile_h), interpolation=cv2.INTER_NEAREST) if zoom > 1 else image
        sheet[top : top + tile_h, left : left + tile_w] = tile
        scale = 0.45
        while scale > 0.25 and cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > tile_w:
            scale -= 0.05
        cv2.putText(
            sheet, label, (left + 2, top + tile_h + 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    return sheet
