"""Unit analysis: what in the input drives one unit, where a class is seen, which units fire at a spot.

A unit's gradient with respect to the network input is shown under one of the ReLU backward rules of
relu_rules.py (`MODES`), swapped in for one pass by `relu_backward_rule`; Grad-CAM explains a class at a
layer; `forward_backward` does either in the live pipeline's one forward pass. The pictures of a gradient
(`gradient_view`, `render_gradient`) are in gradient_views.py.

Everything stays on the model's device.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ChannelOutOfRangeError, InputError, LayerNotFoundError, ModelError, OptionError
from ..layers import CLIPPING, INPUT, OUTPUT, PROB, ActivationCapture, as_maps, layout_of, this_thread_only
from ..render.base import crop_box
from ..transformers.tokens import TokenLayout
from .relu_rules import MODES, check_mode, relu_backward_rule

# ---------------------------------------------------------------------------------------------------------------------
# Gradients of a unit, Grad-CAM


@dataclass(frozen=True)
class BackpropResult:
    gradient: torch.Tensor
    """d(seed) / d(input): N x C x S x S, the shape of the network input, detached."""
    activation: torch.Tensor
    """The layer's output (N x C x H x W or N x F), detached."""
    logits: torch.Tensor
    """The model's output for the same pass, detached."""
    layer_path: str
    channel: int
    mode: str
    at: tuple[int, int] | None
    rule_count: int
    """ReLU applications the rule was applied to in the forward pass."""


@dataclass(frozen=True)
class GradCamResult:
    cam: torch.Tensor
    """N x h x w at the layer's resolution, >= 0, not upsampled and not normalised."""
    class_index: torch.Tensor
    """N, long: the class each map explains."""
    weights: torch.Tensor
    """N x C: each channel's weight, the mean over space of d(class score) / d(channel)."""
    logits: torch.Tensor


def _module_at(model: nn.Module, layer_path: str) -> nn.Module:
    if layer_path in (INPUT, PROB):
        raise LayerNotFoundError(
            f"{layer_path!r} is a pseudo-layer with no units to backpropagate from; choose a module's layer "
            "(`livevis layers --model M` lists them)"
        )
    try:
        return model.get_submodule(layer_path)
    except AttributeError:
        raise LayerNotFoundError(
            f"no layer {layer_path!r} in this model; give a module path, `livevis layers --model M` lists them"
        ) from None


def _network_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A fresh leaf copy of x on the model's device: the caller's x is never touched, and an inference
    tensor (from `Engine.run`) becomes one autograd can use."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"the network input must be a float N x C x S x S tensor, got {shape}")
    device = next(iter(model.parameters()), x).device
    return x.detach().to(device).clone()


