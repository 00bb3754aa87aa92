"""Which layers a model has, in the order its forward pass produces them, and capturing them.

Order and shapes come from one dry run with hooks on every module, so branching networks
(ResNet's blocks, Inception's branches) list in execution order, not in declaration order.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .detection.outputs import CLASSIFY, DETECT, MAPS, SEGMENT, output_task
from .errors import LayerNotFoundError, ModelError
from .transformers.attention import attention_modules
from .transformers.tokens import PatchGrid, TokenLayout, classify_output, find_patch_embedding, prefix_names

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
    """Output shape without the batch, as shown: (C, H, W) or (F,). A transformer's tokens are (D, h, w)
    over the patch grid (see `layout`)."""
    module_type: str
    layout: TokenLayout | None = field(default=None, compare=False, repr=False)
    """How the raw output reads as maps, for token sequences and channels-last outputs; None where the
    output is N x C x H x W or N x F already."""
    calls: int = field(default=1, compare=False)
    """How many times its module runs in one forward (ResNet's shared ReLU: twice); the layer is its last."""

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def is_spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def prefix_tokens(self) -> int:
        """Prefix tokens (class, distillation, registers) the layer has besides its maps."""
        return self.layout.prefix if self.layout is not None and self.layout.kind == "tokens" else 0

    @property
    def label(self) -> str:
        shape = " x ".join(str(s) for s in self.shape)
        named = self.name if self.name == self.path else f"{self.name} ({self.path})"
        extra = f" + {self.prefix_tokens} token{'s' if self.prefix_tokens > 1 else ''}" if self.prefix_tokens else ""
        return f"{named}  {shape}{extra}"


@dataclass
class TokenModel:
    """What discovery learnt of a transformer (or any network whose outputs are not all N x C x H x W):
    its patch grid, what its prefix tokens are, and how each layer reads as maps."""

    grid: PatchGrid
    prefix: list[str]
    layouts: dict[str, TokenLayout]


_TOKEN_MODELS: weakref.WeakKeyDictionary[nn.Module, TokenModel] = weakref.WeakKeyDictionary()
_HIDDEN: weakref.WeakKeyDictionary[nn.Module, dict[str, str]] = weakref.WeakKeyDictionary()
_TASKS: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()
_LEVEL_NAMES: weakref.WeakKeyDictionary[nn.Module, dict[str, str]] = weakref.WeakKeyDictionary()
LEVEL = ":"
"""Between a module's path and a key of the mapping it returns: `backbone.fpn:pool`, a pyramid level."""


def hidden_layers(model: nn.Module) -> dict[str, str]:
    """The modules discovery saw but does not show, with what they output instead of maps."""
    return _HIDDEN.get(model, {})


def token_model(model: nn.Module) -> TokenModel | None:
    """The token description of a model whose layers were discovered; None for a plain convolutional one."""
    return _TOKEN_MODELS.get(model)


def layout_of(model: nn.Module, path: str) -> TokenLayout | None:
    """How a layer's raw output reads as maps (None: it is N x C x H x W or N x F already)."""
    found = _TOKEN_MODELS.get(model)
    return None if found is None else found.layouts.get(path)


def as_maps(output: torch.Tensor, layout: TokenLayout | None) -> torch.Tensor:
    """A layer's raw output as N x C x H x W maps (or N x F), a view where possible."""
    return output if layout is None else layout.maps(output)


def discover_layers(model: nn.Module, input_shape: tuple[int, int, int], names: Mapping[str, str]) -> list[LayerInfo]:
    """Every module with a (N,C,H,W) or (N,F) output, ordered by when its output is final.

    A module called twice (ResNet's shared ReLU) is placed where its last call happens, which is
    also the output a capture keeps.
    """
    order: dict[str, tuple[nn.Module, tuple[int, ...], bool]] = {}
    calls: dict[str, int] = {}
    renamed: dict[str, str] = {}
    handles = []

    def make_hook(path: str, module: nn.Module):
        def hook(_module, inputs, output):
            calls[path] = calls.get(path, 0) + 1
            if isinstance(output, torch.Tensor) and output.dim() in (2, 3, 4):
                passes_through = bool(inputs) and output is inputs[0]
                order.pop(path, None)
                order[path] = (module, tuple(output.shape), passes_through, output)
            elif (
                isinstance(output, Mapping)
                and output
                and all(isinstance(v, torch.Tensor) and v.dim() == 4 for v in output.values())
            ):
                _add_levels(path, module, output, order, renamed)

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
    task = output_task(output)
    if task == DETECT:  # per-box heads (N boxes x ...) are not maps of the image
        order = {path: found for path, found in order.items() if found[1][0] == 1 and not path.startswith("roi_heads")}
    _LEVEL_NAMES[model] = renamed
    shown = [replace(layer, calls=calls.get(layer.path, 1)) for layer in _shown_layers(model, order, names)]
    layers = [LayerInfo(INPUT, INPUT, tuple(input_shape), "Input"), *shown]
    if task == CLASSIFY:
        layers.append(LayerInfo(PROB, PROB, (output.shape[1],), "Softmax"))
    elif task in (MAPS, SEGMENT):
        out = output if task == MAPS else output["out"]
        layers.append(LayerInfo(OUTPUT, OUTPUT, tuple(out.shape[1:]), "Output"))
    _TASKS[model] = task
    return layers


def model_task(model: nn.Module) -> str:
    """What a model whose layers were discovered outputs (`detection.CLASSIFY`, `MAPS`, `SEGMENT`, `DETECT`)."""
    return _TASKS.get(model, CLASSIFY)


def _add_levels(path: str, module: nn.Module, levels: Mapping, order: dict, renamed: dict[str, str]) -> None:
    """A feature pyramid's levels as layers of their own (`PATH:KEY`), where a module returns a mapping of maps
    (torchvision's FPN, SSD's backbone). A level that is a module's output already is that module's layer,
    named after its level where the module lies deeper inside (the FPN's `layer_blocks.0` is `fpn:0`; a
    backbone's direct children keep their names)."""
    owners = {id(found[3]): owner for owner, found in order.items()}
    for key, tensor in levels.items():
        owner = owners.get(id(tensor))
        level = f"{path}{LEVEL}{key}"
        if owner is None:
            order[level] = (module, tuple(tensor.shape), False, tensor)
        elif owner not in renamed and owner.startswith(path + ".") and "." in owner[len(path) + 1 :]:
            renamed[owner] = level


ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Mish,
    nn.Softplus,
)
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
    sized = [
        layer
        for layer in layers
        if layer.is_spatial
        and layer.path not in (INPUT, PROB, OUTPUT)
        and all(low <= side <= high for side in layer.shape[1:])
    ]
    activations = [layer for layer in sized if isinstance(module_of(model, layer.path), ACTIVATIONS)]
    return activations[-1] if activations else None


