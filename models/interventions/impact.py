"""Which units of a layer matter for an answer on this frame: each channel's effect on a class's score, as the
first-order estimate for every channel and as measured for the strongest few.

The estimate of switching channel c off is the change the linear term predicts, -sum(A_c * dS/dA_c) over the
map (the activation times the gradient of the class score S); its mean mode, sum((mean_c - A_c) * dS/dA_c);
scaling by f, (f - 1) * sum(A_c * dS/dA_c). The measured change runs the network with the channel edited.

Both come from two passes that share the part before the layer: the first runs the frame as measured (its
gradient gives the estimates), the second replays what the layers before gave and runs the rest on a batch of
one copy per measured channel, each with its channel edited. A linear layer of the second pass computes only
what changed in its input (a channel of AlexNet's conv5 is 36 of the 9216 inputs of its first classifier layer).
A network whose later part cannot take a larger batch than its earlier part gave (a concatenation with an
earlier tensor) is run whole on the batch instead: the same numbers, more work.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import OptionError
from ..layers import LayerInfo, this_thread_only
from .edits import MODES, UnitEdit
from .hooks import join, split

MEASURED = 20
"""How many channels are measured, the strongest by the estimate."""


@dataclass(frozen=True)
class Impact:
    """The effect of each channel of a layer on one class's score (its logit) on one frame."""

    layer: str
    class_index: int
    score: float
    """The class's logit as measured."""
    estimates: np.ndarray
    """C: the first-order change of the score with each channel edited (negative: the channel supports it)."""
    measured: dict[int, float]
    """The change with the channel edited, run through the network, for the channels measured."""
    probability: float
    measured_probability: dict[int, float]
    """The class's probability with each measured channel edited."""

    def ranked(self) -> list[int]:
        """The channels by their estimated support of the class, strongest first."""
        return [int(c) for c in np.argsort(self.estimates, kind="stable")]


