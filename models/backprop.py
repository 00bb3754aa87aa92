"""Unit analysis: what in the input drives one unit, where a class is seen, which units fire at a spot.

A unit's gradient with respect to the network input is shown under one of three ReLU backward rules
(`MODES`): the ordinary gradient, deconvolution (Zeiler & Fergus 2014: every ReLU passes the positive
part of the gradient back, whatever its input) and guided backpropagation (Springenberg et al. 2015:
the positive part, only where the ReLU's input was positive). The rule is swapped for one pass by
`relu_backward_rule`, which catches every ReLU the forward pass applies, module or functional, through
a torch function mode, so neither the model nor `torch.nn.functional` is edited.

Everything stays on the model's device; the views (`gradient_view`, `render_gradient`) are torch ops
that end in a uint8 picture, ready for one copy to the host.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import ChannelOutOfRangeError, InputError, LayerNotFoundError, ModelError, OptionError
from .layers import INPUT, OUTPUT, PROB, this_thread_only
from .render import LEVELS, _device_colour_table, is_signed

MODES = ("grad", "deconv", "guided")
VIEWS = ("raw", "gray", "norm", "normblur")

BLUR_SIGMA = 4.0
"""The Toolbox's `caffevis_grad_norm_blur_radius`, in input pixels."""
BLUR_TRUNCATE = 4.0
"""Kernel radius in sigmas, as scipy.ndimage.gaussian_filter and cv2.GaussianBlur (32-bit) cut it."""


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise OptionError(f"unknown backprop mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise OptionError(f"unknown gradient view {view!r}; choose one of {', '.join(VIEWS)}")
    return view


# ---------------------------------------------------------------------------------------------------------------------
# The ReLU backward rule


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
    """A forward hook that keeps the layer's output and passes a copy on.

    The kept tensor is what the gradient starts from; passing a copy on means a later in-place op
    (AlexNet's ReLU(inplace=True) after a conv, ResNet's `out += identity`) cannot overwrite it or
    graft its own history onto it. Values downstream are unchanged. A module called twice keeps its
    last call, as `ActivationCapture` does.
    """

    def __init__(self, module: nn.Module, layer_path: str):
        self.layer_path = layer_path
        self.output: torch.Tensor | None = None
        self._handle = module.register_forward_hook(this_thread_only(self._hook))

    def _hook(self, _module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ModelError(f"layer {self.layer_path!r} does not output one tensor; choose another layer")
        self.output = output
        return output.clone()

    def release(self) -> None:
        self._handle.remove()

    def captured(self) -> torch.Tensor:
        if self.output is None:
            raise LayerNotFoundError(f"layer {self.layer_path!r} is not run by the model's forward; choose another")
        return self.output


def _tapped_forward(model: nn.Module, x: torch.Tensor, layer_path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(layer output, logits) of one forward pass with autograd on; the `output` pseudo-layer of a model
    that is not a classifier is its output itself."""
    if layer_path == OUTPUT:
        output = model(x)
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise LayerNotFoundError("'output' is the output layer of a network that is not a classifier")
        return output, output
    tap = _LayerTap(_module_at(model, layer_path), layer_path)
    try:
        logits = model(x)
    finally:
        tap.release()
    activation = tap.captured()
    if not isinstance(logits, torch.Tensor):
        raise ModelError("the model does not output one tensor of class scores")
    return activation, logits


def _check_channel(activation: torch.Tensor, layer_path: str, channel: int) -> None:
    channels = activation.shape[1]
    if not 0 <= channel < channels:
        raise ChannelOutOfRangeError(f"channel {channel} is out of range: {layer_path} has channels 0..{channels - 1}")


def _unit_seed(activation: torch.Tensor, layer_path: str, channel: int, at: tuple[int, int] | None) -> torch.Tensor:
    """What the backward pass starts from: the channel's own activation (the gradient of half the sum
    of its squares, as the Toolbox seeds it), or 1 at one spatial unit alone."""
    seed = torch.zeros_like(activation)
    if at is None:
        seed[:, channel] = activation[:, channel].detach()
        return seed
    if activation.dim() != 4:
        raise OptionError(f"{layer_path} has no spatial map (its output is N x F); leave out the position")
    row, col = at
    height, width = activation.shape[2:]
    if not (0 <= row < height and 0 <= col < width):
        raise OptionError(f"position ({row}, {col}) is outside {layer_path}'s {height} x {width} map")
    seed[:, channel, row, col] = 1.0
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
    network_input = _network_input(model, x)
    with torch.inference_mode(False), torch.enable_grad():
        network_input.requires_grad_(True)
        with relu_backward_rule(model, mode) as rule:
            activation, logits = _tapped_forward(model, network_input, layer_path)
        _check_channel(activation, layer_path, channel)
        seed = _unit_seed(activation, layer_path, channel, at)
        (gradient,) = torch.autograd.grad(activation, network_input, grad_outputs=seed)
    return BackpropResult(
        gradient=gradient.detach(),
        activation=activation.detach(),
        logits=logits.detach(),
        layer_path=layer_path,
        channel=channel,
        mode=mode,
        at=at,
        rule_count=rule.count,
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
        activation, logits = _tapped_forward(model, network_input, layer_path)
        return _grad_cam_of(activation, logits, layer_path, class_index)


def _grad_cam_of(activation: torch.Tensor, logits: torch.Tensor, layer_path: str,
                 class_index: int | Sequence[int] | None) -> GradCamResult:  # fmt: skip
    """The Grad-CAM formula on a layer output and logits that still carry their graph."""
    if logits.dim() != 2:
        raise OptionError("Grad-CAM explains a class; this model does not output class scores (N x K)")
    if activation.dim() != 4:
        shape = " x ".join(map(str, activation.shape[1:]))
        raise OptionError(f"Grad-CAM needs a layer with spatial maps (C x H x W); {layer_path} outputs {shape}")
    classes = _class_indices(logits, class_index)
    score = logits.gather(1, classes[:, None]).sum()
    (grad,) = torch.autograd.grad(score, activation)
    weights = grad.mean(dim=(2, 3))
    cam = torch.einsum("nc,nchw->nhw", weights, activation.detach()).clamp(min=0)
    return GradCamResult(cam=cam, class_index=classes, weights=weights, logits=logits.detach())


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


def forward_backward(model: nn.Module, x: torch.Tensor, capture_paths: Sequence[str],
                     request: BackwardRequest) -> PassResult:  # fmt: skip
    """One forward pass that captures `capture_paths` for the views and backpropagates what `request`
    asks, so that the live view pays for one forward and one backward, not two forwards."""
    from .layers import ActivationCapture

    network_input = _network_input(model, x)
    rule_mode = request.mode if request.mode in MODES else "grad"
    with torch.inference_mode(False), torch.enable_grad():
        network_input.requires_grad_(request.mode != "gradcam")
        with ActivationCapture(model, capture_paths) as capture, relu_backward_rule(model, rule_mode) as rule:
            activation, logits = _tapped_forward(model, network_input, request.layer_path)
        gradient = cam = None
        if request.mode == "gradcam":
            cam = _grad_cam_of(activation, logits, request.layer_path, request.class_index)
        else:
            _check_channel(activation, request.layer_path, request.channel)
            seed = _unit_seed(activation, request.layer_path, request.channel, None)
            (gradient,) = torch.autograd.grad(activation, network_input, grad_outputs=seed)
            gradient = gradient.detach()
    return PassResult(logits.detach(), capture.activations, gradient, cam, rule.count)


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
# Views of a gradient


@lru_cache(maxsize=16)
def _blur_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """(size, size): a 1-D Gaussian blur with reflect padding as one matrix, so that blurring an image
    is two matrix products (fast on every device; a 33-tap one-channel convolution is not on the CPU)."""
    radius = min(int(BLUR_TRUNCATE * sigma + 0.5), size - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    impulses = torch.eye(size, dtype=torch.float64)[:, None]
    responses = F.conv1d(F.pad(impulses, (radius, radius), mode="reflect"), kernel.view(1, 1, -1))
    return responses[:, 0].T.contiguous().to(torch.float32).to(device)


def gaussian_blur(image: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """(..., H, W) float, blurred by a separable Gaussian with reflect padding (d c b | a b c d, OpenCV's
    default BORDER_REFLECT_101, scipy's mode="mirror"), truncated at 4 sigma like both.

    Reflect padding needs the radius below the side, so on an image smaller than 17 px a side the
    kernel is cut shorter.
    """
    height, width = image.shape[-2:]
    if min(height, width) < 2 or sigma <= 0:
        return image.clone()
    rows = _blur_matrix(height, float(sigma), image.device)
    cols = _blur_matrix(width, float(sigma), image.device)
    return rows @ image.float() @ cols.T


def gradient_view(gradient: torch.Tensor, view: str) -> torch.Tensor:
    """A gradient (C x S x S, or a batch N x C x S x S) as the Toolbox shows it.

    raw: as is, signed. gray: the mean over input channels, signed. norm: the L2 norm over input
    channels, >= 0. normblur: that norm blurred (sigma 4 input pixels, `gaussian_blur`).
    """
    check_view(view)
    if gradient.dim() not in (3, 4):
        raise OptionError(f"a gradient is C x S x S (or N x C x S x S), got {tuple(gradient.shape)}")
    gradient = gradient.float()
    if view == "raw":
        return gradient
    if view == "gray":
        return gradient.mean(dim=-3)
    norm = gradient.square().sum(dim=-3).sqrt()  # linalg.vector_norm over dim -3 is ~100x slower on the CPU
    return gaussian_blur(norm) if view == "normblur" else norm


def _levels(values: torch.Tensor, signed: bool) -> torch.Tensor:
    """Values to colour-table rows: signed ones by max |v| (0 on the middle level), others by their max.
    An all-zero image lands on the zero level instead of dividing by zero."""
    top = LEVELS - 1
    if signed:
        span = values.abs().amax()
        scaled = values * torch.where(span > 0, (top / 2) / span, 0.0) + top / 2
    else:
        values = values.clamp(min=0)
        span = values.amax()
        scaled = values * torch.where(span > 0, top / span, 0.0)
    return scaled.round_().clamp_(0, top).long()


def render_gradient(view_tensor: torch.Tensor, view: str, *, colormap: str = "gray") -> torch.Tensor:
    """A view from `gradient_view` as an H x W x 3 uint8 picture on its device.

    raw, 3 channels: RGB, all channels scaled by one max |g| so that 0 is mid-grey (the Toolbox's
    norm01c). raw, 1 channel, and gray: the signed colormap (0 white). norm and normblur: `colormap`,
    a sequential one from models/render.py, scaled by the image's max.
    """
    check_view(view)
    device = view_tensor.device
    values = view_tensor.float()
    if view == "raw":
        if values.dim() != 3 or values.shape[0] not in (1, 3):
            raise OptionError(
                f"the raw view shows 1 or 3 input channels, got {tuple(values.shape)}; use gray, norm or normblur"
            )
        if values.shape[0] == 3:
            span = values.abs().amax()
            scale = torch.where(span > 0, 127.5 / span, 0.0)
            return (values * scale + 127.5).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
        values = values[0]
    if values.dim() != 2:
        raise OptionError(f"the {view} view is one S x S image, got {tuple(values.shape)}")
    if view in ("raw", "gray"):
        return _device_colour_table("signed", 1.0, device)[_levels(values, signed=True)]
    if is_signed(colormap):
        raise OptionError(f"the {view} view is >= 0; choose a sequential colormap, not {colormap!r}")
    return _device_colour_table(colormap, 1.0, device)[_levels(values, signed=False)]


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


def _crop_tuple(crop: Any) -> tuple[int, int, int, int]:
    if hasattr(crop, "w") and hasattr(crop, "h"):  # a CropRect
        return int(crop.x), int(crop.y), int(crop.w), int(crop.h)
    x, y, w, h = crop
    return int(x), int(y), int(w), int(h)


def map_cell(frame_xy: tuple[float, float], crop: Any, map_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The (row, col) of the map cell under a frame pixel, the map spread evenly over the crop
    (x, y, w, h) as `render.cell_centre` places it; None outside the crop."""
    px, py = frame_xy
    x, y, w, h = _crop_tuple(crop)
    rows, cols = map_hw
    if not (x <= px < x + w and y <= py < y + h):
        return None
    row = min(int(math.floor((py - y) * rows / h)), rows - 1)
    col = min(int(math.floor((px - x) * cols / w)), cols - 1)
    return row, col
