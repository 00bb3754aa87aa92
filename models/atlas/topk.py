"""The unit atlas's arithmetic on the device: the running top-k per channel, and the processes it is split over.

`RunningTop` keeps, per channel, the k best (value, item, peak row and column, image size) seen so far and
merges with others so that ties rank the lower item index first whatever order they came in, which makes
resumed and torchrun-split runs rank alike; `batch_candidates` turns one batch's layer maps into
candidates, and `capture_layers` runs the forward only up to the last layer asked for. `Processes` is this
process's place among torchrun's, with the collectives (gather, broadcast) that merge the shares, and the
weights fingerprint that tells whether every process holds the same weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..engine import Engine
from ..layers import INPUT, OUTPUT, PROB, ActivationCapture, this_thread_only

FIELDS = ("values", "items", "rows", "cols", "heights", "widths")


@dataclass
class RunningTop:
    """Per channel, the k best (value, item, row, col, image height, width) so far; rows are ranks. Besides,
    each channel's sum over every cell seen and how many cells that was: its mean over the folder."""

    values: torch.Tensor
    items: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    heights: torch.Tensor
    widths: torch.Tensor
    sums: torch.Tensor | None = None
    """1 x C float64."""
    cells: torch.Tensor | None = None
    """1 x C int64: the cells summed (the same for every channel)."""

    @classmethod
    def empty(cls, k: int, channels: int, device: torch.device | str = "cpu") -> RunningTop:
        def full(value, dtype):
            return torch.full((k, channels), value, dtype=dtype, device=device)

        return cls(
            full(float("-inf"), torch.float32),
            full(-1, torch.int64),
            full(0, torch.int32),
            full(0, torch.int32),
            full(0, torch.int32),
            full(0, torch.int32),
            torch.zeros((1, channels), dtype=torch.float64, device=device),
            torch.zeros((1, channels), dtype=torch.int64, device=device),
        )

    @property
    def k(self) -> int:
        return self.values.shape[0]

    def merged(self, *others: RunningTop) -> RunningTop:
        """The k best of all, a tie ranking the lower item index first whatever order they came in."""
        parts = [self, *others]
        stacked = {name: torch.cat([getattr(p, name).to(self.values.device) for p in parts]) for name in FIELDS}
        by_item = torch.argsort(stacked["items"], dim=0, stable=True)
        values = torch.gather(stacked["values"], 0, by_item)
        best = torch.argsort(values, dim=0, descending=True, stable=True)[: self.k]
        chosen = torch.gather(by_item, 0, best)
        counted = [p for p in parts if p.sums is not None]
        sums = sum(p.sums.to(self.values.device) for p in counted) if counted else None
        cells = sum(p.cells.to(self.values.device) for p in counted) if counted else None
        return RunningTop(**{name: torch.gather(stacked[name], 0, chosen) for name in FIELDS}, sums=sums, cells=cells)

    def means(self) -> np.ndarray | None:
        """Each channel's mean over every cell seen; None where nothing was counted."""
        if self.sums is None or int(self.cells.max()) == 0:
            return None
        return (self.sums / self.cells.clamp_min(1)).reshape(-1).cpu().numpy().astype(np.float32)

    def to_numpy(self) -> dict[str, np.ndarray]:
        counted = {} if self.sums is None else {"sums": self.sums.cpu().numpy(), "cells": self.cells.cpu().numpy()}
        return {name: getattr(self, name).cpu().numpy() for name in FIELDS} | counted

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray], device: torch.device | str = "cpu") -> RunningTop:
        counted = {
            name: torch.as_tensor(np.asarray(arrays[name])).to(device) for name in ("sums", "cells") if name in arrays
        }
        return cls(**{name: torch.as_tensor(np.asarray(arrays[name])).to(device) for name in FIELDS}, **counted)


def batch_candidates(
    activation: torch.Tensor, items: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor
) -> RunningTop:
    """Each image's spatial maximum per channel and where it is (the first such position on a tie)."""
    n, channels = activation.shape[:2]
    if activation.dim() == 4:
        flat = activation.float().flatten(2)
        position = flat.argmax(2)
        values = torch.gather(flat, 2, position.unsqueeze(2)).squeeze(2)
        width = activation.shape[3]
        rows, cols = (position // width).int(), (position % width).int()
    else:
        values = activation.float().reshape(n, channels)
        rows = cols = torch.zeros((n, channels), dtype=torch.int32, device=activation.device)
    values = torch.nan_to_num(values, nan=float("-inf"))

    def per_image(t: torch.Tensor, dtype) -> torch.Tensor:
        return t.to(device=activation.device, dtype=dtype).view(n, 1).expand(n, channels)

    flat_all = activation.float().reshape(n, channels, -1)
    sums = flat_all.double().sum((0, 2)).reshape(1, channels)
    cells = torch.full((1, channels), n * flat_all.shape[2], dtype=torch.int64, device=activation.device)
    return RunningTop(
        values,
        per_image(items, torch.int64),
        rows,
        cols,
        per_image(heights, torch.int32),
        per_image(widths, torch.int32),
        sums,
        cells,
    )


class _ReachedLastLayer(Exception):
    pass


def capture_layers(
    engine: Engine, frames: torch.Tensor, paths: Sequence[str], *, tensors: bool = False
) -> dict[str, torch.Tensor]:
    """engine.preprocess (not for `tensors`: N x C x H x W network inputs as they are), then the forward up
    to the last layer asked for: nothing after it is computed."""
    x = frames.float() if tensors else engine.preprocess(frames)[0]
    order = {layer.path: i for i, layer in enumerate(engine.layers)}
    hooked = [path for path in paths if path not in (INPUT, PROB, OUTPUT)]
    out: dict[str, torch.Tensor] = {INPUT: x} if INPUT in paths else {}
    with torch.inference_mode(), ActivationCapture(engine.model, hooked) as capture:
        if PROB in paths or OUTPUT in paths:
            output = engine.model(x)
            out[OUTPUT] = output
            if PROB in paths:
                out[PROB] = output.float().softmax(1)
        elif hooked:
            last = max(hooked, key=order.__getitem__)

            def stop(_module, _inputs, _output):
                raise _ReachedLastLayer

            handle = engine.model.get_submodule(last).register_forward_hook(this_thread_only(stop))
            try:
                with contextlib.suppress(_ReachedLastLayer):
                    engine.model(x)
            finally:
                handle.remove()
        out.update(capture.activations)
    return out


# ---------------------------------------------------------------------------------------------
# One process or many (torchrun)


@dataclass
class Processes:
    """This process's place among torchrun's processes; rank 0 of 1 without torchrun's variables."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started_here: bool = False

    @classmethod
    def from_environment(cls) -> Processes:
        """Joins torchrun's process group (nccl with CUDA, else gloo) when WORLD_SIZE > 1."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        started = False
        if not dist.is_initialized():
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(local_rank % torch.cuda.device_count())
            dist.init_process_group("nccl" if cuda else "gloo")
            started = True
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, started)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> str:
        """Each process on a GPU of its own where there are several (LOCAL_RANK)."""
        if self.world > 1 and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def all_gather(self, value):
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        gathered = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value):
        """Rank 0's `value` on every process."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.started_here:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.started_here = False


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A cheap hash of every tensor's strided sample: random weights differ between runs, and so do atlases."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().flatten()
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        digest.update(flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


def _same_weights_everywhere(engine: Engine, processes: Processes) -> None:
    """Random weights differ per process: then every process takes rank 0's."""
    if len(set(processes.all_gather(weights_fingerprint(engine.model)))) > 1:
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in engine.model.state_dict().values():
                dist.broadcast(tensor, src=0)
