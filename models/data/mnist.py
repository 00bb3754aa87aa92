"""A drawn or photographed digit made to look like an MNIST digit, the way MNIST itself was made.

LeCun's MNIST digits were size-normalised to fit a 20x20 box (aspect kept, antialiased), then placed
in a 28x28 field so that their centre of mass is at its centre. A network trained on them expects
exactly that: a digit drawn large, thin or off-centre on a canvas is misread until it is brought to
the same framing. The bundled digits have their centre of mass at pixel (14.0, 14.0) (mean over all,
in pixel-index coordinates), so that is where it goes here.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError

FIELD = 28
"""The side of an MNIST image."""
BOX = 20
"""The side of the box the digit's larger side is scaled to."""
CENTRE = 14.0
"""Where the centre of mass lands (row and column, pixel-index coordinates), as in the MNIST files."""
INK_LEVEL = 0.5
"""A pixel is ink, for the bounding box, when it has this fraction of the darkest stroke's ink or more:
antialiased fringes do not widen the box."""
MIN_INK = 16
"""Below this much ink (0-255) nothing was drawn: the canvas stays black."""


def _gray(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"a digit must be an HxW or HxWx3 uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.shape[2] == 1:
        return image[..., 0].astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)


def ink_of(image: np.ndarray) -> np.ndarray:
    """H x W float32 ink, 0 (background) to 255 (the strongest stroke): light strokes on a dark ground
    as they are, dark strokes on a light ground (paper, a white canvas) inverted first. The ground is the
    median of the border, where a digit rarely reaches."""
    gray = _gray(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ground = float(np.median(border))
    if ground > 127:
        gray, ground = 255.0 - gray, 255.0 - ground
    ink = np.clip(gray - ground, 0, None)
    peak = float(ink.max())
    return ink * (255.0 / peak) if peak >= MIN_INK else np.zeros_like(ink)


def mnist_style(image: np.ndarray) -> np.ndarray:
    """28 x 28 x 3 uint8 (gray replicated): the ink's bounding box scaled so its larger side is 20 px,
    antialiased, in a black 28x28 field with its centre of mass at the centre. A blank image gives black."""
    ink = ink_of(image)
    out = np.zeros((FIELD, FIELD), np.float32)
    rows, cols = np.nonzero(ink >= INK_LEVEL * 255)
    if len(rows):
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        box = ink[top:bottom, left:right]
        height, width = box.shape
        scale = BOX / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        digit = cv2.resize(box, size, interpolation=shrink)
        mass = digit.sum()
        ys, xs = np.indices(digit.shape)
        row = round(CENTRE - float((ys * digit).sum() / mass))
        col = round(CENTRE - float((xs * digit).sum() / mass))
        _paste(out, digit, row, col)
    gray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _paste(field: np.ndarray, patch: np.ndarray, row: int, col: int) -> None:
    """`patch` into `field` with its top-left corner at (row, col); what falls outside is cut off."""
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + patch.shape[0], field.shape[0]), min(col + patch.shape[1], field.shape[1])
    if top < bottom and left < right:
        field[top:bottom, left:right] = patch[top - row : bottom - row, left - col : right - col]