def _shown_layers(model: nn.Module, order: dict, names: Mapping[str, str]) -> list[LayerInfo]:
    """The outputs that are maps or vectors, read through the token layout where they are a transformer's;
    registers what was learnt of a transformer for the hooks that later read its layers."""
    executed = [(path, module, shape) for path, (module, shape, *_) in order.items()]
    found = find_patch_embedding(executed)
    previous = _TOKEN_MODELS.pop(model, None)
    if previous is not None:
        previous.grid.release()
    grid = PatchGrid(*found) if found is not None else None
    # what runs up to the patch embedding (a convolutional stem) is read as in any convolutional network
    stem = _up_to(executed, found[0]) if found is not None else set()
    kinds = {path: classify_output(shape, None if path in stem else grid) for path, _module, shape in executed}
    is_token_model = any(kind.layout is not None for kind in kinds.values())
    if not is_token_model:
        if grid is not None:
            grid.release()
        grid = None
        kinds = {path: classify_output(shape, None) for path, _module, shape in executed}
    layers, hidden = [], {}
    renamed = _LEVEL_NAMES.get(model, {})
    for path, (module, _shape, passes_through, _output) in order.items():
        kind = kinds[path]
        if is_token_model and passes_through:
            hidden[path] = "it passes its input through unchanged (an identity, or a dropout at inference)"
        elif kind.shape is None:
            hidden[path] = kind.hidden
        else:
            name = names.get(path, renamed.get(path, path))
            layers.append(LayerInfo(path, name, kind.shape, type(module).__name__, kind.layout))
    _HIDDEN[model] = hidden
    if is_token_model:
        prefixes = max((layer.prefix_tokens for layer in layers), default=0)
        layouts = {layer.path: layer.layout for layer in layers if layer.layout is not None}
        _TOKEN_MODELS[model] = TokenModel(grid, prefix_names(model, prefixes), layouts)
    return layers


