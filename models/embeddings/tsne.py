"""Layers as embeddings: where a dataset's samples land after each layer, mapped to 2-D with t-SNE.

A classifier is a series of processings that pull the classes apart; the k-NN accuracy of the class
in each layer's map measures how far apart, layer by layer, and trustworthiness how faithful the map
is to the layer's own neighbourhoods. Results are cached on disk (plain arrays, no pickles).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cache import cache_folder, read_entry
from ..data.datasets import LabelledImages
from ..engine import Engine
from ..errors import OptionError
from ..layers import INPUT, LayerInfo
from ..progress import Cancelled, Progress, report

METHODS = ("opentsne", "sklearn")
PCA_DIMENSIONS = 50
KNN_K = 10
THUMBNAIL = 32
CACHED_KEYS = {"dimension", "coords", "knn", "trust", "seconds", "reduced"}


@dataclass
class LayerMap:
    """One layer's 2-D map and how good it is."""

    name: str
    path: str
    dimension: int
    coords: np.ndarray
    knn_accuracy: float
    trustworthiness: float
    seconds: float
    cached: bool = False
    reduced: np.ndarray | None = field(default=None, repr=False)
    """The (PCA-reduced) points the map was made from: what new points are placed against."""
    pca_mean: np.ndarray | None = field(default=None, repr=False)
    pca_components: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "dimension": self.dimension,
            "knn_accuracy": self.knn_accuracy,
            "trustworthiness": self.trustworthiness,
            "seconds": self.seconds,
            "cached": self.cached,
        }


@dataclass
class EmbeddingRun:
    dataset: str
    model: str
    labels: np.ndarray
    classes: tuple[str, ...]
    thumbnails: np.ndarray
    """N x THUMBNAIL x THUMBNAIL x 3 uint8, for hovering over a point."""
    layers: list[LayerMap]
    skipped: int = 0
    """Unreadable images left out of a folder dataset."""


READOUTS = ("flat", "class", "mean")


@dataclass(frozen=True)
class Readout:
    """What a layer gives as one point per image: its whole output flattened, or, for a transformer's
    tokens, its class token (`class`) or the mean of its patch tokens (`mean`)."""

    layer: LayerInfo
    kind: str = "flat"

    @property
    def path(self) -> str:
        """The key of its map: the layer's path, with `:class` or `:mean` for a token readout."""
        return self.layer.path if self.kind == "flat" else f"{self.layer.path}:{self.kind}"

    @property
    def name(self) -> str:
        suffix = {"flat": "", "class": " (class token)", "mean": " (mean patch token)"}[self.kind]
        return self.layer.name + suffix

    def points(self, result) -> torch.Tensor:
        """N x D from a forward result of a batch."""
        if self.kind == "class":
            return result.prefix_tokens[self.layer.path][:, 0]
        activation = result.activations[self.layer.path]
        return activation.mean((2, 3)) if self.kind == "mean" else activation.flatten(1)


def readout(engine: Engine, key: str) -> Readout:
    """A readout by its key: a layer's path or name, with `:class` or `:mean` for a transformer's tokens."""
    path, _, kind = key.rpartition(":") if key.endswith((":class", ":mean")) else (key, "", "flat")
    layer = engine.layer(path)
    if kind == "class" and not layer.prefix_tokens:
        raise OptionError(f"{layer.name} has no class token; use {layer.path}:mean (the mean patch token)")
    if kind == "mean" and not layer.is_spatial:
        raise OptionError(f"{layer.name} has no patch tokens or maps to average; use {layer.path}")
    return Readout(layer, kind)


def default_layers(engine: Engine) -> list[Readout]:
    """The input and every stage: the spec's stages; for a transformer, every block's class token and mean
    patch token; else each top-level module that is not an activation, dropout, norm or reshaping step
    (those repeat the stage before them)."""
    if engine.spec.stages:
        return [Readout(engine.layer(name)) for name in engine.spec.stages]
    if engine.blocks:
        tokens = [
            Readout(block, kind)
            for block in engine.blocks
            for kind in ("class", "mean")
            if kind == "mean" or block.prefix_tokens
        ]
        return [Readout(engine.layers[0]), *tokens]
    skip = {"ReLU", "ReLU6", "GELU", "SiLU", "Hardswish", "Dropout", "Flatten", "Identity", "BatchNorm2d", "Softmax"}
    top = [layer for layer in engine.layers if "." not in layer.path and layer.module_type not in skip]
    return [Readout(layer) for layer in top if layer.path != "prob"]


def select_layers(engine: Engine, keys: Sequence[str] | None) -> list[Readout]:
    """None: the input and every stage; ["all"]: every layer; else the named layers (`blocks.3:class`,
    `blocks.3:mean` for a transformer block's class token and mean patch token)."""
    if not keys:
        return default_layers(engine)
    if list(keys) == ["all"]:
        return [Readout(layer) for layer in engine.layers if layer.path != "prob"]
    return [readout(engine, key) for key in keys]


