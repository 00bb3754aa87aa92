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
