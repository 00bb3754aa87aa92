"""What an optimised image maximises, and how the network's outputs are taken with their gradients.

Objectives (`channel`, `neuron`, `logit`) are values per image computed from captured layer outputs, and
compose with `+`, `-` and `*` as in Lucid. `GradientCapture` hooks the layers an objective reads, keeping the
graph and stopping the forward once they have run; the optimiser loop asks for the image's gradients alone, so
that the model's weights, shared with the live view and other optimisations, are never changed. They are
apart from the optimiser loop so that a new objective needs no change to it.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Mapping, Sequence

import torch

from ..errors import OptionError
from ..layers import CLIPPING, INPUT, PROB, as_maps, layout_of
from ..transformers.tokens import TokenLayout


class Objective:
    """A value per image of the batch, to be maximised, computed from the captured layer outputs.

    Objectives compose: ``channel("conv5", 3) - 0.5 * channel("conv5", 7)``.
    """

    def __init__(
        self, compute: Callable[[Mapping[str, torch.Tensor]], torch.Tensor], paths: frozenset[str], description: str
    ):
        self.compute = compute
        self.paths = paths
        """Layer paths the objective reads (`PROB` for the logits)."""
        self.description = description

    def __call__(self, activations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.compute(activations)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    def _combine(self, other: Objective | float, op: Callable, symbol: str, reverse: bool = False) -> Objective:
        if isinstance(other, Objective):
            a, b = (other, self) if reverse else (self, other)
            return Objective(
                lambda acts: op(a(acts), b(acts)), a.paths | b.paths, f"({a.description} {symbol} {b.description})"
            )
        if not isinstance(other, int | float):
            return NotImplemented
        if reverse:
            return Objective(lambda acts: op(other, self(acts)), self.paths, f"({other:g} {symbol} {self.description})")
        return Objective(lambda acts: op(self(acts), other), self.paths, f"({self.description} {symbol} {other:g})")

    def __add__(self, other):
        return self._combine(other, operator.add, "+")

    def __radd__(self, other):
        return self._combine(other, operator.add, "+", reverse=True)

    def __sub__(self, other):
        return self._combine(other, operator.sub, "-")

    def __rsub__(self, other):
        return self._combine(other, operator.sub, "-", reverse=True)

    def __mul__(self, other):
        return self._combine(other, operator.mul, "*")

    def __rmul__(self, other):
        return self._combine(other, operator.mul, "*", reverse=True)

    def __neg__(self) -> Objective:
        return Objective(lambda acts: -self(acts), self.paths, f"-{self.description}")


def _select(output: torch.Tensor, unit: int | Sequence[int]) -> torch.Tensor:
    """Channel `unit` of every image, or channel unit[i] of image i."""
    if isinstance(unit, int):
        return output[:, unit]
    if len(unit) != output.shape[0]:
        raise OptionError(f"{len(unit)} channels for a batch of {output.shape[0]} images")
    return output[torch.arange(len(unit), device=output.device), torch.as_tensor(list(unit), device=output.device)]


def channel(path: str, unit: int | Sequence[int]) -> Objective:
    """A channel's mean over space (Lucid's `channel`); on a layer without a map, the unit's value.

    A sequence of units gives image i of the batch its own unit[i]: many channels in one batch.
    """

    def compute(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        picked = _select(acts[path], unit)
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked

    return Objective(compute, frozenset({path}), f"channel({path}, {unit})")


def direction(path: str, vector) -> Objective:
    """A weighted sum of a layer's channels, averaged over space (Lucid's `direction`, as a dot product): a
    concept's channel vector. Equals the sum of `weight * channel(path, c)` over the channels, in one pass."""
    weights = torch.as_tensor(vector, dtype=torch.float32).reshape(-1)

    def compute(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        output = acts[path]
        if output.shape[1] != weights.numel():
            raise OptionError(f"a direction of {weights.numel()} channels for a layer of {output.shape[1]}")
        summed = torch.einsum("bc...,c->b...", output, weights.to(output.device, output.dtype))
        return summed.flatten(1).mean(1) if summed.dim() > 1 else summed

    return Objective(compute, frozenset({path}), f"direction({path}, {weights.numel()} channels)")


def neuron(path: str, unit: int | Sequence[int], y: int | None = None, x: int | None = None) -> Objective:
    """One unit of a channel's map, the centre one by default (the Deep Visualization Toolbox's)."""

    def compute(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        output = acts[path]
        if output.dim() != 4:
            raise OptionError(f"{path} has no spatial map; use the channel objective")
        row = output.shape[2] // 2 if y is None else y
        col = output.shape[3] // 2 if x is None else x
        return _select(output[:, :, row, col], unit)

    return Objective(compute, frozenset({path}), f"neuron({path}, {unit})")


def logit(unit: int | Sequence[int]) -> Objective:
    """A class's score before the softmax: the softmax can rise by lowering the other classes instead."""
    objective = channel(PROB, unit)
    objective.description = f"logit({unit})"
    return objective


# Capturing with gradients ----------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised from a hook once every layer an objective reads has run: the rest of the network is not needed."""


class GradientCapture:
    """Forward hooks that keep the graph (`ActivationCapture` detaches), stopping the forward early; for a
    clipping activation (`layers.CLIPPING`), its input, as Lucid optimises pre-ReLU maps.

    A module called more than once (ResNet's shared ReLU) is taken at its last call, as the layer list
    and the live view do; the number of calls is counted in one dry run. Forwards of the same model on other
    threads (the live view) pass the hooks untouched.
    """

    def __init__(self, model: torch.nn.Module, paths: frozenset[str]):
        self.model = model
        self.paths = sorted(path for path in paths if path not in (INPUT, PROB))
        self.needs_logits = PROB in paths
        self.activations: dict[str, torch.Tensor] = {}
        self._calls: dict[str, int] = {}
        self._needed_calls: dict[str, int] | None = None
        self._running_in: int | None = None
        self._handles = []
        for path in self.paths:
            module, layout = model.get_submodule(path), layout_of(model, path)
            if isinstance(module, CLIPPING):  # its input, before an in-place op overwrites it
                handle = module.register_forward_pre_hook(
                    lambda _m, inputs, p=path, lay=layout: self._keep(p, inputs[0], lay)
                )
            else:
                handle = module.register_forward_hook(
                    lambda _m, _i, output, p=path, lay=layout: self._keep(p, output, lay)
                )
            self._handles.append(handle)

    def _keep(self, path: str, value: torch.Tensor, layout: TokenLayout | None) -> None:
        if threading.get_ident() != self._running_in:
            return  # the live view's forward on another thread, through the same model
        self._calls[path] = self._calls.get(path, 0) + 1
        if self._calls[path] != (self._needed_calls or {}).get(path):
            return
        done = len(self.activations) + 1 == len(self.paths) and not self.needs_logits
        value = as_maps(value, layout)  # a transformer's tokens as maps over the patch grid
        # an in-place op later in the forward (AlexNet's ReLU) would overwrite what is kept
        self.activations[path] = value if done else value.clone()
        if done:
            raise _StopForward

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The outputs the objective reads, `PROB` being the logits, for network input `x`."""
        self._running_in = threading.get_ident()
        if self._needed_calls is None and self.paths:
            with torch.no_grad():
                self._calls = {}
                self.model(x[:1].detach())
                self._needed_calls = dict(self._calls)
        self.activations, self._calls = {}, {}
        try:
            logits = self.model(x)
        except _StopForward:
            logits = None
        if self.needs_logits:
            self.activations[PROB] = logits
        return self.activations

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> GradientCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
