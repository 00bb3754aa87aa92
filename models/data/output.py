"""Writing results: a folder made where missing, pictures as PNG files; every failure an `OutputError` that
says what to do."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError


def output_folder(folder: str | Path) -> Path:
    """`folder`, created where missing; an `OutputError` saying why where it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {exc.strerror or exc}; choose another") from None
    return folder


def save_images(folder: Path, images: dict[str, np.ndarray]) -> None:
    """RGB uint8 images as `folder/NAME.png`; empty ones (a view not rendered) are skipped."""
    for name, image in images.items():
        path = folder / f"{name}.png"
        if image.size and not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"could not write {path}: is the folder writable, and is the disk full?")
