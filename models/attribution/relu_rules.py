"""The ReLU backward rules a unit's input gradient is shown under, swapped in for one pass.

`MODES`: the ordinary gradient, deconvolution (Zeiler & Fergus 2014: every ReLU passes the positive
part of the gradient back, whatever its input) and guided backpropagation (Springenberg et al. 2015:
the positive part, only where the ReLU's input was positive). `relu_backward_rule` catches every ReLU
the forward pass applies, module or functional, through a torch function mode, so neither the model
nor `torch.nn.functional` is edited. Kept apart from models/backprop.py because the rule knows nothing
of layers, seeds or pictures: it only rewrites the backward of ReLU calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ModelError, OptionError

MODES = ("grad", "deconv", "guided")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise OptionError(f"unknown backprop mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


class _ReluRule(torch.autograd.Function):
    """Runs the ReLU exactly as the model called it (in place or not); only its backward differs.

    `upper` is the clip of a ReLU6-like ReLU (None for a plain one). The mask of where the ReLU passes
    its input is read from the output, which an in-place ReLU leaves as the only copy: out > 0 (and
    out < upper) exactly where the input was in (0, upper).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, run: Callable[[], torch.Tensor], upper: float | None, guided: bool):
        out = run()
        if out is x:
            ctx.mark_dirty(x)
        ctx.upper = upper
        ctx.guided = guided
        if guided:
            ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if not ctx.guided:  # deconv: the positive part, whatever the input was
            return grad.clamp(min=0), None, None, None
        (out,) = ctx.saved_tensors
        # the ordinary ReLU / ReLU6 backward, fed the output (which passes exactly where the input did),
        # then the positive part: two fused passes
        if ctx.upper is None:
            passed = torch.ops.aten.threshold_backward(grad, out, 0.0)
        else:
            passed = torch.ops.aten.hardtanh_backward(grad, out, 0.0, ctx.upper)
        return passed.clamp_(min=0), None, None, None


def _hardtanh_bounds(args: tuple, kwargs: dict) -> tuple[float, float]:
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return float(low), float(high)


def _relu_upper(func: Callable, args: tuple, kwargs: dict) -> tuple[bool, float | None]:
    """(is this call a ReLU, its clip or None). A hardtanh is a ReLU only where its floor is 0 (ReLU6)."""
    try:
        hash(func)
    except TypeError:  # no ReLU is unhashable
        return False, None
    if func in _PLAIN_RELUS:
        return True, None
    if func in _RELU6S:
        return True, 6.0
    if func in _HARDTANHS:
        low, high = _hardtanh_bounds(args, kwargs)
        return (low == 0.0 and high > 0.0), high
    return False, None


_PLAIN_RELUS = frozenset({F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_})
_RELU6S = frozenset({F.relu6, torch._C._nn.relu6, torch._C._nn.relu6_})
_HARDTANHS = frozenset({F.hardtanh, torch._C._nn.hardtanh, torch._C._nn.hardtanh_})


class ReluRule(TorchFunctionMode):
    """The rule in force for one pass; `count` is how many ReLU applications it has seen.

    A torch function mode sees every call of relu, relu_, Tensor.relu, F.relu6 and F.hardtanh(0, x)
    made on this thread while it is active: nn.ReLU and nn.ReLU6 (which call them), a model's own
    F.relu, and references to F.relu taken before the pass (`from torch.nn.functional import relu`,
    timm's `act_fn = get_act_fn("relu")`), which patching `torch.nn.functional` would miss. Other
    functions run untouched. A ReLU given a hardtanh's clip (ReLU6) keeps its clip in the guided rule:
    the gradient passes where 0 < x < 6; deconv passes the positive part everywhere.
    """

    def __init__(self, mode: str):
        super().__init__()
        self.mode = check_mode(mode)
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        is_relu, upper = _relu_upper(func, args, kwargs)
        if not is_relu:
            return func(*args, **kwargs)
        self.count += 1
        x = args[0] if args else kwargs.get("input", kwargs.get("self"))
        needs_rule = self.mode != "grad" and torch.is_grad_enabled() and getattr(x, "requires_grad", False)
        if not needs_rule:  # nothing will flow back through this call
            return func(*args, **kwargs)
        return _ReluRule.apply(x, lambda: func(*args, **kwargs), upper, self.mode == "guided")


@contextmanager
def relu_backward_rule(model: nn.Module, mode: str) -> Iterator[ReluRule]:
    """Every ReLU the model applies inside the block backpropagates by `mode`'s rule; nothing is edited.

    The rule is fixed when the forward pass runs: a backward pass started after the block still
    uses it. Only this thread is affected. TorchScript modules run outside Python, where no rule can
    reach them, so deconv and guided refuse models that contain them.
    """
    rule = ReluRule(mode)
    if mode != "grad":
        scripted = [path for path, module in model.named_modules() if isinstance(module, torch.jit.ScriptModule)]
        if scripted:
            raise ModelError(
                f"{mode} cannot reach the ReLUs inside TorchScript module {scripted[0] or 'model'}; "
                "load the model as a Python module, or use the grad mode"
            )
    with rule:
        yield rule
