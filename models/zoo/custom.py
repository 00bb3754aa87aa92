"""A user's own model: `timm:NAME`, a TorchScript or torch.export (.pt2) file, or `package.module:factory`.

A .pt2 file is checked before torch opens it (`exported_archive`): one that carries pickles, compiled code or
Python source is refused unless the user trusts it. A TorchScript file is a program by design: loading it
runs its `__setstate__` methods and showing it runs its `forward`, in TorchScript's interpreter, which cannot
import Python modules but can call any operator torch registers, those that read and write files included.

Preprocessing and labels come from timm's pretrained config, or from what the user says
(`--input-size`, `--mean`, `--std`, `--labels`), with ImageNet's as the defaults.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..data.tensors import quiet_loaders
from ..errors import ModelError, ModelNotFoundError, OptionError, WeightsError
from .exported_archive import check_exported_archive
from .spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EmbeddedWeights,
    ModelSpec,
    TimmWeights,
    imagenet_categories,
)

TIMM_PREFIX = "timm:"
CUSTOM_FAMILIES = ("factory", "torchscript", "exported program")
"""A user's own models whose input livevis learns from the model itself where the user does not say."""


def read_labels(path: str | Path | None) -> list[str] | None:
    if path is None:
        return None
    path = Path(path)
    try:
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read the labels file {path}: {exc.strerror or exc}") from None
    if not labels:
        raise ModelNotFoundError(f"the labels file {path} is empty; put one class name per line")
    return labels


def _categories(labels: list[str] | None):
    """User labels, else ImageNet's for 1000-way outputs (checked when layers are discovered)."""
    return (lambda: list(labels)) if labels else imagenet_categories


def custom_spec(
    name: str,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    labels: str | Path | None = None,
    in_channels: int | None = None,
    *,
    trust_model_file: bool = False,
) -> ModelSpec | None:
    """`trust_model_file`: open a .pt2 file even where it carries code of its own (see `load_model_file`)."""
    label_list = read_labels(labels)
    if std and not all(s > 0 for s in std):
        raise OptionError(f"--std must be above 0 for every channel, got {', '.join(map(str, std))}")
    if input_size is not None and input_size < 1:
        raise OptionError(f"--input-size must be a number of pixels above 0, got {input_size}")
    if name.startswith(TIMM_PREFIX):
        return _timm_spec(name[len(TIMM_PREFIX) :], input_size, mean, std, label_list)
    if in_channels is not None and in_channels < 1:
        raise OptionError(f"--in-channels must be 1 or more, got {in_channels}")
    if in_channels is not None and mean and len(mean) != in_channels:
        raise OptionError(f"--in-channels {in_channels} but --mean has {len(mean)} values; give one per channel")
    plain = (0.5,) * in_channels if in_channels not in (None, 3) else None
    mean = tuple(mean) if mean else plain or IMAGENET_MEAN
    std = tuple(std) if std else plain or IMAGENET_STD
    if len(mean) != len(std):
        raise OptionError(f"--mean has {len(mean)} values but --std has {len(std)}; give one per channel")
    common = dict(
        input_size=input_size or 224,
        mean=mean,
        std=std,
        in_channels=len(mean),
        categories=_categories(label_list),
        default_layer="",
    )
    path = Path(name).expanduser()
    if path.suffix in {".pt", ".pth", ".pt2", ".ts", ".torchscript"} or path.is_file():
        if not path.is_file():
            raise ModelNotFoundError(f"model file {path} does not exist")
        return ModelSpec(
            name=path.name,
            family="exported program" if path.suffix == ".pt2" else "torchscript",
            build=lambda: load_model_file(path, trusted=trust_model_file),
            weights=EmbeddedWeights(path),
            description=f"the user's model file {path}",
            **common,
        )
    if ":" in name and not name.startswith(":"):
        module_name, factory_name = name.split(":", 1)
        return ModelSpec(
            name=name,
            family="factory",
            build=lambda: build_from_factory(module_name, factory_name),
            weights=None,
            description=f"the user's model {name}(); weights from --weights PATH",
            **common,
        )
    return None


def load_model_file(path: Path, *, trusted: bool = False) -> nn.Module:
    """A .pt2 torch.export program (every layer visible) or a TorchScript file (its inner layers are
    compiled away from hooks: only the input and the output can be shown).

    torch's .pt2 reader unpickles what the file marks as pickled and evaluates some of its text, so an
    untrusted .pt2 is checked first and refused (UnsafeModelFileError) where it carries such things. A
    TorchScript file is code by design (see the module's docstring): it is loaded as it is."""
    if path.suffix == ".pt2" and not trusted:
        check_exported_archive(path)
    try:
        with quiet_loaders():
            if path.suffix == ".pt2":
                return torch.export.unflatten(torch.export.load(str(path)))
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # both loaders raise plain RuntimeError and friends for a bad file
        raise WeightsError(f"{path} is not a TorchScript or torch.export (.pt2) model file ({exc})") from None


def _import_users_module(module_name: str):
    """The user's module, looked up from the working folder first, as `python -m` would: the
    `livevis` console script does not put that folder on sys.path by itself."""
    folder = str(Path.cwd())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(folder)


def build_from_factory(module_name: str, factory_name: str) -> nn.Module:
    try:
        module = _import_users_module(module_name)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"cannot import {module_name!r} for model {module_name}:{factory_name} ({exc})"
        ) from None
    except Exception as exc:  # the user's module fails while it is imported
        raise ModelError(f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelNotFoundError(f"{module_name} has no callable {factory_name!r}")
    try:
        model = factory()
    except Exception as exc:
        raise ModelError(f"{module_name}:{factory_name}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ModelNotFoundError(f"{module_name}:{factory_name}() returned {type(model).__name__}, not a torch module")
    return model


def _timm_spec(timm_name: str, input_size: int | None, mean, std, labels: list[str] | None) -> ModelSpec:
    import timm

    if not timm.list_models(timm_name) and timm_name not in timm.list_models(pretrained=True):
        raise ModelNotFoundError(f"timm has no model {timm_name!r}; `timm.list_models('*pattern*')` lists them")
    config = timm.get_pretrained_cfg(timm_name)
    config = config.to_dict() if config is not None else {}
    native = int(config.get("input_size", (3, 224, 224))[-1])
    # a transformer is built for its input size (its position embeddings, its patch grid): another size is
    # built in, and timm resamples the trained position embeddings to it as it loads them
    options = (("img_size", input_size),) if input_size and input_size != native and _takes_img_size(timm_name) else ()

    def build() -> nn.Module:
        return timm.create_model(timm_name, pretrained=False, **dict(options))

    return ModelSpec(
        name=f"{TIMM_PREFIX}{timm_name}",
        family="timm",
        build=build,
        default_layer="",
        weights=TimmWeights(timm_name, options),
        input_size=input_size or native,
        mean=tuple(mean) if mean else tuple(config.get("mean", IMAGENET_MEAN)),
        std=tuple(std) if std else tuple(config.get("std", IMAGENET_STD)),
        categories=_categories(labels),
        description=f"timm {timm_name} ({config.get('hf_hub_id') or config.get('url') or 'no pretrained weights'})",
    )


def _takes_img_size(timm_name: str) -> bool:
    """Whether timm builds the model for a given input size (vision transformers and their kin do)."""
    import timm

    try:
        timm.create_model(timm_name, pretrained=False, img_size=64, num_classes=0, depth=1)
    except TypeError:
        return False
    except Exception:  # a model that takes img_size but not this shortcut: try it plainly
        try:
            timm.create_model(timm_name, pretrained=False, img_size=224)
        except TypeError:
            return False
    return True
