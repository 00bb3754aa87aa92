"""A model resident on a device: frame in, network input and captured activations out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .attribution.backprop import BackwardRequest, PassResult, forward_backward
from .data.tensors import is_tensor_frame, tensor_display
from .detection.explain import TargetRequest, covered_share, target_pass, watch_padding
from .detection.outputs import DETECT, SEGMENT, adapt_model, last_detections
from .errors import InputError, OptionError, WeightsError
from .interventions import Edit, EditHooks, SeenMeans
from .layers import (
    ACTIVATIONS,
    INPUT,
    LEVEL,
    OUTPUT,
    PROB,
    ActivationCapture,
    LayerInfo,
    TokenModel,
    discover_layers,
    feature_layer,
    find_layer,
    hidden_layers,
    model_task,
    module_of,
    token_model,
    transformer_blocks,
)
from .progress import Progress, report
from .transformers.attention import AttentionInputs
from .zoo.custom import CUSTOM_FAMILIES
from .zoo.registry import DEFAULT_MODEL, OFFLINE_DEFAULT, ModelSpec, get_spec
from .zoo.spec import imagenet_categories
from .zoo.weights import DEFAULT, WeightsInfo, load_weights


def available_devices() -> list[str]:
    """The devices a model can run on here, the CPU first."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" if torch.cuda.device_count() > 1 else "cuda" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """`auto` is cuda, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available; use --device auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None


def _with_input_channels(spec: ModelSpec, model: torch.nn.Module, custom: dict) -> ModelSpec:
    """A user's own model takes as many input channels as its first convolution has, unless they said
    (`--in-channels`, or one `--mean` and `--std` per channel); ImageNet's mean and std only fit three."""
    if spec.family not in CUSTOM_FAMILIES or custom.get("mean") or custom.get("in_channels"):
        return spec
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    channels = first.in_channels if first is not None else spec.in_channels
    if channels == spec.in_channels:
        return spec
    return replace(spec, in_channels=channels, mean=(0.5,) * channels, std=(0.5,) * channels)


@dataclass(frozen=True)
class CropRect:
    """The square of the frame the network sees, in frame pixels."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def centre_square(cls, height: int, width: int) -> CropRect:
        side = min(height, width)
        return cls((width - side) // 2, (height - side) // 2, side, side)

    def as_array(self) -> np.ndarray:
        return np.array([self.x, self.y, self.w, self.h], dtype=np.int64)


def centre_square_resized(frames: torch.Tensor, size: int) -> tuple[torch.Tensor, CropRect]:
    """Frames (N x H x W x 3 uint8) as N x 3 x size x size: the centre square, antialiased bilinear resize.

    The one crop and resize of livevis (the live view, the benchmark, mining's decoding workers): on the
    CPU it stays uint8 channels-last, which has a fast vectorised antialias kernel; elsewhere it is float.
    """
    crop = CropRect.centre_square(frames.shape[-3], frames.shape[-2])
    nchw = frames[:, crop.y : crop.y + crop.h, crop.x : crop.x + crop.w].permute(0, 3, 1, 2)
    if nchw.device.type == "cpu":
        nchw = nchw.contiguous(memory_format=torch.channels_last)
    else:
        nchw = nchw.float()
    resized = F.interpolate(nchw, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized, crop


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass(frozen=True, eq=False)
class PreparedFrame:
    """A frame uploaded and preprocessed ahead of its forward (`Engine.prepare`), so that a caller can do
    that part while it waits anyway; `Engine.run` takes it in place of the frame."""

    image: np.ndarray | torch.Tensor
    """The frame as it was given."""
    frame: torch.Tensor
    """On the device, HxWx3 uint8 (a tensor input: its picture)."""
    input: torch.Tensor
    crop: CropRect
    prepared_by: Engine
    milliseconds: float
    """How long the preparation took (the pipeline's preprocess stage)."""


@dataclass
class ForwardResult:
    frame: torch.Tensor
    """The frame on the device, HxWx3 uint8 (uploaded once, reused by the overlay)."""
    input: torch.Tensor
    """The exact normalised network input, 1xCxSxS float32."""
    crop: CropRect
    logits: torch.Tensor
    activations: dict[str, torch.Tensor]
    """Captured outputs by layer path, batch dimension removed."""
    backward: PassResult | None = None
    """The backward half, when the pass was asked for one (`run(..., backward=...)`)."""
    prefix_tokens: dict[str, torch.Tensor] = field(default_factory=dict)
    """A transformer layer's prefix tokens (class, distillation, registers), P x D (N x P x D for a batch)."""
    module_inputs: dict[str, tuple[tuple, dict]] = field(default_factory=dict)
    """What the modules asked for (`run(..., keep_inputs=...)`: attention modules) were called with, detached."""
    detections: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]] | None = None
    """A detector's output for the frame (`boxes` N x 4 in frame pixels, `scores`, `labels`, and `masks`,
    `keypoints` where it gives them), one per frame for a batch; None for any other model."""
    covered: tuple[float, float] = (1.0, 1.0)
    """The share of the layers' maps (height, width) the frame covers from their top left: a detector pads the
    image it resized to a multiple of its stride."""