def _up_to(executed: list, module: nn.Module) -> set[str]:
    """The paths of the modules that ran up to `module`, itself included."""
    paths = set()
    for path, ran, _shape in executed:
        paths.add(path)
        if ran is module:
            break
    return paths


def transformer_blocks(model: nn.Module, layers: Iterable[LayerInfo]) -> list[LayerInfo]:
    """A transformer's blocks in execution order: the token-map layers that hold one attention module and
    sit in a list of such blocks (timm's `blocks.K`, torchvision's `encoder_layer_K`, Swin's stages' blocks)."""
    if token_model(model) is None:
        return []
    blocks = []
    for layer in layers:
        if layer.layout is None or "." not in layer.path:
            continue
        parent = model.get_submodule(layer.path.rsplit(".", 1)[0])
        if isinstance(parent, nn.Sequential | nn.ModuleList) and len(attention_modules(model, layer.path)) == 1:
            blocks.append(layer)
    return blocks


def find_layer(layers: Iterable[LayerInfo], key: str, hidden: Mapping[str, str] | None = None) -> LayerInfo:
    """By module path or friendly name; a wrong key says how to list the right ones, and a module that is
    not shown (`hidden`: path -> what it outputs instead of maps) says why."""
    layers = list(layers)
    for layer in layers:
        if key in (layer.path, layer.name):
            return layer
    if hidden and key in hidden:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        near = next((layer.path for layer in layers if parent and layer.path == parent), None)
        hint = f"; choose {near}" if near else ""
        raise LayerNotFoundError(
            f"layer {key!r} is not shown: {hidden[key]}{hint} (`livevis layers --model M` lists the layers with maps)"
        )
    close = [layer.name for layer in layers if key.lower() in layer.name.lower() or key in layer.path][:8]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise LayerNotFoundError(f"no layer {key!r} in this model{hint}; `livevis layers --model M` lists them")


def module_of(model: nn.Module, path: str) -> nn.Module:
    """The module a layer's path names; a pyramid level's (`PATH:KEY`) is the module that returns it."""
    return model.get_submodule(path.split(LEVEL, 1)[0])


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
        self.prefix_tokens: dict[str, torch.Tensor] = {}
        """A transformer layer's prefix tokens (class, distillation, registers), N x P x D, by path."""
        self._handles = [
            module_of(model, path).register_forward_hook(this_thread_only(self._hook(path, layout_of(model, path))))
            for path in paths
            if path not in (INPUT, PROB, OUTPUT)
        ]

    def _hook(self, path: str, layout: TokenLayout | None):
        key = path.split(LEVEL, 1)[1] if LEVEL in path else None

        def hook(_module, _inputs, output):
            output = (output if key is None else output[key]).detach()
            self.activations[path] = as_maps(output, layout).clone(memory_format=torch.contiguous_format)
            prefix = layout.prefix_tokens(output) if layout is not None else None
            if prefix is not None:
                self.prefix_tokens[path] = prefix.clone()

        return hook

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> ActivationCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