@torch.inference_mode()
def activations(
    engine: Engine,
    images: np.ndarray,
    layers: Sequence[LayerInfo | Readout],
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Float32 points (N x D) of every layer or readout, by its path, computed in batches on the model's
    device (a layer gives its output flattened)."""
    readouts = [layer if isinstance(layer, Readout) else Readout(layer) for layer in layers]
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    out: dict[str, list[np.ndarray]] = {r.path: [] for r in readouts}
    paths = sorted({r.layer.path for r in readouts})
    for start in range(0, len(images), batch_size):
        batch = engine.upload(np.ascontiguousarray(images[start : start + batch_size]))
        result = engine.run(batch, paths)
        for r in readouts:
            out[r.path].append(r.points(result).float().cpu().numpy())
        report(progress, "activations", min(start + batch_size, len(images)), len(images))
    return {path: np.concatenate(chunks) for path, chunks in out.items()}


def reduce_dimensions(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """PCA to 50 dimensions where there are more; returns the reduced points, mean and components."""
    if x.shape[1] <= PCA_DIMENSIONS:
        return x.astype(np.float32), None, None
    from sklearn.decomposition import PCA

    pca = PCA(PCA_DIMENSIONS, random_state=seed, svd_solver="randomized")
    reduced = pca.fit_transform(x)
    return reduced.astype(np.float32), pca.mean_.astype(np.float32), pca.components_.astype(np.float32)


def tsne_2d(
    x: np.ndarray, method: str, perplexity: float, seed: int, should_stop: Callable[[], bool] | None = None
) -> np.ndarray:
    """`should_stop` is asked every 10 iterations (openTSNE), so a cancel takes effect within a layer."""
    if method == "opentsne":
        from openTSNE import TSNE

        callbacks = {"callbacks": lambda *_: should_stop(), "callbacks_every_iters": 10} if should_stop else {}
        coords = np.asarray(
            TSNE(perplexity=perplexity, n_jobs=-1, random_state=seed, verbose=False, **callbacks).fit(x)
        )
    elif method == "sklearn":
        from sklearn.manifold import TSNE

        coords = TSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(x)
    else:
        raise OptionError(f"unknown t-SNE method {method!r}; use {' or '.join(METHODS)}")
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")
    return coords


def map_quality(reduced: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(5-fold cross-validated k-NN accuracy of the class in the map, trustworthiness of the map)."""
    from sklearn.manifold import trustworthiness
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    knn = cross_val_score(KNeighborsClassifier(KNN_K), coords, labels, cv=folds).mean()
    return float(knn), float(trustworthiness(reduced, coords, n_neighbors=KNN_K))


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """A cached map's arrays; None where there is none or it cannot be read (it is then set aside and made
    again)."""
    return read_entry(path, _read_map)


def _read_map(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    missing = CACHED_KEYS - set(stored)
    if missing:
        raise KeyError(f"no {', '.join(sorted(missing))}")
    return stored


def _cache_file(key: dict, method: str, perplexity: float) -> Path:
    parts = json.dumps({**key, "method": method, "perplexity": perplexity}, sort_keys=True, default=str)
    return cache_folder("embeddings") / f"{hashlib.sha256(parts.encode()).hexdigest()[:24]}.npz"


def embed_points(
    name: str,
    path: str,
    points: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = "opentsne",
    perplexity: float = 30.0,
    seed: int = 0,
    key: dict | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LayerMap:
    """One layer's map: PCA, t-SNE, quality; from the cache when `key` says it was made before."""
    if not 1 < perplexity < len(points) / 3:
        raise OptionError(f"perplexity {perplexity} does not suit {len(points)} samples; use 5 to {len(points) // 3}")
    cache_file = _cache_file(key, method, perplexity) if key else None
    stored = _read_cache(cache_file) if cache_file is not None else None
    if stored is not None:
        return LayerMap(
            name,
            path,
            int(stored["dimension"]),
            stored["coords"],
            float(stored["knn"]),
            float(stored["trust"]),
            float(stored["seconds"]),
            True,
            stored["reduced"],
            stored.get("pca_mean"),
            stored.get("pca_components"),
        )
    start = time.perf_counter()
    reduced, mean, components = reduce_dimensions(points, seed)
    coords = tsne_2d(reduced, method, perplexity, seed, should_stop).astype(np.float32)
    knn, trust = map_quality(reduced, coords, labels)
    seconds = time.perf_counter() - start
    result = LayerMap(name, path, points.shape[1], coords, knn, trust, seconds, False, reduced, mean, components)
    if cache_file is not None:
        extra = {} if mean is None else {"pca_mean": mean, "pca_components": components}
        temporary = cache_file.with_suffix(".partial.npz")
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                temporary,
                dimension=points.shape[1],
                coords=coords,
                knn=knn,
                trust=trust,
                seconds=seconds,
                reduced=reduced,
                **extra,
            )
            temporary.replace(cache_file)
        except OSError:  # a cache that cannot be written (read-only, full) only costs the next run time
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return result


def _thumbnails(images: np.ndarray) -> np.ndarray:
    import cv2

    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    return np.stack([cv2.resize(image, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA) for image in images])


def embed_dataset(
    engine: Engine,
    data: LabelledImages,
    dataset_name: str,
    layer_keys: Sequence[str] | None = None,
    *,
    method: str = "opentsne",
    perplexity: float = 30.0,
    seed: int = 0,
    progress: Progress | None = None,
) -> EmbeddingRun:
    """Every asked layer's map of `data` through `engine` (see `select_layers`); cached per layer."""
    layers = select_layers(engine, layer_keys)
    content = hashlib.sha256(data.labels.tobytes() + data.images[:: max(1, len(data) // 64)].tobytes()).hexdigest()
    identity = {
        "model": engine.name,
        "weights": engine.weights.source,
        "dataset": dataset_name,
        "samples": len(data),
        "seed": seed,
        "content": content[:16],
    }
    keys = {layer.path: {**identity, "layer": layer.path} for layer in layers}  # a readout's path names its kind
    missing = [layer for layer in layers if not _cache_file(keys[layer.path], method, perplexity).is_file()]
    features = activations(engine, data.images, missing, progress=progress) if missing else {}
    maps = []
    for done, layer in enumerate(layers):
        stage = f"t-SNE of {layer.name}"
        report(progress, stage, done, len(layers))
        points = features.get(layer.path)
        if points is None:
            points = np.zeros((len(data), 0), np.float32)  # cached: the points are not needed
        should_stop = (lambda stage=stage, done=done: progress(stage, done, len(layers)) is False) if progress else None
        maps.append(
            embed_points(
                layer.name,
                layer.path,
                points,
                data.labels,
                method=method,
                perplexity=perplexity,
                seed=seed,
                key=keys[layer.path],
                should_stop=should_stop,
            )
        )
    report(progress, "done", len(layers), len(layers))
    return EmbeddingRun(dataset_name, engine.name, data.labels, data.classes, _thumbnails(data.images), maps)


class MapPlacer:
    """Places new samples into an existing map (openTSNE's transform), e.g. the live frame."""

    def __init__(self, layer_map: LayerMap, perplexity: float = 30.0, seed: int = 0):
        from openTSNE import TSNEEmbedding
        from openTSNE.affinity import PerplexityBasedNN

        self.layer_map = layer_map
        affinities = PerplexityBasedNN(
            layer_map.reduced, perplexity=perplexity, n_jobs=-1, random_state=seed, verbose=False
        )
        # openTSNE places new points relative to the map's centre (it centres what it optimises): the map is
        # given centred, and the centre added back, or every placed point lands off by it
        coords = layer_map.coords.astype(np.float64)
        self._centre = (coords.max(0) + coords.min(0)) / 2
        self._embedding = TSNEEmbedding(coords - self._centre, affinities, random_state=seed)

    def project(self, flat_activation: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(flat_activation).astype(np.float32)
        if self.layer_map.pca_components is not None:
            x = (x - self.layer_map.pca_mean) @ self.layer_map.pca_components.T
        return x

    def place(self, flat_activation: np.ndarray) -> np.ndarray:
        """(k, 2) map coordinates for k new samples, given their flattened activations."""
        return np.asarray(self._embedding.transform(self.project(flat_activation), n_iter=25)) + self._centre


def swiss_roll(samples: int = 2000, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The 4-D swiss roll of the notes: three coordinates on a rolled grid plus one Gaussian noise
    dimension. Returns the points and each point's position along the roll (0..1)."""
    rng = np.random.default_rng(seed)
    along = max(2, int(round(np.sqrt(samples * 2.5))))
    across = max(2, int(np.ceil(samples / along)))
    t, h = np.meshgrid(np.linspace(1.5 * np.pi, 4.5 * np.pi, along), np.linspace(0, 20, across), indexing="ij")
    t, h = t.ravel()[:samples], h.ravel()[:samples]
    points = np.stack([t * np.cos(t), h, t * np.sin(t), rng.normal(0, noise, t.shape)], axis=1)
    return points.astype(np.float32), ((t - t.min()) / (t.max() - t.min())).astype(np.float32)


def embed_swiss_roll(
    samples: int = 2000, *, method: str = "opentsne", perplexity: float = 30.0, seed: int = 0, bins: int = 6
) -> EmbeddingRun:
    """t-SNE of the raw 4-D points; the 'classes' are stretches along the roll, for colour and k-NN."""
    points, position = swiss_roll(samples, seed)
    labels = np.minimum((position * bins).astype(np.int64), bins - 1)
    layer = embed_points(
        "swiss roll (4-D)",
        INPUT,
        points,
        labels,
        method=method,
        perplexity=perplexity,
        seed=seed,
        key={"dataset": "swissroll", "samples": samples, "seed": seed},
    )
    colours = (np.stack([position, 0.5 + 0 * position, 1 - position], 1) * 255).astype(np.uint8)
    thumbnails = np.broadcast_to(colours[:, None, None, :], (samples, THUMBNAIL, THUMBNAIL, 3)).copy()
    classes = tuple(f"{i / bins:.2f}-{(i + 1) / bins:.2f} along" for i in range(bins))
    return EmbeddingRun("swissroll", "none", labels, classes, thumbnails, [layer])
