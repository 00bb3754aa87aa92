"""Scenes of real MNIST digits pasted on real photos: detection boxes and segmentation masks for free.

A scene is a random crop of a photo with 2-6 digits of the bundled MNIST set on it, each scaled so that its ink
is 24-96 px tall, turned a little, and painted in a colour that reads on the photo under it (dark ink on a
light patch, light ink on a dark one). Digits never overlap, so every ink pixel belongs to one digit: the class
map (0 background, digit + 1 on the ink) and the boxes (tight around the ink) agree exactly.

Training scenes use the 8,000 training digits of `mnist_split` and the training photos; held-out scenes use the
2,000 held-out digits and the held-out photos, so a model trained on the first is measured on digits and photos
it never saw. Everything is deterministic from the seed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from livevis.assets import SAMPLES_DIR

from ..errors import InputError

Split = Literal["train", "held_out"]

TRAIN_PHOTOS = (
    "skimage:astronaut",
    "skimage:chelsea",
    "skimage:coffee",
    "skimage:rocket",
    "skimage:hubble_deep_field",
    "skimage:immunohistochemistry",
    "skimage:retina",
    "skimage:camera",
    "skimage:coins",
    "skimage:moon",
    "skimage:brick",
    "skimage:grass",
    "skimage:gravel",
    "skimage:clock",
    "skimage:page",
    "skimage:colorwheel",
    "matplotlib:grace_hopper.jpg",
)
"""Photos the models train on: scikit-image's (a test extra) and matplotlib's Grace Hopper."""
HELD_OUT_PHOTOS = ("sklearn:china.jpg", "sklearn:flower.jpg", "skimage:stereo_motorcycle")
"""Photos no model trains on."""
RUNTIME_PHOTOS = ("sklearn:china.jpg", "sklearn:flower.jpg", "matplotlib:grace_hopper.jpg") + tuple(
    f"sample:{name}" for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")
)
"""Photos there at run time without the test extras (scikit-learn, matplotlib, livevis's bundled samples)."""

CATEGORIES = ("__background__",) + tuple(str(d) for d in range(10))
"""Label k is digit k - 1; label 0 is the background (torchvision's detection convention)."""

INK_THRESHOLD = 0.5
"""A pixel is ink where the digit's coverage (its MNIST intensity / 255) is at least this."""


@dataclass(frozen=True)
class Scene:
    image: np.ndarray
    """H x W x 3 RGB uint8."""
    boxes: np.ndarray
    """N x 4 float32 (x0, y0, x1, y1) in the frame's pixels, tight around each digit's ink: x0, y0 the first
    ink column and row, x1, y1 one past the last (pixel edges, as torchvision's boxes)."""
    labels: np.ndarray
    """N int64, 1..10 for the digits 0..9."""
    class_map: np.ndarray
    """H x W uint8: 0 background, digit + 1 on its ink pixels."""


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """A real photo as RGB uint8 by source and name: `skimage:rocket`, `sklearn:china.jpg`,
    `matplotlib:grace_hopper.jpg`, `sample:chelsea.jpg` (livevis's bundled samples)."""
    source, _, item = name.partition(":")
    try:
        if source == "skimage":
            from skimage import data

            photo = getattr(data, item)()
            photo = photo[0] if isinstance(photo, tuple) else photo  # stereo pairs: the left view
        elif source == "sklearn":
            from sklearn.datasets import load_sample_image

            photo = load_sample_image(item)
        elif source == "matplotlib":
            import matplotlib.cbook

            with matplotlib.cbook.get_sample_data(item) as file:
                photo = cv2.imdecode(np.frombuffer(file.read(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        elif source == "sample":
            photo = cv2.imread(str(SAMPLES_DIR / item), cv2.IMREAD_COLOR)[:, :, ::-1]
        else:
            raise InputError(f"unknown photo source in {name!r}; use skimage:, sklearn:, matplotlib: or sample:")
    except ImportError as exc:
        raise InputError(f"photo {name!r} needs {exc.name} (pip install 'livevis[test]')") from None
    photo = np.asarray(photo)
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    return np.ascontiguousarray(photo[:, :, :3].astype(np.uint8))


@functools.cache
def _digits(split: Split) -> tuple[np.ndarray, np.ndarray]:
    from .datasets import mnist_split

    train, held_out = mnist_split()
    chosen = train if split == "train" else held_out
    return chosen.images, chosen.labels


def _background(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator, flip: bool) -> np.ndarray:
    """A random crop of the photo with the frame's aspect ratio, 45-100% of the largest such crop, resized."""
    width, height = size
    ph, pw = photo.shape[:2]
    largest = min(pw / width, ph / height)
    scale = largest * rng.uniform(0.45, 1.0)
    cw, ch = max(8, int(width * scale)), max(8, int(height * scale))
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrink = cw > width
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _coverage(digit: np.ndarray, ink_height: float, rng: np.random.Generator) -> np.ndarray:
    """The digit's coverage in [0, 1], cropped to its ink, scaled so that the ink is about `ink_height` px tall,
    slanted by up to 12 degrees and a little wider or narrower."""
    rows, cols = np.nonzero(digit >= INK_THRESHOLD * 255)
    crop = digit[max(rows.min() - 1, 0) : rows.max() + 2, max(cols.min() - 1, 0) : cols.max() + 2]
    scale = ink_height / (rows.max() - rows.min() + 1)
    sx, sy = scale * rng.uniform(0.85, 1.2), scale
    h, w = crop.shape
    angle = np.deg2rad(rng.uniform(-12, 12))
    cos, sin = np.cos(angle), np.sin(angle)
    out_w = int(np.ceil(abs(w * sx * cos) + abs(h * sy * sin))) + 2
    out_h = int(np.ceil(abs(w * sx * sin) + abs(h * sy * cos))) + 2
    # scale about the crop's centre, turn, and put the centre at the patch's centre
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([sx, sy])
    offset = np.array([out_w / 2, out_h / 2]) - linear @ np.array([w / 2, h / 2])
    matrix = np.hstack([linear, offset[:, None]])
    return cv2.warpAffine(crop.astype(np.float32) / 255.0, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)


def _ink_colour(under: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour whose luminance is far from the patch's: dark on light, light on dark."""
    luminance = float((under.reshape(-1, 3) @ np.array([0.299, 0.587, 0.114])).mean())
    colour = rng.uniform(0, 255, 3)
    strength = rng.uniform(0.0, 0.35)
    if luminance >= 128:
        return colour * strength
    return 255 - (255 - colour) * strength


def paste_digit(
    image: np.ndarray,
    class_map: np.ndarray,
    coverage: np.ndarray,
    colour: np.ndarray,
    x: int,
    y: int,
    label: int,
    opacity: float = 1.0,
) -> tuple[int, int, int, int]:
    """Paints a digit's coverage patch in `colour` into the float RGB image at (x, y) (inside the frame), marks
    its ink (coverage >= INK_THRESHOLD) in the class map, and returns the box tight around that ink."""
    ch, cw = coverage.shape
    region = image[y : y + ch, x : x + cw]
    alpha = coverage[:, :, None] * opacity
    region[:] = region * (1 - alpha) + colour * alpha
    ink = coverage >= INK_THRESHOLD
    class_map[y : y + ch, x : x + cw][ink] = label
    rows, cols = np.nonzero(ink)
    return (x + int(cols.min()), y + int(rows.min()), x + int(cols.max()) + 1, y + int(rows.max()) + 1)


def make_scene(
    seed: int,
    split: Split = "held_out",
    size: tuple[int, int] = (640, 480),
    digits: tuple[int, int] = (2, 6),
    ink_heights: tuple[float, float] = (24, 96),
    photos: tuple[str, ...] | None = None,
) -> Scene:
    """One scene of `size` (width, height) with digits[0]..digits[1] digits (fewer where they do not fit)."""
    rng = np.random.default_rng(seed)
    images, labels = _digits(split)
    photos = photos or (TRAIN_PHOTOS if split == "train" else HELD_OUT_PHOTOS)
    width, height = size
    image = _background(load_photo(photos[int(rng.integers(len(photos)))]), size, rng, flip=split == "train").astype(
        np.float32
    )
    class_map = np.zeros((height, width), np.uint8)
    taken: list[tuple[int, int, int, int]] = []
    boxes, classes = [], []
    for _ in range(int(rng.integers(digits[0], digits[1] + 1))):
        index = int(rng.integers(len(images)))
        ink_height = min(rng.uniform(*ink_heights), 0.8 * height)
        coverage = _coverage(images[index], ink_height, rng)
        ch, cw = coverage.shape
        if cw >= width or ch >= height:
            continue
        for _attempt in range(20):
            x, y = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
            if all(x + cw <= a or a2 <= x or y + ch <= b or b2 <= y for a, b, a2, b2 in taken):
                break
        else:
            continue
        if not (coverage >= INK_THRESHOLD).any():
            continue
        taken.append((x, y, x + cw, y + ch))
        opacity = rng.uniform(0.85, 1.0)
        colour = _ink_colour(image[y : y + ch, x : x + cw], rng)
        boxes.append(paste_digit(image, class_map, coverage, colour, x, y, labels[index] + 1, opacity))
        classes.append(labels[index] + 1)
    return Scene(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        labels=np.asarray(classes, np.int64),
        class_map=class_map,
    )


def moving_scenes(
    seed: int,
    frames: int,
    size: tuple[int, int] = (640, 480),
    digits: int = 4,
    photo: str = "sklearn:china.jpg",
    speed: tuple[float, float] = (2.0, 6.0),
) -> Iterator[Scene]:
    """Frames of held-out digits (ink 40-90 px tall) gliding over one crop of a photo and bouncing off the
    frame's edges, each a `Scene` with its boxes and class map (where two digits cross, the later one is
    painted over the earlier one, whose box then still spans its whole ink)."""
    rng = np.random.default_rng(seed)
    images, labels = _digits("held_out")
    width, height = size
    background = _background(load_photo(photo), size, rng, flip=False).astype(np.float32)
    movers = []
    for _ in range(digits):
        index = int(rng.integers(len(images)))
        coverage = _coverage(images[index], rng.uniform(40, 90), rng)
        ch, cw = coverage.shape
        position = np.array([rng.uniform(0, width - cw), rng.uniform(0, height - ch)])
        velocity = rng.uniform(*speed, 2) * rng.choice([-1.0, 1.0], 2)
        x, y = position.astype(int)
        colour = _ink_colour(background[y : y + ch, x : x + cw], rng)
        movers.append((coverage, colour, int(labels[index]) + 1, position, velocity))
    for _ in range(frames):
        image, class_map = background.copy(), np.zeros((height, width), np.uint8)
        boxes = []
        for coverage, colour, label, position, velocity in movers:
            x, y = np.rint(position).astype(int)
            boxes.append(paste_digit(image, class_map, coverage, colour, int(x), int(y), label))
            limit = np.array([width - coverage.shape[1], height - coverage.shape[0]], float)
            position += velocity
            bounced = (position < 0) | (position > limit)
            velocity[bounced] *= -1
            np.clip(position, 0, limit, out=position)
        yield Scene(
            image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            labels=np.asarray([mover[2] for mover in movers], np.int64),
            class_map=class_map,
        )


SAMPLE_SCENES = {"digits_china.jpg": 6, "digits_flower.jpg": 22}
"""The bundled sample scenes (assets/samples): file name -> seed of a held-out scene at 640 x 480 on the photo the
name says (`sample_scene`), so that tests can rebuild their boxes and class map. Written by
`python -m livevis.models.data.digit_scenes`."""


def sample_scene(name: str) -> Scene:
    """The ground truth of a bundled sample scene, rebuilt from its seed (the file itself is a JPEG of it)."""
    photo = name.removeprefix("digits_").removesuffix(".jpg")
    return make_scene(SAMPLE_SCENES[name], "held_out", photos=(f"sklearn:{photo}.jpg",))


def write_sample_scenes(folder: Path = SAMPLES_DIR) -> list[Path]:
    """Writes the bundled sample scenes (JPEG, quality 90) into `folder`."""
    written = []
    for name in SAMPLE_SCENES:
        path = Path(folder) / name
        cv2.imwrite(str(path), sample_scene(name).image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        written.append(path)
    return written


if __name__ == "__main__":
    print("\n".join(str(path) for path in write_sample_scenes()))
