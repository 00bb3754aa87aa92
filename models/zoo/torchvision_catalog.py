"""Every torchvision classification model by its name, beyond the few the registry describes by hand.

Each spec comes from the model's DEFAULT weights: their URL, their preprocessing (crop size, mean, std) and
their class names. The default layer is left to the engine (a transformer's block two thirds down, else the
last layer whose maps are 7 x 7 or larger).
"""

from __future__ import annotations

from functools import cache

from torch import nn

from .spec import HubWeights, ModelSpec


@cache
def torchvision_names() -> tuple[str, ...]:
    """The classification models torchvision builds (`torchvision.models.list_models`), sorted."""
    import torchvision.models as tvm

    return tuple(sorted(tvm.list_models(module=tvm)))


def _build_options(name: str, weights) -> dict:
    """The architecture options torchvision itself sets when it loads these weights, so that the state dict
    fits and the outputs match: a ViT's image size, Inception's input transform and auxiliary heads."""
    if name.startswith("vit_"):
        return {"image_size": weights.meta["min_size"][0]}
    if name in ("googlenet", "inception_v3"):
        return {"transform_input": True, "aux_logits": True, "init_weights": False}
    return {}


def torchvision_spec(name: str) -> ModelSpec | None:
    """The spec of torchvision classification model `name`; None for a name torchvision does not have."""
    if name not in torchvision_names():
        return None
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    transform = weights.transforms()
    options = _build_options(name, weights)

    def build() -> nn.Module:
        return tvm.get_model(name, weights=None, **options)

    categories = list(weights.meta["categories"])
    return ModelSpec(
        name=name,
        family="torchvision",
        build=build,
        default_layer="",
        weights=HubWeights(weights.url),
        input_size=int(transform.crop_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        categories=lambda: categories,
        description=f"torchvision {name}, ImageNet ({weights})",
    )


@cache
def task_names() -> dict[str, str]:
    """torchvision's detection and segmentation models by name, with their kind (`detect`, `segment`)."""
    import torchvision.models as tvm

    found = {name: "detect" for name in tvm.list_models(module=tvm.detection)}
    return found | {name: "segment" for name in tvm.list_models(module=tvm.segmentation)}


def _task_build_options(name: str, task: str) -> dict:
    """What the builder needs to make the architecture its trained weights fit, without fetching anything: no
    ImageNet backbone download, and a segmenter's auxiliary head where its trained weights have one."""
    options: dict = {"weights_backbone": None}
    if task == "segment" and not name.startswith("lraspp"):
        options["aux_loss"] = True
    return options


def _detector_side(name: str) -> int:
    """The side a detector's transform resizes a frame's shorter edge to (its layers are listed at it)."""
    for side in (320, 300):
        if str(side) in name:
            return side
    return 800


def task_spec(name: str) -> ModelSpec | None:
    """The spec of a torchvision detector or segmenter; None for a name torchvision does not have.

    A detector takes the whole frame as [0, 1] RGB (mean 0, std 1: its own transform normalises and resizes);
    a segmenter the whole frame with its shorter edge resized to `input_size` and normalised as its weights ask.
    """
    task = task_names().get(name)
    if task is None:
        return None
    import torchvision.models as tvm

    weights = tvm.get_model_weights(name).DEFAULT
    options = _task_build_options(name, task)

    def build() -> nn.Module:
        return tvm.get_model(name, weights=None, **options)

    categories = list(weights.meta["categories"])
    if task == "detect":
        size, mean, std = _detector_side(name), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        transform = weights.transforms()
        size, mean, std = int(transform.resize_size[0]), tuple(transform.mean), tuple(transform.std)
    return ModelSpec(
        name=name,
        family=f"torchvision {'detector' if task == 'detect' else 'segmenter'}",
        build=build,
        default_layer="",
        weights=HubWeights(weights.url),
        input_size=size,
        mean=mean,
        std=std,
        categories=lambda: categories,
        description=f"torchvision {name}, {'COCO' if task == 'detect' else 'COCO with VOC labels'} ({weights})",
        task=task,
    )
