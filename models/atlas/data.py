"""Decoding and preprocessing for the unit atlas, run in DataLoader workers so the device never waits on them.

`crop_and_resize` is the live view's centre square crop and antialiased resize on the CPU, kept in uint8;
`read_with_opencv` the default reader of images, video frames and tensor files; `FrameDataset` turns a
folder's items into network-sized inputs (or tensors as they are), an unreadable item coming back with
its error message instead of stopping the run. The workers' start method lives here too: the forkserver
preloads this module by its `__name__`, so it must be the module that holds the dataset the workers unpickle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.images import VIDEO_SUFFIXES, read_image
from ..data.tensors import TENSOR_SUFFIXES, is_tensor_frame, read_tensor
from ..data.videos import read_video_frame
from ..engine import CropRect, centre_square_resized
from ..errors import InputError
from .folder import Item

Reader = Callable[[Path, int], np.ndarray]
"""(file, frame index; 0 for an image) -> RGB uint8 HxWx3, or float32 C x H x W for a tensor file; raises for a
file it cannot read."""


def crop_and_resize(frame: np.ndarray | torch.Tensor, input_size: int) -> tuple[torch.Tensor, CropRect]:
    """`Engine.preprocess`'s centre square crop and antialiased resize, on the CPU, kept in uint8.

    The same kernel on the same pixels as the live view on the CPU, so that `engine.preprocess` of
    the result (a crop of the whole square and a resize to its own size, both identities) equals
    `engine.preprocess` of the original frame bit for bit.
    """
    if isinstance(frame, np.ndarray):
        frame = frame if frame.flags.c_contiguous and frame.flags.writeable else np.ascontiguousarray(frame).copy()
    host = torch.from_numpy(frame) if isinstance(frame, np.ndarray) else frame
    resized, crop = centre_square_resized(host.cpu().unsqueeze(0), input_size)
    return resized[0].permute(1, 2, 0).contiguous(), crop


def read_with_opencv(path: Path, frame: int = 0) -> np.ndarray:
    """The reader used when the caller passes none: livevis's one reader of images, of video frames and of
    tensor files (float32 C x H x W), the same the live view uses."""
    path = Path(path)
    if path.suffix.lower() in TENSOR_SUFFIXES:
        return read_tensor(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return read_video_frame(path, frame)
    return read_image(path)


class FrameDataset(torch.utils.data.Dataset):
    """Items of a folder, decoded, cropped and resized to the network's input in a worker.

    An unreadable item comes back as a black image with its error message, so that one broken file
    skips itself and never stops the run. With `in_channels` (a folder of tensor files), items are the
    tensors as they are (float32 C x H x W, any size) and one with another channel count is skipped.
    """

    def __init__(
        self,
        folder: Path,
        items: Sequence[tuple[int, Item]],
        input_size: int,
        reader: Reader,
        in_channels: int | None = None,
    ):
        self.folder, self.items, self.input_size, self.reader = folder, list(items), input_size, reader
        self.in_channels = in_channels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int):
        if self.in_channels is not None:
            return self._tensor(position)
        index, item = self.items[position]
        try:
            frame = self.reader(self.folder / item.path, item.frame or 0)
            if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise InputError(f"{item.name}: not an RGB image")
            resized, _ = crop_and_resize(frame, self.input_size)
            return index, resized, frame.shape[0], frame.shape[1], ""
        except Exception as exc:  # any reader failure skips the file; the message names it
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            blank = torch.zeros((self.input_size, self.input_size, 3), dtype=torch.uint8)
            return index, blank, 0, 0, message

    def _tensor(self, position: int):
        index, item = self.items[position]
        try:
            array = self.reader(self.folder / item.path, 0)
            if not isinstance(array, np.ndarray) or not is_tensor_frame(array):
                raise InputError(f"{item.name}: not a float32 C x H x W tensor")
            if array.shape[0] != self.in_channels:
                raise InputError(f"{item.name} has {array.shape[0]} channels but the model takes {self.in_channels}")
            return index, torch.from_numpy(np.ascontiguousarray(array)), array.shape[1], array.shape[2], ""
        except Exception as exc:  # as for images: the message names the file, the run goes on
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return index, torch.zeros(0), 0, 0, message


def _collate_tensors(batch):
    """Tensor inputs may differ in size: kept as a list, stacked per shape before the forward."""
    indices, frames, heights, widths, errors = zip(*batch, strict=True)
    return torch.tensor(indices), list(frames), torch.tensor(heights), torch.tensor(widths), list(errors)


def _worker_context():
    """Workers forked from a clean single-threaded server: forking the main process, whose OpenMP
    and OpenCV thread pools may hold locks at that instant, can leave a worker waiting forever."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None  # Windows, macOS: spawn, which is safe as well
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # torch is imported once, by the server
    return context


def _quiet_worker(_worker_id: int) -> None:
    """One thread per worker: the workers already run in parallel, and the forward needs the cores."""
    import cv2

    cv2.setNumThreads(1)
