"""What livevis knows about a model, as frozen data: architecture, preprocessing, labels, layer names and
where its trained weights come from. The registry (`registry.py`) and a user's own models (`custom.py`)
both build these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HubWeights:
    """Weights that live at a URL and are cached in the torch hub folder once downloaded."""

    url: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped inside an installed Python package: trained, and available offline.

    `by_order`: the file's tensor names differ from the architecture's but their order and shapes
    match (a checkpoint converted from another implementation), so tensors are matched by position.
    """

    package: str
    file: str
    pip_name: str
    by_order: bool = False


@dataclass(frozen=True)
class BundledWeights:
    """Weights committed to this repository under assets/ (small models trained by livevis itself)."""

    path: Path


@dataclass(frozen=True)
class EmbeddedWeights:
    """The model file carries its own weights (TorchScript, torch.export programs)."""

    path: Path


@dataclass(frozen=True)
class TimmWeights:
    """timm's pretrained weights for a model name, from the Hugging Face hub cache or a download."""

    name: str
    options: tuple[tuple[str, object], ...] = ()
    """What the model was built with (an input size): timm adapts the weights to it as it loads them."""


WeightsSource = HubWeights | PackageWeights | BundledWeights | EmbeddedWeights | TimmWeights


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    build: Callable[[], nn.Module]
    """Builds the architecture with random weights; trained weights are loaded separately."""
    default_layer: str
    weights: WeightsSource | None = None
    input_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    in_channels: int = 3
    categories: Callable[[], list[str]] = field(default=lambda: [])
    layer_names: Callable[[nn.Module], Mapping[str, str]] = field(default=lambda model: {})
    """Friendly names by module path, e.g. AlexNet's `features.10` -> `conv5` as in Caffe."""
    description: str = ""
    stages: tuple[str, ...] = ()
    """The layers that make "every stage" for embeddings; empty: derived from the top-level modules."""
    task: str = ""
    """`detect` or `segment` for a detector or a segmenter (the whole frame, not a centre crop, is its input);
    "" for any other model, whose kind its output tells (a user's model that detects is found so)."""


@cache
def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names; torchvision ships them, no download needed."""
    from torchvision.models import AlexNet_Weights

    return list(AlexNet_Weights.IMAGENET1K_V1.meta["categories"])