class Engine:
    """A model on a device, its spec, its layers; runs frames and captures the layers asked for."""

    def __init__(self, spec: ModelSpec, model: torch.nn.Module, weights: WeightsInfo, device: torch.device):
        self.spec = spec
        self.weights = weights
        self.device = device
        self.model = model.eval().to(device)
        self.layers: list[LayerInfo] = discover_layers(
            self.model, (spec.in_channels, spec.input_size, spec.input_size), spec.layer_names(self.model)
        )
        self.task = model_task(self.model)
        """What the model outputs: `classify`, `maps`, `segment` or `detect` (see `detection.outputs`)."""
        adapt_model(self.model, self.task)
        if self.task == DETECT:
            watch_padding(self.model)
        self.whole_frame = self.task in (DETECT, SEGMENT)
        """The model sees the whole frame (a detector, a segmenter), not a centre square."""
        self.class_names = self._class_names() if self.whole_frame else []
        """A detector's labels or a segmenter's classes by index (0 is the background)."""
        self.is_classifier = self.layers[-1].path == PROB
        """Outputs class scores (N x K). Other networks (image to image, segmenters, regressors) run all
        the same: their output is the `output` layer, and they have no top-5."""
        self.categories = spec.categories() if self.is_classifier else []
        if self.is_classifier and len(self.categories) != self.layers[-1].channels:
            self.categories = [f"class {i}" for i in range(self.layers[-1].channels)]
        self.blocks: list[LayerInfo] = transformer_blocks(self.model, self.layers)
        """A transformer's blocks in execution order (none for a convolutional network)."""
        self._order = {info.path: i for i, info in enumerate(self.layers)}
        self.default_layer = self._default_layer()
        # (x / 255 - mean) / std as x * scale + shift.
        std = torch.tensor(spec.std, dtype=torch.float32)
        shape = (1, len(spec.std), 1, 1)
        self._scale = (1.0 / (255.0 * std)).view(shape).to(device)
        self._shift = (-torch.tensor(spec.mean, dtype=torch.float32) / std).view(shape).to(device)
        self._pinned: torch.Tensor | None = None

    @classmethod
    def load(
        cls,
        name: str,
        weights: str | Path = DEFAULT,
        device: str = "auto",
        *,
        progress: bool | Progress = True,
        **custom,
    ) -> Engine:
        """`custom`: input_size, mean, std, labels for a user's own model (see `models.zoo.custom`).

        `progress`: True draws a bar for a download in the terminal; a callable (`models.progress`) hears of
        each stage and of a download, and cancels the load by answering False."""
        stages = progress if callable(progress) else None
        report(stages, f"building {name}", 0, 3)
        spec = get_spec(name, **custom)
        target = pick_device(device)
        model = spec.build()
        spec = _with_input_channels(spec, model, custom)
        report(stages, f"weights of {name}", 1, 3)
        info = load_weights(model, spec, weights, progress=progress)
        report(stages, f"layers of {name}", 2, 3)
        engine = cls(spec, model, info, target)
        report(stages, f"{name} ready", 3, 3)
        return engine

    @classmethod
    def load_default(
        cls, weights: str | Path = DEFAULT, device: str = "auto", *, progress: bool | Progress = True
    ) -> tuple[Engine, str | None]:
        """The default model; where its trained weights cannot be had, the offline trained model.

        Returns the engine and, when it fell back, a notice saying why and how to get the default.
        Never falls back to random weights silently.
        """
        try:
            return cls.load(DEFAULT_MODEL, weights, device, progress=progress), None
        except WeightsError as exc:
            if str(weights) != DEFAULT:
                raise
            notice = f"{exc}. Using the offline trained model {OFFLINE_DEFAULT} instead."
            return cls.load(OFFLINE_DEFAULT, DEFAULT, device, progress=progress), notice

    @property
    def name(self) -> str:
        return self.spec.name

    def _class_names(self) -> list[str]:
        """The spec's names (a user's `--labels`), else `class K`; for a segmenter as many as its classes."""
        names = [] if self.spec.categories is imagenet_categories else list(self.spec.categories())
        if self.task == SEGMENT:
            count = self.layers[-1].channels
            return names if len(names) == count else [f"class {i}" for i in range(count)]
        return names

    def class_name(self, index: int) -> str:
        """A detector's label or a segmenter's class by its index."""
        names = self.class_names
        name = names[index] if 0 <= index < len(names) and names[index] else f"class {index}"
        return name.strip("_") if name == "__background__" else name

    def _default_layer(self) -> LayerInfo:
        """The spec's choice; for a transformer, a block two thirds of the way down (its tokens as maps); for
        another model of a user's, its deepest activation with maps of 7 to 28 cells a side (`feature_layer`),
        else the last layer whose maps are still 7x7 or larger."""
        if self.spec.default_layer:
            return self.layer(self.spec.default_layer)
        if self.whole_frame:
            return self.explain_layer()
        if self.blocks:
            return self.blocks[round(2 * (len(self.blocks) - 1) / 3)]
        features = feature_layer(self.layers, self.model)
        if features is not None:
            return features
        spatial = [layer for layer in self.layers[1:] if layer.is_spatial and layer.shape[1] >= 7]
        return spatial[-1] if spatial else self.layers[0]

    def gradcam_layer(self) -> LayerInfo | None:
        """Where Grad-CAM explains a class unless told otherwise: the deepest layer with maps of 2 x 2 cells or
        more, as Selvaraju et al. take the last convolutional layer (at earlier layers the channels' averaged
        gradients mostly cancel, and the map, clipped at zero, comes out nearly empty)."""
        spatial = [
            layer
            for layer in self.layers[1:]
            if layer.is_spatial and layer.path != OUTPUT and min(layer.shape[1:]) >= 2
        ]
        if self.blocks and self.blocks[-1].prefix_tokens:
            # a ViT's class reads the class token alone: past the last attention its patch tokens get no
            # gradient, so Grad-CAM looks where that attention does, at the last block's first layer (its norm)
            last = self.blocks[-1].path + "."
            inside = [layer for layer in spatial if layer.path.startswith(last)]
            return inside[0] if inside else self.blocks[-1]
        return spatial[-1] if spatial else None

    def explain_layer(self) -> LayerInfo:
        """Where a detection or a segmentation class is explained unless told otherwise, and what a detector or a
        segmenter opens on: a pyramid's finest level (`fpn:0`); for a segmenter its head's last activation (the
        features its classes are read from: LRASPP's 128 channels rather than its backbone's 960, whose EigenCAM
        would cost more than the forward), else the deepest backbone layer with maps."""
        spatial = [layer for layer in self.layers[1:] if layer.is_spatial and layer.path != OUTPUT]
        finest = [layer for layer in spatial if layer.name.endswith(f"{LEVEL}0")]
        head = [
            layer
            for layer in spatial
            if self.task == SEGMENT
            and layer.path.startswith("classifier.")
            and min(layer.shape[1:]) >= 2
            and isinstance(module_of(self.model, layer.path), ACTIVATIONS)
        ]
        inside = [layer for layer in spatial if layer.path.startswith("backbone.")]
        return (finest or head or inside or spatial or self.layers)[-1]

    def block_of(self, layer: LayerInfo) -> LayerInfo | None:
        """The transformer block a layer lies in, or the last one before it in execution order; None before
        the first block (the patch embedding) and for a convolutional network."""
        inside = [b for b in self.blocks if layer.path == b.path or layer.path.startswith(b.path + ".")]
        if inside:
            return inside[-1]
        before = [b for b in self.blocks if self._order[b.path] <= self._order.get(layer.path, -1)]
        return before[-1] if before else None

    @property
    def tokens(self) -> TokenModel | None:
        """What the model's layers are as token maps, for a transformer; None for a convolutional network."""
        return token_model(self.model)

    def layer(self, key: str | None = None) -> LayerInfo:
        """A layer by path or friendly name; None gives the model's default layer."""
        if not key:
            return self.default_layer
        return find_layer(self.layers, key, hidden_layers(self.model))

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """A frame (HxWx3) or a batch of frames (NxHxWx3) onto the device once, pinned on CUDA."""
        if frame.dtype != np.uint8 or frame.ndim not in (3, 4) or frame.shape[-1] != 3:
            raise InputError(f"a frame must be an HxWx3 uint8 RGB image, got {frame.dtype} {frame.shape}")
        # a read-only array (a decoder's buffer, a frozen fixture) is copied: torch tensors are always writable
        host = torch.from_numpy(np.ascontiguousarray(frame) if frame.flags.writeable else frame.copy())
        if self.device.type != "cuda":
            return host.to(self.device)
        if self._pinned is None or self._pinned.shape != host.shape:
            self._pinned = torch.empty(host.shape, dtype=torch.uint8, pin_memory=True)
        self._pinned.copy_(host)
        return self._pinned.to(self.device, non_blocking=True)

    def tensor_input(self, array: np.ndarray) -> torch.Tensor:
        """A tensor input (float32 C x H x W) as the network input 1 x C x H x W on the device."""
        if array.shape[0] != self.spec.in_channels:
            raise InputError(
                f"the tensor input has {array.shape[0]} channels but {self.name} takes {self.spec.in_channels}"
            )
        return torch.from_numpy(array)[None].to(self.device)

    def preprocess(self, frame: torch.Tensor) -> tuple[torch.Tensor, CropRect]:
        """Centre square crop, antialiased bilinear resize, [0,1], mean/std: all on the device.

        `frame` is HxWx3 or a batch NxHxWx3 of frames of one size; the input is always NxCxSxS.
        """
        if self.spec.in_channels not in (1, 3):
            raise InputError(
                f"{self.name} takes {self.spec.in_channels} input channels: give it a tensor file "
                "(.npy or .pt, C x H x W), not a photo"
            )
        frames = frame if frame.dim() == 4 else frame.unsqueeze(0)
        if self.whole_frame:
            return self._whole_frame(frames)
        resized, crop = centre_square_resized(frames, self.spec.input_size)
        if self.spec.in_channels == 1:
            luma = torch.tensor([0.299, 0.587, 0.114], device=resized.device).view(1, 3, 1, 1)
            resized = (resized.float() * luma).sum(1, keepdim=True)
        # Channels-first first: the float passes then run over contiguous memory.
        x = resized.contiguous().float().mul_(self._scale).add_(self._shift)
        return x, crop

    def _whole_frame(self, frames: torch.Tensor) -> tuple[torch.Tensor, CropRect]:
        """A detector's input: the frames as they are, [0, 1] RGB (its own transform resizes and normalises). A
        segmenter's: the frames with their shorter edge resized to the spec's side, normalised."""
        height, width = frames.shape[1:3]
        crop = CropRect(0, 0, width, height)
        nchw = frames.permute(0, 3, 1, 2)
        if self.task == DETECT:
            return nchw.float().div_(255.0).contiguous(), crop
        side = self.spec.input_size
        size = (side, max(1, round(width * side / height))) if height <= width else (round(height * side / width), side)
        x = nchw.float()
        if size != (height, width):  # as torchvision's preset does it: in float, rounded back to 8 bits
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
        return x.contiguous().mul_(self._scale).add_(self._shift), crop

    def prepare(self, frame: np.ndarray | torch.Tensor, *, inference: bool = False) -> PreparedFrame:
        """Upload and preprocess a frame (or a batch) for `run`, timed (on CUDA up to the device's finishing).

        With `inference` the tensors are inference tensors, a little cheaper, but a pass with a backward half
        cannot take them; `run` prepares such a frame again.
        """
        start = time.perf_counter()
        frame_t, x, crop = self._preprocessed(frame, inference)
        if self.device.type == "cuda":  # the time of the work, not of launching it (as the stage clock does)
            torch.cuda.synchronize(self.device)
        return PreparedFrame(frame, frame_t, x, crop, self, (time.perf_counter() - start) * 1000.0)

    def _preprocessed(
        self, frame: np.ndarray | torch.Tensor, inference: bool
    ) -> tuple[torch.Tensor, torch.Tensor, CropRect]:
        """The frame on the device, the network input and the crop; nothing waits for the device."""
        with torch.inference_mode(inference), torch.no_grad():
            if is_tensor_frame(frame):  # the network input as it is: no crop, resize or normalisation
                x, crop = self.tensor_input(frame), CropRect(0, 0, frame.shape[2], frame.shape[1])
                return self.upload(tensor_display(frame)), x, crop
            frame_t = frame if isinstance(frame, torch.Tensor) else self.upload(frame)
            x, crop = self.preprocess(frame_t)
            return frame_t, x, crop

    def runs_after(self, path: str, other: str) -> bool:
        """Whether layer `path`'s output is final after layer `other`'s (it may depend on it)."""
        return self._order.get(path, -1) > self._order.get(other, len(self._order))

    def edited(self, edits: Iterable[Edit], seen: SeenMeans | None = None) -> EditHooks:
        """A context manager: forward passes run inside it see the network with these edits (units switched
        off, set to their means or scaled; directions taken out), everything after each edited layer computed
        from the edited activation. Captures of an edited layer itself keep it as measured. `seen` keeps the
        channel means over the frames seen (the mean mode without means of its own)."""
        return EditHooks(self.model, self.layers, self.checked_edits(edits), seen)

    def checked_edits(self, edits: Iterable[Edit]) -> list[Edit]:
        """The edits with their layers named by path (a friendly name is allowed); `OptionError` for one that
        does not fit its layer."""
        resolved = []
        for change in edits:
            layer = self.layer(change.layer)
            if layer.path in (INPUT, PROB, OUTPUT):
                raise OptionError(f"{layer.name} is not a layer of the network to edit; choose one inside it")
            change.check(layer.channels, tuple(layer.shape[1:]) if layer.is_spatial else None)
            resolved.append(replace(change, layer=layer.path))
        return resolved

    def run(
        self,
        frame: np.ndarray | torch.Tensor | PreparedFrame,
        layers: Iterable[str] = (),
        *,
        on_stage: Callable[[str], None] | None = None,
        backward: BackwardRequest | None = None,
        keep_inputs: Iterable[str] = (),
    ) -> ForwardResult:
        """Preprocess one RGB frame (or a batch), run the model, capture the given layer paths.

        Captured activations drop the batch dimension for a single frame and keep it for a batch.
        `backward`: also backpropagate, in the same pass, what it asks (a unit's input gradient under a
        ReLU rule, or Grad-CAM); the activations are still exactly those of an ordinary forward.

        `keep_inputs`: modules (a transformer's attention) whose call arguments are kept, so that what they
        computed fused can be computed again for the views (see `transformers.attention`).

        `frame` may come prepared (`prepare`); one prepared by another engine, or as inference tensors for a
        pass with a backward half, is prepared again. `on_stage("preprocess")` and `on_stage("forward")` are
        called as each stage ends (timing).
        """
        prepared = frame if isinstance(frame, PreparedFrame) else None
        usable = prepared is not None and prepared.prepared_by is self
        if usable and not (backward is not None and prepared.input.is_inference()):
            frame_t, x, crop = prepared.frame, prepared.input, prepared.crop
        else:  # untimed: the caller's stage clock waits for the device when it times
            frame_t, x, crop = self._preprocessed(frame.image if prepared else frame, inference=backward is None)
        if on_stage:
            on_stage("preprocess")
        paths = list(layers)
        captured = [path for path in paths if path not in (INPUT, PROB, OUTPUT)]
        with AttentionInputs(self.model, keep_inputs) as kept, self._refused_input(x):
            if backward is None:
                with torch.inference_mode(), ActivationCapture(self.model, captured) as capture:
                    logits = self.model(x)
                outputs, prefixes, passed = capture.activations, capture.prefix_tokens, None
            else:
                pass_with = target_pass if isinstance(backward, TargetRequest) else forward_backward
                passed = pass_with(self.model, x, captured, backward)
                logits, outputs, prefixes = passed.logits, passed.activations, passed.prefix_tokens
        found = last_detections(self.model) if self.task == DETECT else None
        if found is not None:
            found = [{key: value.detach() for key, value in image.items()} for image in found]
        batched = frame_t.dim() == 4
        activations = {path: out if batched else out[0] for path, out in outputs.items()}
        prefix_tokens = {path: out if batched else out[0] for path, out in prefixes.items()}
        if INPUT in paths:
            activations[INPUT] = x if batched else x[0]
        if PROB in paths:
            probs = logits.float().softmax(1)
            activations[PROB] = probs if batched else probs[0]
        if OUTPUT in paths:
            activations[OUTPUT] = logits if batched else logits[0]
        if on_stage:
            on_stage("forward" if backward is None else "forward+backward")
        detections = None if found is None else found if batched else found[0]
        return ForwardResult(
            frame_t,
            x,
            crop,
            logits,
            activations,
            passed,
            prefix_tokens,
            kept.inputs,
            detections,
            covered_share(self.model),
        )

    @contextlib.contextmanager
    def _refused_input(self, x: torch.Tensor) -> Iterator[None]:
        """A tensor input of another size than the one the layers were listed at may be refused by the model
        (a transformer's patch embedding checks it): that is one clear line, not a traceback."""
        expected = (self.spec.in_channels, self.spec.input_size, self.spec.input_size)
        try:
            yield
        except (RuntimeError, AssertionError, ValueError) as exc:
            if tuple(x.shape[1:]) == expected:
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shape = " x ".join(map(str, x.shape[1:]))
            raise InputError(
                f"{self.name} does not run on a {shape} input ({reason}); give it "
                f"{' x '.join(map(str, expected))}, the size its layers are listed at"
            ) from None

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The bare model forward, no capture: the baseline the benchmark compares against."""
        return self.model(x)

    def top_k(self, logits: np.ndarray, k: int = 5) -> list[Prediction]:
        """The k most probable classes, from one frame's logits already on the host (none for a network
        that is not a classifier)."""
        if not self.is_classifier:
            return []
        scores = np.asarray(logits).ravel()
        k = min(k, scores.size)
        best = np.argpartition(scores, -k)[-k:]
        best = best[np.argsort(scores[best])[::-1]]
        # softmax of the k best alone: exp(s - max) / sum(exp(all - max)), in float64 for the sum
        shifted = scores.astype(np.float64) - scores[best[0]]
        probs = np.exp(shifted[best]) / np.exp(shifted).sum()
        return [Prediction(int(i), self.categories[i], float(p)) for i, p in zip(best, probs, strict=True)]
