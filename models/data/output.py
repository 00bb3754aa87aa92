"""Writing results: a folder made where missing, pictures as PNG files; every failure an `OutputError` that
says what to do."""

from __future__ import annotations

import itertools
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


def new_output_folder(folder: str | Path) -> Path:
    """A new folder of its own: `folder`, else `folder-2`, `folder-3`, ... where that name is taken (two
    recordings started within the same second must not write into one). Made with one `mkdir` each, so two
    writers can never both get the same one."""
    folder = Path(folder)
    output_folder(folder.parent)
    for number in itertools.count(1):
        candidate = folder if number == 1 else folder.with_name(f"{folder.name}-{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot create the folder {candidate}: {exc.strerror or exc}; choose another") from None
        return candidate
    raise AssertionError("unreachable")


def save_images(folder: Path, images: dict[str, np.ndarray]) -> None:
    """RGB uint8 images as `folder/NAME.png`; empty ones (a view not rendered) are skipped."""
    for name, image in images.items():
        path = folder / f"{name}.png"
        if image.size and not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"could not write {path}: is the folder writable, and is the disk full?")
