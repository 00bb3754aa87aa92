"""Which layers a model has, in the order its forward pass produces them, and capturing them.

Order and shapes come from one dry run with hooks on every module, so branching networks
(ResNet's blocks, Inception's branches) list in execution order, not in declaration order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .errors import LayerNotFoundError, ModelError

INPUT = "input"
PROB = "prob"
OUTPUT = "output"
"""The model's output when it is not class scores (an image, a map, a regression), as a layer."""


@dataclass(frozen=True)
class LayerInfo:
    path: str
    """Module path as in `model.named_modules()`, or `input` / `prob` for the two pseudo-layers."""
    name: str
    """Friendly name: Caffe's for AlexNet and VGG (conv5), otherwise the path."""
    shape: tuple[int, ...]
    """Output shape without the batch: (C, H, W) or (F,)."""
    module_type: str

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def is_spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def label(self) -> str:
        shape = " x ".join(str(s) for s in self.shape)
        named = self.name if self.name == self.path else f"{self.name} ({self.path})"
        return f"{named}  {shape}"


def discover_layers(model: nn.Module, input_shape: tuple[int, int, int], names: Mapping[str, str]) -> list[LayerInfo]:
    """Every module with a (N,C,H,W) or (N,F) output, ordered by when its output is final.

    A module called twice (ResNet's shared ReLU) is placed where its last call happens, which is
    also the output a capture keeps.
    """
    order: dict[str, LayerInfo] = {}
    handles = []

    def make_hook(path: str, module: nn.Module):
        def hook(_module, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() in (2, 4):
                order.pop(path, None)
                order[path] = LayerInfo(path, names.get(path, path), tuple(output.shape[1:]), type(module).__name__)

        return hook

    for path, module in model.named_modules():
        # TorchScript compiles its submodules' calls away from hooks: only input and output show
        if path and not isinstance(module, torch.jit.ScriptModule):
            handles.append(module.register_forward_hook(make_hook(path, module)))
    try:
        device = next(iter(model.parameters()), torch.zeros(0)).device
        with torch.inference_mode():
            output = model(torch.zeros(1, *input_shape, device=device))
    except Exception as exc:  # a user's model that does not take this input fails in its own way
        shape = " x ".join(map(str, input_shape))
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"the model does not run on a {shape} input ({reason}); give the side it expects with --input-size "
            "and one --mean and --std value per input channel"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    layers = [LayerInfo(INPUT, INPUT, tuple(input_shape), "Input"), *order.values()]
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        layers.append(LayerInfo(PROB, PROB, (output.shape[1],), "Softmax"))
    elif isinstance(output, torch.Tensor) and output.dim() == 4:
        layers.append(LayerInfo(OUTPUT, OUTPUT, tuple(output.shape[1:]), "Output"))
    else:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(f"the model outputs {shape}; livevis shows models that output one N x K or "
                         "N x C x H x W tensor")  # fmt: skip
    return layers


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
               nn.Hardswish, nn.Mish, nn.Softplus)  # fmt: skip
"""Pointwise nonlinearities after which a layer's maps read as features (gates such as Sigmoid are not)."""

CLIPPING = (nn.ReLU, nn.Hardtanh, nn.Hardswish, nn.Threshold)
"""Activations flat over part of their range (ReLU6 is a Hardtanh): a gradient that starts at one of their units
starts from its input, the value before the clip. Past the clip there is none: a unit saturated at 6, the
strongest a ReLU6 layer has, would show nothing, and an image optimised from grey would never move."""

FEATURE_SIDES = (7, 28)
"""The map sides, in cells, of the layers a first look shows: large enough to see where, small enough that
every channel of the layer fits a grid."""


def feature_layer(layers: Iterable[LayerInfo], model: nn.Module) -> LayerInfo | None:
    """The deepest layer that is an activation module with maps of FEATURE_SIDES cells a side (its maps look
    like features; a linear bottleneck's signed maps look like noise); None where there is none."""
    low, high = FEATURE_SIDES
    sized = [layer for layer in layers if layer.is_spatial and layer.path not in (INPUT, PROB, OUTPUT)
             and all(low <= side <= high for side in layer.shape[1:])]  # fmt: skip
    activations = [layer for layer in sized if isinstance(model.get_submodule(layer.path), ACTIVATIONS)]
    return activations[-1] if activations else None


def find_layer(layers: Iterable[LayerInfo], key: str) -> LayerInfo:
    """By module path or friendly name; a wrong key says how to list the right ones."""
    layers = list(layers)
    for layer in layers:
        if key in (layer.path, layer.name):
            return layer
    close = [layer.name for layer in layers if key.lower() in layer.name.lower() or key in layer.path][:8]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise LayerNotFoundError(f"no layer {key!r} in this model{hint}; `livevis layers --model M` lists them")


def this_thread_only(hook: Callable) -> Callable:
    """A forward hook (or pre-hook) that acts only on the thread that made it. A model is shared between threads (the
    live view's worker, a background job mining or optimising with it), and a module's hooks see every
    thread's forward: unguarded, one thread's capture would take the other's activations."""
    owner = threading.get_ident()

    def guarded(*arguments):  # (module, inputs, output), or (module, inputs) for a pre-hook
        if threading.get_ident() == owner:
            return hook(*arguments)
        return None

    return guarded


class ActivationCapture:
    """Forward hooks on the layers being shown, used as a context manager; `release()` removes them.

    Hooks clone what they capture: an in-place ReLU after a conv (AlexNet) would otherwise overwrite
    the stored conv output, which would then show no negative values.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str]):
        self.activations: dict[str, torch.Tensor] = {}
        self._handles = [
            model.get_submodule(path).register_forward_hook(this_thread_only(self._hook(path)))
            for path in paths
            if path not in (INPUT, PROB, OUTPUT)
        ]

    def _hook(self, path: str):
        def hook(_module, _inputs, output):
            self.activations[path] = output.detach().clone()

        return hook

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> ActivationCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
