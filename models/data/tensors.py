"""Tensor inputs: a .npy or .pt file holding a float array C x H x W (or 1 x C x H x W) is the network
input as it is: no crop, no resize, no normalisation. For networks whose input is not a photo (the notes'
dynamics net takes a scene and a grabbing point, 2 x H x W)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .images import check_regular_file

_LOADER_LOGGERS = ("torch.export", "torch._export", "torch.jit", "torch.serialization")


@contextlib.contextmanager
def quiet_loaders() -> Iterator[None]:
    """Silences torch's loaders for one call: on a bad file they log a traceback (torch.export) or
    warn (an old pickle protocol) on stderr, and livevis says what is wrong in one line of its own."""
    loggers = [logging.getLogger(name) for name in _LOADER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


TENSOR_SUFFIXES = frozenset({".npy", ".pt"})


def is_tensor_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TENSOR_SUFFIXES


def read_tensor(path: str | Path) -> np.ndarray:
    """The file's array as float32 C x H x W; a wrong shape, NaN or infinite values, or a file that holds
    something else raise InputError saying which."""
    path = check_regular_file(path)
    try:
        if path.suffix.lower() == ".npy":
            loaded = np.load(path, allow_pickle=False)
        else:
            with quiet_loaders():
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # numpy and torch raise ValueError, UnpicklingError, RuntimeError, EOFError...
        raise InputError(f"{path} is not a tensor file livevis can read ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, torch.Tensor):
        loaded = loaded.detach().float().numpy()
    if not isinstance(loaded, np.ndarray) or not np.issubdtype(loaded.dtype, np.number):
        raise InputError(f"{path} holds {type(loaded).__name__}, not one numeric array C x H x W")
    array = loaded[0] if loaded.ndim == 4 and loaded.shape[0] == 1 else loaded
    if array.ndim != 3:
        raise InputError(
            f"{path} holds an array of shape {tuple(loaded.shape)}; a tensor input is C x H x W (or 1 x C x H x W)"
        )
    if min(array.shape) < 1:
        raise InputError(f"{path} holds an empty array of shape {tuple(loaded.shape)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(f"{path} holds {bad} NaN or infinite values; a network input must be finite")
    return array


def is_tensor_frame(frame: np.ndarray) -> bool:
    """A network input given as it is (float C x H x W), not a photo (uint8 H x W x 3)."""
    return isinstance(frame, np.ndarray) and frame.dtype == np.float32 and frame.ndim == 3


def tensor_display(array: np.ndarray) -> np.ndarray:
    """A picture of a tensor input for the frame views: its three channels as RGB, else its first channel
    as gray, each stretched to 0..255 (the input view shows every channel signed besides)."""
    shown = array if array.shape[0] == 3 else array[:1]
    low, high = float(shown.min()), float(shown.max())
    scaled = (shown - low) * (255.0 / (high - low) if high > low else 0.0)
    picture = np.rint(scaled).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(np.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture)
