"""Transformer outputs read as maps: token sequences over the patch grid, and channels-last stages.

A vision transformer's block outputs N x T x D: a few prefix tokens (class, distillation, registers)
and then one token per patch. livevis shows it as D channels over the patch grid, with the prefix tokens
split off first, as timm's `forward_intermediates` does. Swin's stages (and torchvision ConvNeXt's inner
layers) are channels-last, N x H x W x C, and are shown as C x H x W. Everything else a transformer
computes that is not one of these (the attention's per-head queries and keys, windows of Swin's
attention) is not a map and is never drawn as an image.

The patch grid is read off the patch embedding's own output on every forward (a tiny forward hook that
records its shape, per thread), so that an input of another size or shape than the one the layers were
listed at (a tensor input, a non-square model) still splits into the right grid.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import nn

MAX_PREFIX = 16
"""At most this many prefix tokens (class, distillation and registers: DINOv2 with registers has 5)."""
PYRAMID_LEVELS = 6
"""Grids the patch grid halves into (Swin's stages, ConvNeXt's): levels 0..5."""


class PatchGrid:
    """The patch embedding of a model and the grid it produced in the forward now running on this thread
    (the grid it was discovered at until that thread runs one)."""

    def __init__(self, patch: nn.Module, grid: tuple[int, int]):
        self.patch = patch
        self.discovered = grid
        self._local = threading.local()
        self._handle = patch.register_forward_hook(self._record)

    def _record(self, _module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            self._local.grid = (int(output.shape[-2]), int(output.shape[-1]))

    def current(self) -> tuple[int, int]:
        return getattr(self._local, "grid", self.discovered)

    def levels(self, grid: tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """The grid and each halving of it (a stage that merges patches pads an odd side first)."""
        h, w = grid or self.discovered
        out = []
        for _ in range(PYRAMID_LEVELS):
            out.append((h, w))
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return out

    def release(self) -> None:
        self._handle.remove()

    # The hook lives in the model's own hook table: a copy of the model (deepcopy, pickle) must not fail on
    # the per-thread record. A deep copy shares this grid (its forwards have the same geometry); a pickled
    # one starts without a record.
    def __deepcopy__(self, memo) -> PatchGrid:
        return self

    def __getstate__(self) -> dict:
        return {"patch": self.patch, "discovered": self.discovered}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()


@dataclass(frozen=True, eq=False)
class TokenLayout:
    """How one layer's raw output reads as N x C x h x w maps.

    `tokens`: N x T x D, `prefix` tokens first, then one token per cell of the patch grid at pyramid
    `level` (0: the patch grid itself). `channels_last`: N x H x W x C.
    """

    kind: str
    grid: PatchGrid
    prefix: int = 0
    level: int = 0

    def cells(self, tokens: int) -> tuple[int, int]:
        """The (h, w) grid `tokens` patch tokens lie on in the forward running now."""
        h, w = self.grid.levels(self.grid.current())[self.level]
        if h * w != tokens:  # a forward at another size than the one this thread last saw: keep the aspect
            h0, w0 = self.grid.levels()[self.level]
            h = max(1, round(math.sqrt(tokens * h0 / w0)))
            w = tokens // h
            if h * w != tokens:
                raise ValueError(f"{tokens} patch tokens do not lie on a grid like {h0} x {w0}")
        return h, w

    def maps(self, output: torch.Tensor) -> torch.Tensor:
        """The output as N x C x h x w (a view where one can be had; differentiable)."""
        if self.kind == "channels_last":
            return output.permute(0, 3, 1, 2)
        n, t, d = output.shape
        h, w = self.cells(t - self.prefix)
        return output[:, self.prefix :].transpose(1, 2).reshape(n, d, h, w)

    def prefix_tokens(self, output: torch.Tensor) -> torch.Tensor | None:
        """N x P x D: the prefix tokens, None where the layer has none."""
        return output[:, : self.prefix] if self.kind == "tokens" and self.prefix else None

    def describe(self) -> str:
        if self.kind == "channels_last":
            return "channels-last"
        return (
            f"{self.prefix} prefix token{'s' if self.prefix != 1 else ''} + patch tokens"
            if self.prefix
            else ("patch tokens")
        )


Executed = list[tuple[str, nn.Module, tuple[int, ...]]]
"""(path, module, output shape with the batch) of the modules a forward ran, in order."""


def find_patch_embedding(executed: Executed) -> tuple[nn.Module, tuple[int, int]] | None:
    """The module that cuts the image into patches and the grid it made, from the modules in execution order
    with their output shapes: the first convolution whose stride equals its kernel (above 1), as in ViT and
    Swin; else, for a stem of strided convolutions (XCiT, LeViT, hybrid ViTs), the last module before the
    first token sequence whose maps have one cell for each of its patch tokens."""
    for _path, module, shape in executed:
        if isinstance(module, nn.Conv2d) and len(shape) == 4:
            if module.stride == module.kernel_size and max(module.stride) > 1 and module.padding in ((0, 0), 0):
                return module, (shape[2], shape[3])
    first = next((i for i, (_p, _m, shape) in enumerate(executed) if len(shape) == 3 and shape[0] == 1), None)
    if first is None:
        return None
    tokens = executed[first][2][1]
    for _path, module, shape in reversed(executed[:first]):
        if len(shape) == 4 and shape[0] == 1:
            cells = shape[2] * shape[3]
            if min(shape[2:]) > 1 and 0 <= tokens - cells <= MAX_PREFIX and cells > tokens - cells:
                return module, (shape[2], shape[3])
    return None


@dataclass(frozen=True)
class OutputKind:
    """What one module's output is: maps (with a layout where they are not N x C x H x W already), a vector,
    or nothing to draw (`hidden` says why)."""

    shape: tuple[int, ...] | None = None
    """(C, H, W) or (F,): what is shown; None when hidden."""
    layout: TokenLayout | None = None
    hidden: str = ""


def classify_output(
    shape: tuple[int, ...], grid: PatchGrid | None, *, token_model: bool = True, batch: int = 1
) -> OutputKind:
    """How an output of `shape` (batch dimension included) is shown, given the model's patch grid (None for a
    network without one: then only N x C x H x W and N x F outputs are drawn, as always). In a network
    that is not a `token_model` every N x C x H x W output is maps, as in any convolutional network."""
    if len(shape) == 2:
        if grid is not None and shape[0] != batch:  # LeViT's batch norms see the tokens as a batch
            return OutputKind(hidden=f"{shape[0]} x {shape[1]}: every token of the batch in one, not a vector")
        return OutputKind((shape[1],))
    if grid is None or (len(shape) == 4 and shape[2:] == (1, 1)):
        if len(shape) == 4:
            return OutputKind(tuple(shape[1:]))
        return OutputKind(hidden=f"{shape[1]} tokens x {shape[2]}, a sequence on no patch grid, not maps")
    if shape[0] != batch:
        return OutputKind(hidden=f"{' x '.join(map(str, shape))}: windows or pieces of the batch, not maps")
    levels = grid.levels()
    if len(shape) == 3:
        tokens, width = shape[1], shape[2]
        for level, (h, w) in enumerate(levels):
            prefix = tokens - h * w
            on_grid = level == 0 or (prefix == 0 and h * w > 1)  # one token alone (CaiT's class token) is no grid
            if 0 <= prefix <= MAX_PREFIX and on_grid:
                return OutputKind((width, h, w), TokenLayout("tokens", grid, prefix, level))
        return OutputKind(hidden=f"{tokens} tokens x {width}, which do not lie on the patch grid")
    if len(shape) == 4:
        if tuple(shape[2:]) in levels:
            return OutputKind(tuple(shape[1:]))
        if tuple(shape[1:3]) in levels:
            return OutputKind((shape[3], shape[1], shape[2]), TokenLayout("channels_last", grid))
        if not token_model:
            return OutputKind(tuple(shape[1:]))
        return OutputKind(hidden=f"{' x '.join(map(str, shape[1:]))} (per head or per token), not maps")
    return OutputKind(hidden="not maps")


def prefix_names(model: nn.Module, count: int) -> list[str]:
    """What each prefix token is, in timm's and torchvision's order: class, distillation, registers."""
    names = []
    if getattr(model, "cls_token", None) is not None or getattr(model, "class_token", None) is not None:
        names.append("class")
    if getattr(model, "dist_token", None) is not None:
        names.append("distillation")
    registers = int(getattr(model, "num_reg_tokens", 0) or 0)
    names += [f"register {i}" for i in range(registers)]
    if len(names) != count:
        names = ["class"] + [f"prefix {i}" for i in range(1, count)] if count else []
    return names