def channel_impact(
    engine,
    network_input: torch.Tensor,
    layer: LayerInfo,
    class_index: int | None = None,
    *,
    mode: str = "zero",
    factor: float = 0.0,
    means: np.ndarray | None = None,
    measured: int = MEASURED,
) -> Impact:
    """`network_input`: the exact 1 x C x S x S input (a `ForwardResult.input`). `class_index`: None for the
    top class. `means`: each channel's mean (mode `mean`)."""
    if mode not in MODES:
        raise OptionError(f"unknown edit mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "mean" and means is None:
        raise OptionError("the mean mode needs each channel's mean")
    model = engine.model
    module = model.get_submodule(layer.path)
    order = {"calls": 0}
    state: dict = {}
    replay = _Replay(model)

    def expand(_module, _inputs, output):
        order["calls"] += 1
        if order["calls"] != layer.calls:
            return None
        replay.cut = True
        maps, prefix = split(output.detach(), layer.layout)
        maps = maps.float().requires_grad_(True)
        prefix = None if prefix is None else prefix.float().requires_grad_(True)
        state["maps"], state["prefix"] = maps, prefix
        if "channels" not in state:  # a copy: an in-place activation may follow, and `maps` must stay as measured
            torch.set_grad_enabled(True)  # from here on: the graph of what follows the layer, no earlier
            return join(maps.clone(), None if prefix is None else prefix.clone(), layer.layout).to(output.dtype)
        copies = [_edited(maps, prefix, c, mode, factor, means) for c in state["channels"]]
        batch_maps = torch.cat([m for m, _ in copies])
        batch_prefix = None if prefix is None else torch.cat([p for _, p in copies])
        return join(batch_maps, batch_prefix, layer.layout).to(output.dtype)

    def run(x: torch.Tensor) -> torch.Tensor:
        order["calls"] = 0
        first = "channels" not in state
        with replay.recording() if first else replay.replaying():
            handle = module.register_forward_hook(this_thread_only(expand))
            try:
                with torch.no_grad():  # up to the layer: no graph (the hook turns it on for what follows)
                    return model(x)
            finally:
                handle.remove()

    with torch.inference_mode(False):  # a caller's inference mode (the pipeline's) set aside
        return _measure(
            run, state, network_input.clone(), layer, class_index, mode, factor, means, measured, model, module
        )


def _measure(run, state, x, layer, class_index, mode, factor, means, measured, model, module) -> Impact:
    logits = run(x)  # the frame as measured: its gradient at the layer gives the estimates
    klass = int(logits[0].argmax()) if class_index is None else int(class_index)
    if not 0 <= klass < logits.shape[1]:
        raise OptionError(f"class {klass} is out of range: the model has classes 0..{logits.shape[1] - 1}")
    prefix = state["prefix"]
    wrt = [state["maps"]] if prefix is None else [state["maps"], prefix]
    gradients = torch.autograd.grad(logits[0, klass], wrt)
    estimates = _estimates(state["maps"].detach()[0], gradients[0][0], mode, factor, means)
    if prefix is not None:  # a token layer: the prefix tokens' features are the same channels
        tokens = prefix.detach()[0].t()  # D x P: a channel's value in each prefix token
        estimates = estimates + _estimates(tokens, gradients[1][0].t(), mode, factor, means)
    strongest = np.argsort(estimates, kind="stable")[: max(0, min(measured, len(estimates)))].tolist()
    state["channels"] = strongest
    with torch.no_grad():
        try:
            batch = run(x)
        except RuntimeError:  # the later part needs a batch as large as the earlier one gave
            batch = _whole_batches(model, module, layer, x, strongest, mode, factor, means)
    logits = logits.detach()
    score, probability = float(logits[0, klass]), float(logits[0].float().softmax(0)[klass])
    edited = batch.float()
    changes = (edited[:, klass] - score).tolist()
    probabilities = edited.softmax(1)[:, klass].tolist()
    return Impact(
        layer.path,
        klass,
        score,
        estimates,
        dict(zip(strongest, changes, strict=True)),
        probability,
        dict(zip(strongest, probabilities, strict=True)),
    )


class _Replay:
    """What the modules before the layer gave on the first pass, given back on the second without computing them
    again: the second pass costs the part after the layer. Each leaf module's outputs up to the layer are kept
    (copies: an in-place operation later in the pass may change the tensor itself); on the replay the module
    returns them in the order it made them, and computes as usual once they are used up (a module shared across
    the layer). Other threads running the same model are left alone."""

    def __init__(self, model: torch.nn.Module):
        self._owner = threading.get_ident()
        self._leaves = [m for m in model.modules() if next(m.children(), None) is None]
        self._outputs: dict[torch.nn.Module, list] = {}
        self._linear_calls: dict[torch.nn.Module, list] = {}
        """Each linear layer after the cut: what it was given and gave on the first pass, a row each."""
        self.cut = False
        """Set once the layer's own output was made: nothing after it is kept."""

    @contextlib.contextmanager
    def recording(self):
        def keep(module, inputs, output):
            if not self.cut:
                kept = output.detach().clone() if isinstance(output, torch.Tensor) else _Unkept
                self._outputs.setdefault(module, []).append(kept)
            elif isinstance(module, torch.nn.Linear) and inputs and inputs[0].dim() == 2 and len(inputs[0]) == 1:
                # copies: an in-place activation after the layer changes its output itself
                kept = (inputs[0].detach().clone(), output.detach().clone())
                self._linear_calls.setdefault(module, []).append(kept)

        handles = [leaf.register_forward_hook(this_thread_only(keep)) for leaf in self._leaves]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def replaying(self):
        """Where something kept is not a tensor (a module that returns a tuple), nothing is replayed."""
        patched = {} if any(_Unkept in out for out in self._outputs.values()) else dict(self._outputs)
        linears = {m: calls for m, calls in self._linear_calls.items() if m not in self._outputs}
        own = {module: module.__dict__.get("forward") for module in [*patched, *linears]}  # set on the instance
        for module, outputs in patched.items():
            module.forward = self._replayed(module.forward, list(outputs))
        for module, calls in linears.items():
            module.forward = self._changes_only(module, module.forward, list(calls))
        try:
            yield
        finally:
            for module, before in own.items():
                if before is None:
                    del module.forward
                else:
                    module.forward = before

    def _replayed(self, compute, queue: list):
        def forward(*args, **kwargs):
            if queue and threading.get_ident() == self._owner:
                return queue.pop(0)
            return compute(*args, **kwargs)

        return forward

    def _changes_only(self, linear: torch.nn.Linear, compute, queue: list):
        """y = y0 + sum over each run a:b of changed inputs of (x - x0)[:, a:b] W[:, a:b]^T, where x0 and y0 are
        what the layer was given and gave on the first pass: exact, and cheap where the changes lie in few runs
        (a channel's cells flattened); else the whole product. W[:, a:b] is a view: no weight is copied."""

        def forward(x, *args, **kwargs):
            if not queue or threading.get_ident() != self._owner or args or kwargs:
                return compute(x, *args, **kwargs)
            first_input, first_output = queue.pop(0)
            if x.dim() != 2 or x.shape[1] != first_input.shape[1] or x.dtype != first_input.dtype:
                return compute(x)
            runs = _runs((x != first_input).any(0).nonzero().squeeze(1).tolist())
            if len(runs) > _MOST_RUNS or 4 * sum(b - a for a, b in runs) > x.shape[1]:
                return compute(x)
            output = first_output.expand(len(x), -1).clone()
            for a, b in runs:
                output.addmm_(x[:, a:b] - first_input[:, a:b], linear.weight[:, a:b].t())
            return output

        return forward


_MOST_RUNS = 64
"""More runs of changed inputs than this and a linear layer computes its whole product: one small product per
run would cost more."""


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as runs of consecutive ones, [start, stop)."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


class _Unkept:
    """An output of a kind the replay does not keep."""


def _estimates(activation, gradient, mode: str, factor: float, means) -> np.ndarray:
    """The first-order change of the score with each channel edited: gradient . (edited - measured)."""
    a, g = activation.float(), gradient.float()
    if mode == "zero":
        change = -a
    elif mode == "scale":
        change = (factor - 1.0) * a
    else:
        shape = (-1, *([1] * (a.dim() - 1)))
        change = torch.as_tensor(means, dtype=a.dtype, device=a.device).reshape(shape) - a
    return (change * g).reshape(a.shape[0], -1).sum(1).cpu().numpy()


def _edited(maps, prefix, channel: int, mode: str, factor: float, means):
    edit = UnitEdit("", (channel,), mode, factor, means=None if means is None else (float(means[channel]),))
    return edit.apply(maps.detach(), prefix)


def _whole_batches(model, module, layer, x, channels, mode, factor, means) -> torch.Tensor:
    """The same measurement with the whole network run on a batch: one copy of the frame per channel, each
    copy's channel edited at the layer."""
    calls = {"n": 0}

    def edit_each(_module, _inputs, output):
        calls["n"] += 1
        if calls["n"] != layer.calls:
            return None
        maps, prefix = split(output, layer.layout)
        rows = []
        for index, channel in enumerate(channels):
            one_prefix = None if prefix is None else prefix[index : index + 1]
            rows.append(_edited(maps[index : index + 1], one_prefix, channel, mode, factor, means))
        batch_maps = torch.cat([m for m, _ in rows])
        batch_prefix = None if prefix is None else torch.cat([p for _, p in rows])
        return join(batch_maps, batch_prefix, layer.layout)

    handle = module.register_forward_hook(this_thread_only(edit_each))
    try:
        return model(x.expand(len(channels), *x.shape[1:]).contiguous())
    finally:
        handle.remove()
