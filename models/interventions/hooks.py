"""Edits applied in the forward pass: a forward hook on each edited layer's module that hands the rest of the
network the edited output.

The layers' hooks are added as each forward starts (a pre-hook on the whole model) and removed as it ends, so
that they run after every hook already there: a capture of an edited layer (its grid), a user's own hook, keep
the layer as measured, and only what follows sees the edit. A module that runs more than once in a forward
(ResNet's shared ReLU) is edited at its last call, the one its layer stands for. The hooks act only on the
thread that made them (a model is shared between the live view and background jobs).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..layers import LayerInfo, this_thread_only
from ..transformers.tokens import TokenLayout
from .edits import Edit, by_layer


def split(output: torch.Tensor, layout: TokenLayout | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer's raw output as maps (N x C x H x W, or N x F) and its prefix tokens (N x P x D, or None)."""
    if layout is None:
        return output, None
    return layout.maps(output), layout.prefix_tokens(output)


def join(maps: torch.Tensor, prefix: torch.Tensor | None, layout: TokenLayout | None) -> torch.Tensor:
    """The inverse of `split`: maps and prefix tokens back in the layer's own layout."""
    if layout is None:
        return maps
    if layout.kind == "channels_last":
        return maps.permute(0, 2, 3, 1).contiguous()
    n, d = maps.shape[:2]
    tokens = maps.reshape(n, d, -1).transpose(1, 2)
    return torch.cat([prefix, tokens], dim=1) if prefix is not None else tokens.contiguous()


class SeenMeans:
    """Each edited layer's channel means over the frames it was measured on (the mean mode where no mined folder
    gives them): kept by whoever runs frame after frame (the live pipeline), one forward at a time."""

    def __init__(self):
        self._sums: dict[str, tuple[torch.Tensor, int]] = {}

    def add(self, path: str, maps: torch.Tensor) -> torch.Tensor:
        """Counts this forward's measured maps in; the means so far, this forward included (C)."""
        flat = maps.detach().float().reshape(maps.shape[0], maps.shape[1], -1)
        total, cells = self._sums.get(path, (torch.zeros(maps.shape[1], device=maps.device), 0))
        if total.shape[0] != maps.shape[1] or total.device != maps.device:  # another model with the same path
            total, cells = torch.zeros(maps.shape[1], device=maps.device), 0
        total, cells = total + flat.sum((0, 2)), cells + flat.shape[0] * flat.shape[2]
        self._sums[path] = (total, cells)
        return total / cells

    def clear(self) -> None:
        self._sums.clear()


class EditHooks:
    """The edits of one forward pass as forward hooks on their layers' modules; a context manager that removes
    them on leaving."""

    def __init__(
        self, model: nn.Module, layers: Iterable[LayerInfo], edits: Iterable[Edit], seen: SeenMeans | None = None
    ):
        known = {layer.path: layer for layer in layers}
        self._model = model
        self._seen = seen if seen is not None else SeenMeans()
        self._edits = [(known[path], tuple(found)) for path, found in by_layer(edits).items()]
        self._calls: dict[str, int] = {}
        self._layer_handles: list = []
        self._handles = []
        if self._edits:
            self._handles = [
                model.register_forward_pre_hook(this_thread_only(self._start)),
                model.register_forward_hook(this_thread_only(self._end), always_call=True),
            ]

    def _start(self, *_) -> None:
        """A forward starts: each edited layer gets its hook, after the hooks it has."""
        self._remove_layer_hooks()
        self._calls.clear()
        for layer, edits in self._edits:
            module = self._model.get_submodule(layer.path)
            self._layer_handles.append(module.register_forward_hook(this_thread_only(self._hook(layer, edits))))

    def _end(self, *_) -> None:
        self._remove_layer_hooks()

    def _remove_layer_hooks(self) -> None:
        for handle in self._layer_handles:
            handle.remove()
        self._layer_handles.clear()

    def _hook(self, layer: LayerInfo, edits: tuple[Edit, ...]):
        def hook(_module, _inputs, output):
            self._calls[layer.path] = self._calls.get(layer.path, 0) + 1
            if self._calls[layer.path] != layer.calls or not isinstance(output, torch.Tensor):
                return None
            maps, prefix = split(output, layer.layout)
            seen = self._seen.add(layer.path, maps) if any(edit.needs_seen_means for edit in edits) else None
            for edit in edits:
                maps, prefix = edit.apply(maps, prefix, seen)
            return join(maps, prefix, layer.layout)

        return hook

    def release(self) -> None:
        self._remove_layer_hooks()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> EditHooks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