class _LayerTap:
    """A forward hook on the layer a gradient starts from: it keeps what the backward pass needs.

    It keeps the layer's output and passes a copy on, so that a later in-place op (AlexNet's
    ReLU(inplace=True) after a conv, ResNet's `out += identity`) cannot overwrite the kept one or graft
    its own history onto it; values downstream are unchanged. With `channel`, a plain Conv2d or Linear
    layer also gets that channel computed apart (`unit`, see `_channel_alone`), so that the backward
    crosses the layer through one filter instead of all of them. With `infer_after`, the rest of the
    forward runs as inference: nothing after the layer can change its output, so no graph is recorded
    past it. A module called twice keeps its last call, as `ActivationCapture` does; under
    `infer_after` that call would have no graph, so `repeated` says to run the pass again without it.
    """

    def __init__(
        self,
        module: nn.Module,
        layer_path: str,
        *,
        channel: int | None = None,
        infer_after: bool = False,
        layout: TokenLayout | None = None,
    ):
        self.layer_path = layer_path
        self._layout = layout
        self.raw: torch.Tensor | None = None
        """The layer's output as the model made it (a transformer's N x T x D tokens)."""
        self.output: torch.Tensor | None = None
        """The same as maps (N x C x H x W) or vectors (N x F)."""
        self.unit: torch.Tensor | None = None
        """N x 1 (x H x W): the channel alone, with its own graph, where it could be computed apart."""
        self.before_clip: torch.Tensor | None = None
        """N x 1 (x H x W): the channel's input, for a clipping activation (`layers.CLIPPING`)."""
        self.repeated = False
        self._channel = channel
        self._infer_after = infer_after
        self._handles = [module.register_forward_hook(this_thread_only(self._hook))]
        if channel is not None and isinstance(module, CLIPPING):
            self._handles.append(module.register_forward_pre_hook(this_thread_only(self._keep_input)))

    def _keep_input(self, module, inputs):
        if isinstance(inputs[0], torch.Tensor) and 0 <= self._channel < inputs[0].shape[1]:
            self.before_clip = inputs[0][:, self._channel : self._channel + 1].clone()  # an in-place op follows

    def _hook(self, module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ModelError(f"layer {self.layer_path!r} does not output one tensor; choose another layer")
        if self._infer_after and self.output is not None:
            self.repeated = True
            return None
        self.raw = output
        self.output = as_maps(output, self._layout)
        self.unit = (
            None if self._channel is None else _channel_alone(module, inputs, output, self._channel, self._layout)
        )
        if not self._infer_after:
            return output.clone()
        torch.set_grad_enabled(False)  # the caller's `torch.enable_grad()` block restores it
        return output.detach().clone()

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()

    def captured(self) -> torch.Tensor:
        if self.output is None:
            raise LayerNotFoundError(f"layer {self.layer_path!r} is not run by the model's forward; choose another")
        return self.output


def _channel_alone(
    module: nn.Module, inputs: tuple, output: torch.Tensor, channel: int, layout: TokenLayout | None = None
) -> torch.Tensor | None:
    """One output channel of a plain Conv2d or Linear layer, computed again from the layer's input with
    that channel's filter alone (1/C of the layer's work, forward and backward), N x 1 (x H x W). A Linear
    layer of a transformer (its tokens read as maps through `layout`) gives the channel's map.

    Weights are detached: only the input's gradient is wanted. None for any other layer (subclasses
    included: they may compute otherwise), or where the result does not match the layer's own output
    (a hook of the user's that edits it): the caller then backpropagates through the whole layer.
    """
    maps = as_maps(output, layout)
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or not 0 <= channel < maps.shape[1]:
        return None
    x, kind = inputs[0], type(module)
    if kind is nn.Conv2d and module.padding_mode == "zeros" and x.dim() == 4 and output.dim() == 4:
        width = module.in_channels // module.groups
        first = channel // (module.out_channels // module.groups) * width
        x = x[:, first : first + width]
        one_filter = partial(F.conv2d, stride=module.stride, padding=module.padding, dilation=module.dilation)
    elif kind is nn.Linear and x.dim() == output.dim() and (layout is not None or x.dim() == 2):
        one_filter = F.linear
    else:
        return None
    bias = None if module.bias is None else module.bias[channel : channel + 1].detach()
    unit = as_maps(one_filter(x, module.weight[channel : channel + 1].detach(), bias), layout)
    expected = maps[:, channel : channel + 1].detach()
    if unit.shape != expected.shape:
        return None
    tolerance = max(1e-4, 8 * _arithmetic_eps(expected))
    agrees = (unit.detach() - expected).abs().amax() <= tolerance * expected.abs().amax() + 1e-6
    return unit if bool(agrees) else None


def _arithmetic_eps(tensor: torch.Tensor) -> float:
    """The precision a convolution or product of `tensor`'s dtype is computed at: on CUDA, float32 may run
    as TF32 (10 mantissa bits), and one filter alone need not take the whole layer's algorithm."""
    tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
    if tensor.is_cuda and tensor.dtype == torch.float32 and tf32:
        return 2.0**-10
    return torch.finfo(tensor.dtype).eps


def _tapped_forward(model: nn.Module, x: torch.Tensor, layer_path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer output, logits) of one forward pass with autograd on; the `output` pseudo-layer of a model
    that is not a classifier is its output itself. The output is as the model made it: a transformer's
    tokens are read as maps by the caller (`layout_of`), so that gradients can be taken with respect to it."""
    if layer_path == OUTPUT:
        output = model(x)
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise LayerNotFoundError("'output' is the output layer of a network that is not a classifier")
        return output, output
    tap = _LayerTap(_module_at(model, layer_path), layer_path, layout=layout_of(model, layer_path))
    try:
        logits = model(x)
    finally:
        tap.release()
    tap.captured()
    activation = tap.raw
    if not isinstance(logits, torch.Tensor):
        raise ModelError("the model does not output one tensor of class scores")
    return activation, logits


def _check_channel(activation: torch.Tensor, layer_path: str, channel: int) -> None:
    channels = activation.shape[1]
    if not 0 <= channel < channels:
        raise ChannelOutOfRangeError(f"channel {channel} is out of range: {layer_path} has channels 0..{channels - 1}")


def _check_position(activation: torch.Tensor, layer_path: str, at: tuple[int, int] | None) -> None:
    if at is None:
        return
    if activation.dim() != 4:
        raise OptionError(f"{layer_path} has no spatial map (its output is N x F); leave out the position")
    row, col = at
    height, width = activation.shape[2:]
    if not (0 <= row < height and 0 <= col < width):
        raise OptionError(f"position ({row}, {col}) is outside {layer_path}'s {height} x {width} map")


def _unit_seed(channel_output: torch.Tensor, at: tuple[int, int] | None) -> torch.Tensor:
    """What the backward pass starts from, given the channel's output (N x 1 (x H x W)): the channel's own
    activation (the gradient of half the sum of its squares, as the Toolbox seeds it), or 1 at one
    spatial unit alone."""
    if at is None:
        return channel_output
    seed = torch.zeros_like(channel_output)
    seed[:, :, at[0], at[1]] = 1.0
    return seed


def unit_gradient(
    model: nn.Module,
    x: torch.Tensor,
    layer_path: str,
    channel: int,
    mode: str = "guided",
    *,
    at: tuple[int, int] | None = None,
) -> BackpropResult:
    """What in the input drives one channel (or one unit, `at=(row, col)`) of a layer, under `mode`'s rule.

    Each sample of a batch is seeded with its own activation, so the samples stay independent
    (a model in eval mode mixes nothing across the batch).
    """
    check_mode(mode)
    unit_pass = _unit_pass(model, _network_input(model, x), layer_path, channel, mode, at)
    return BackpropResult(
        gradient=unit_pass.gradient,
        activation=unit_pass.activation,
        logits=unit_pass.logits,
        layer_path=layer_path,
        channel=channel,
        mode=mode,
        at=at,
        rule_count=unit_pass.rule_count,
    )


@dataclass(frozen=True)
class _UnitPass:
    gradient: torch.Tensor
    activation: torch.Tensor
    logits: torch.Tensor
    activations: dict[str, torch.Tensor]
    prefix_tokens: dict[str, torch.Tensor]
    rule_count: int


_REPEATING_LAYERS: weakref.WeakSet[nn.Module] = weakref.WeakSet()
"""Layers seen called more than once in one forward pass: their passes record the whole graph."""


_SEES_THE_INPUT: weakref.WeakKeyDictionary[nn.Module, dict[str, bool]] = weakref.WeakKeyDictionary()


def deconvolution_sees_the_input(
    model: nn.Module, layer_path: str, input_shape: Sequence[int], layer_shape: Sequence[int]
) -> bool:
    """Whether a unit's deconvolution at `layer_path` depends on the input at all.

    The deconvolution passes max(g, 0) back through every ReLU whatever the forward did, so only max-pooling
    switches and nonlinearities whose backward depends on their input (SiLU, GELU, a gate) bring the input
    into it. A network without them (EfficientNet-Lite: strided convolutions and ReLU6) gives every image the
    same picture: a faint blob where the unit sits. Springenberg et al. (2015) brought in guided
    backpropagation for such networks. Found once per model and layer, from two random inputs."""
    known = _SEES_THE_INPUT.setdefault(model, {})
    if layer_path not in known:
        at = (layer_shape[1] // 2, layer_shape[2] // 2) if len(layer_shape) == 3 else None
        device = next(iter(model.parameters()), torch.zeros(0)).device
        x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
        known[layer_path] = True  # where every probed channel is silent: keep the deconvolution
        for channel in range(min(4, layer_shape[0])):
            first, second = unit_gradient(model, x, layer_path, channel, "deconv", at=at).gradient.float()
            first_peak, second_peak = first.abs().max(), second.abs().max()
            if first_peak > 0 and second_peak > 0:
                known[layer_path] = not torch.allclose(first / first_peak, second / second_peak, atol=1e-4)
                break
    return known[layer_path]


def _unit_pass(
    model: nn.Module,
    network_input: torch.Tensor,
    layer_path: str,
    channel: int,
    mode: str,
    at: tuple[int, int] | None,
    capture_paths: Sequence[str] = (),
) -> _UnitPass:
    """One forward pass under `mode`'s ReLU rule that captures `capture_paths`, then the backward from
    the layer's channel (or its unit `at`) to `network_input`, a leaf of the caller's; all detached.

    The forward records no graph past the layer, and a plain Conv2d or Linear layer is crossed through
    the channel's own filter alone (`_LayerTap`): the same gradient for less than autograd's plain
    forward and backward cost. At a clipping activation (`layers.CLIPPING`) the backward starts from its
    input, seeded by its output: a unit saturated at ReLU6's 6 still shows what drives it.
    """
    module = None if layer_path == OUTPUT else _module_at(model, layer_path)
    infer_after = module is not None and module not in _REPEATING_LAYERS
    with torch.inference_mode(False), torch.enable_grad():
        network_input.requires_grad_(True)
        with ActivationCapture(model, capture_paths) as capture, relu_backward_rule(model, mode) as rule:
            if module is None:
                activation, logits = _tapped_forward(model, network_input, OUTPUT)  # an N x C x H x W output
                unit = None
            else:
                tap = _LayerTap(
                    module, layer_path, channel=channel, infer_after=infer_after, layout=layout_of(model, layer_path)
                )
                try:
                    with torch.enable_grad():  # the tap turns autograd off past the layer; this turns it on again
                        logits = model(network_input)
                finally:
                    tap.release()
                activation, unit = tap.captured(), tap.before_clip if tap.before_clip is not None else tap.unit
        if infer_after and tap.repeated:
            _REPEATING_LAYERS.add(module)
            return _unit_pass(model, network_input, layer_path, channel, mode, at, capture_paths)
        if not isinstance(logits, torch.Tensor):
            raise ModelError("the model does not output one tensor of class scores")
        _check_channel(activation, layer_path, channel)
        _check_position(activation, layer_path, at)
        root = activation[:, channel : channel + 1] if unit is None else unit
        # seeded by the channel's output; at a clipping activation the gradient starts from its input
        seed = _unit_seed(activation[:, channel : channel + 1].detach(), at)
        (gradient,) = torch.autograd.grad(root, network_input, grad_outputs=seed)
    return _UnitPass(
        gradient.detach(), activation.detach(), logits.detach(), capture.activations, capture.prefix_tokens, rule.count
    )


def grad_cam(
    model: nn.Module, x: torch.Tensor, layer_path: str, class_index: int | Sequence[int] | None = None
) -> GradCamResult:
    """Selvaraju et al. (2017): ReLU(sum_c mean_hw(dy_k / dA_c) * A_c) at the layer's resolution.

    `class_index`: one class for every sample, one per sample, or None for each sample's top-1 class.
    Upsampling to the frame is the renderer's business.
    """
    network_input = _network_input(model, x)
    with torch.inference_mode(False), torch.enable_grad():
        raw, logits = _tapped_forward(model, network_input, layer_path)
        return _grad_cam_of(raw, logits, layer_path, class_index, layout_of(model, layer_path))


def _grad_cam_of(
    raw: torch.Tensor,
    logits: torch.Tensor,
    layer_path: str,
    class_index: int | Sequence[int] | None,
    layout: TokenLayout | None = None,
) -> GradCamResult:
    """The Grad-CAM formula on a layer output and logits that still carry their graph; a transformer's
    tokens are read as maps over the patch grid (`layout`), as for any layer with maps."""
    activation = as_maps(raw, layout)
    if logits.dim() != 2:
        raise OptionError("Grad-CAM explains a class; this model does not output class scores (N x K)")
    if activation.dim() != 4:
        shape = " x ".join(map(str, activation.shape[1:]))
        raise OptionError(f"Grad-CAM needs a layer with spatial maps (C x H x W); {layer_path} outputs {shape}")
    classes = _class_indices(logits, class_index)
    score = logits.gather(1, classes[:, None]).sum()
    (grad,) = torch.autograd.grad(score, raw)
    cam, weights = grad_cam_maps(activation.detach(), as_maps(grad, layout))
    return GradCamResult(cam=cam, class_index=classes, weights=weights, logits=logits.detach())


def grad_cam_maps(activation: torch.Tensor, gradient: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Grad-CAM formula on N x C x H x W maps and their gradients: (ReLU(sum_c w_c A_c), N x H x W, and
    the weights w = the gradient's mean over space, N x C). Not normalised: the renderer takes 0 to the
    map's largest value (view.py)."""
    weights = gradient.mean(dim=(2, 3))
    return torch.einsum("nc,nchw->nhw", weights, activation).clamp(min=0), weights


PASS_MODES = (*MODES, "gradcam")
"""What the live pipeline can backpropagate in the same pass as its forward."""


@dataclass(frozen=True)
class BackwardRequest:
    """The backward half of a live pass: a unit's input gradient under a ReLU rule, or Grad-CAM of a
    class (None: the top-1) at the layer."""

    mode: str
    layer_path: str
    channel: int = 0
    class_index: int | None = None

    def __post_init__(self):
        if self.mode not in PASS_MODES:
            raise OptionError(f"unknown backprop mode {self.mode!r}; choose one of {', '.join(PASS_MODES)}")


@dataclass(frozen=True)
class PassResult:
    """One forward pass with its backward half: the forward's values exactly as an ordinary forward
    gives them, and the gradient (or Grad-CAM) asked for."""

    logits: torch.Tensor
    activations: dict[str, torch.Tensor]
    """Captured as `ActivationCapture` captures them: cloned, detached, batch dimension kept."""
    gradient: torch.Tensor | None
    """d(seed) / d(network input), N x C x S x S, for grad, deconv and guided."""
    cam: GradCamResult | None
    rule_count: int
    prefix_tokens: dict[str, torch.Tensor]
    """A transformer layer's prefix tokens, as `ActivationCapture` keeps them."""


def forward_backward(
    model: nn.Module, x: torch.Tensor, capture_paths: Sequence[str], request: BackwardRequest
) -> PassResult:
    """One forward pass that captures `capture_paths` for the views and backpropagates what `request`
    asks, so that the live view pays for one forward and one backward, not two forwards."""
    network_input = _network_input(model, x)
    if request.mode != "gradcam":
        unit_pass = _unit_pass(
            model, network_input, request.layer_path, request.channel, request.mode, None, capture_paths
        )
        return PassResult(
            unit_pass.logits,
            unit_pass.activations,
            unit_pass.gradient,
            None,
            unit_pass.rule_count,
            unit_pass.prefix_tokens,
        )
    with torch.inference_mode(False), torch.enable_grad():
        with ActivationCapture(model, capture_paths) as capture, relu_backward_rule(model, "grad") as rule:
            raw, logits = _tapped_forward(model, network_input, request.layer_path)
        cam = _grad_cam_of(raw, logits, request.layer_path, request.class_index, layout_of(model, request.layer_path))
    return PassResult(logits.detach(), capture.activations, None, cam, rule.count, capture.prefix_tokens)


def _class_indices(logits: torch.Tensor, class_index: int | Sequence[int] | None) -> torch.Tensor:
    count, classes = logits.shape[0], logits.shape[1]
    if class_index is None:
        return logits.detach().argmax(1)
    if isinstance(class_index, torch.Tensor):
        class_index = class_index.tolist()
    if isinstance(class_index, numbers.Integral):
        class_index = [int(class_index)] * count
    wanted = [int(i) for i in class_index]
    if len(wanted) != count:
        raise OptionError(f"{len(wanted)} class indices given for a batch of {count}; give one, or one per sample")
    for index in wanted:
        if not 0 <= index < classes:
            raise OptionError(f"class {index} is out of range: the model has classes 0..{classes - 1}")
    return torch.tensor(wanted, dtype=torch.long, device=logits.device)


# ---------------------------------------------------------------------------------------------------------------------
# Which units fire at a spot


def rank_units_at(activation: torch.Tensor, row: int, col: int, k: int = 10) -> list[tuple[int, float]]:
    """The k channels most active at one cell of a C x H x W map, highest first (ties: lower channel
    first), as (channel, value) on the host."""
    if activation.dim() != 3:
        raise OptionError(f"ranking units needs a C x H x W map, got {tuple(activation.shape)}")
    height, width = activation.shape[1:]
    if not (0 <= row < height and 0 <= col < width):
        raise OptionError(f"cell ({row}, {col}) is outside the {height} x {width} map")
    values = activation[:, row, col].float()
    ordered, channels = torch.sort(values, descending=True, stable=True)
    k = max(0, min(int(k), values.numel()))
    return [(int(c), float(v)) for c, v in zip(channels[:k].tolist(), ordered[:k].tolist(), strict=True)]


def map_cell(frame_xy: tuple[float, float], crop: Any, map_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The (row, col) of the map cell under a frame pixel, the map spread evenly over the crop
    (x, y, w, h) as `render.cell_centre` places it; None outside the crop."""
    px, py = frame_xy
    x, y, w, h = crop_box(crop)
    rows, cols = map_hw
    if not (x <= px < x + w and y <= py < y + h):
        return None
    row = min(int(math.floor((py - y) * rows / h)), rows - 1)
    col = min(int(math.floor((px - x) * cols / w)), cols - 1)
    return row, col
