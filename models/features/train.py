"""Learning a layer's features: a TopK SAE trained on every cell of the layer over a folder of photos.

The cells come through the atlas's reader (the same pixels as the live view: centre square, antialiased resize),
and are kept in livevis's cache keyed by the model, its weights, the layer, the preprocessing, the view and the
folder's files, so a second run (another width, another k, a resumed one) reads no photo. Whole photos are held
out (a tenth, at least one): the figures are measured on their cells as the live view sees them, never trained
on. The training photos are also read mirrored, zoomed (their central 80%) and both (`Recipe.views`): four times
the cells of the same photos, which narrows the gap between the training cells' figures and the held-out ones.

The recipe is Gao et al. 2024's: b_dec starts at the cells' mean, the decoder's rows at random cells' directions
(centred; random directions left a tenth of the features dead), W_enc at W_dec (the encoder the decoder's
transpose), decoder rows kept at unit norm after each step with the gradient's component along them taken out,
an AuxK loss (the residual rebuilt from the top `k_aux` dead features, coefficient 1/32) to bring dead features
back, Adam (beta2 0.99: a third higher explained variance for the same steps than 0.999) with a warm-up and a
cosine decay. Features still dead early in the run are restarted at the directions of badly rebuilt cells
(Bricken et al. 2023's resampling), which keeps the dead share near zero at that Adam's pace.

One product per step is dense, the encoder's B x C x F, and it only chooses each row's k features: on a device
with fast bfloat16 products it is made in bfloat16. Everything after the choice is sparse and in float32: the k
pre-activations' gradients reach W_enc as a CSR matrix times the rows, the decoder's product is an embedding bag.

A run saves a checkpoint beside its output every few epochs and as it is cancelled or interrupted; the same
command resumes from it.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atlas.data import Reader, read_with_opencv
from ..atlas.folder import FolderListing, check_one_kind, list_folder
from ..atlas.store import _hash, _identity, atlas_dir
from ..atlas.topk import Processes, weights_fingerprint
from ..cache import cache_folder, read_entry
from ..engine import Engine
from ..errors import InputError, OptionError
from ..layers import INPUT, OUTPUT, PROB, LayerInfo
from ..progress import Cancelled, Progress, report
from .sae import SparseAutoencoder, explained_variance

VERSION = 1
"""Bumped when a change makes stored cells or checkpoints wrong."""
HELD_OUT = 0.1
"""The share of photos held out (at least one)."""
AUX_COEFFICIENT = 1 / 32
CHECKPOINT_SECONDS = 20.0
RESAMPLE_AT = (0.15, 0.3, 0.45, 0.6)
"""Shares of the steps at which dead features restart; none later, so that restarted ones have time to settle."""
RESAMPLE_ROWS = 8192
VIEWS = ("photos", "mirrored", "zoomed", "zoomed and mirrored")
ZOOM_MARGIN = 0.1
"""A zoomed view leaves out this share of the photo on each side."""


@dataclass(frozen=True)
class Recipe:
    width: int
    """Features per channel (F = width x C)."""
    k: int
    epochs: int = 30
    batch_size: int = 512
    lr: float = 3e-3
    warmup: float = 0.05
    """The share of the steps the learning rate rises over."""
    k_aux: int = 64
    seed: int = 0
    views: int = 4
    """How many of `VIEWS` of each training photo: 1 (the photos as the live view sees them), 2 or 4."""
    beta2: float = 0.99
    dead_after: float = 0.2
    """Epochs without firing after which a feature counts as dead (AuxK, resampling)."""


def parse_width(text: str | int) -> int:
    """'4x' or '4' -> 4."""
    value = str(text).strip().lower().removesuffix("x")
    try:
        width = int(value)
    except ValueError:
        raise OptionError(f"--width {text!r}: give how many features per channel, for example 4x") from None
    if not 1 <= width <= 64:
        raise OptionError(f"--width {text!r}: from 1x to 64x features per channel")
    return width


def check_recipe(recipe: Recipe, layer: LayerInfo) -> None:
    if layer.path in (INPUT, PROB, OUTPUT):
        raise OptionError(f"{layer.name} is not a layer inside the network: choose one to learn features of")
    features = recipe.width * layer.channels
    if not 1 <= recipe.k <= features:
        raise OptionError(f"--k {recipe.k}: from 1 to the {features} features ({recipe.width}x {layer.channels})")
    if recipe.epochs < 1 or recipe.batch_size < 1:
        raise OptionError("--epochs and --batch-size must be 1 or more")
    if recipe.views not in (1, 2, 4):
        raise OptionError(f"--views {recipe.views}: 1 (the photos), 2 (and mirrored) or 4 (and zoomed)")


# ---------------------------------------------------------------------------------------------
# The cells


@dataclass
class FolderCells:
    """Every cell of a layer over a folder's readable photos: rows (N x C float32) and the photo of each row."""

    rows: np.ndarray
    items: np.ndarray
    """N int64: the index (into the listing) of each row's photo."""
    listing: FolderListing

    def split(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Row masks (train, held out): a tenth of the photos (at least one) held out, chosen by `seed`."""
        photos = np.unique(self.items)
        if len(photos) < 2:
            raise InputError(f"{self.listing.folder} has {len(photos)} readable photo: features need 2 or more")
        count = max(1, round(HELD_OUT * len(photos)))
        held = np.random.default_rng(seed).choice(photos, count, replace=False)
        out = np.isin(self.items, held)
        return ~out, out

    def held_out_names(self, seed: int) -> list[str]:
        _, out = self.split(seed)
        return [self.listing.items[i].name for i in np.unique(self.items[out])]


@dataclass(frozen=True)
class Viewed:
    """A reader of one of `VIEWS` of each photo: its central part (`ZOOM_MARGIN` off each side) and/or its mirror
    image, before the live view's own crop and resize. A class, not a closure, so that reader workers can take it."""

    reader: Reader
    view: int

    def __call__(self, path: Path, frame: int = 0) -> np.ndarray:
        image = self.reader(path, frame)
        if self.view >= 2:
            h, w = image.shape[:2]
            dh, dw = int(h * ZOOM_MARGIN), int(w * ZOOM_MARGIN)
            image = image[dh : h - dh, dw : w - dw]
        if self.view % 2:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)


def _cells_file(engine: Engine, layer: LayerInfo, listing: FolderListing, view: int) -> Path:
    key = {**_identity(engine, weights_fingerprint(engine.model), layer), "folder": str(listing.folder.resolve())}
    if view:
        key["view"] = VIEWS[view]
    return cache_folder("features") / "cells" / f"{_hash({**key, 'version': VERSION})}-{listing.signature[:16]}.npz"


def folder_cells(
    engine: Engine,
    folder: str | Path,
    layer: LayerInfo,
    *,
    batch_size: int = 32,
    workers: int = 0,
    reader: Reader | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
    view: int = 0,
    processes: Processes | None = None,
) -> FolderCells:
    """The layer's cells over the folder (or one of `VIEWS` of its photos), read through the atlas's reader, or
    from the cache. Under torchrun (`processes`) each process reads every world-th photo and every process gets
    all the cells, in the order one process would have read them; rank 0 writes the cache."""
    from ..concepts.dataset import _maps_of_folder

    listing = list_folder(folder)
    if not listing.items:
        raise InputError(f"{folder} holds no images to learn features on")
    tensors = check_one_kind(listing)
    if view and tensors:
        raise OptionError("a folder of tensors is learnt from as it is: --views 1")
    file = _cells_file(engine, layer, listing, view)
    processes = processes or Processes()
    if use_cache:
        stored = read_entry(file, _read_cells)
        fits = stored is not None and stored[0].shape[1] == layer.channels
        if processes.broadcast(fits):  # rank 0's answer: every process reads its share, or none does
            if not fits:
                raise InputError(f"{file} is cached for rank 0 but this process cannot read it")
            return FolderCells(stored[0], stored[1], listing)
    rows, items = [], []
    reader = reader or read_with_opencv
    reader = Viewed(reader, view) if view else reader
    passes = {"tensors": tensors, "batch_size": batch_size, "workers": workers, "reader": reader}
    what = f"reading {layer.name} over {len(listing.items)} images" + (f" ({VIEWS[view]})" if view else "")
    share = slice(processes.rank, None, processes.world)
    for batches, _failed in _maps_of_folder(
        engine, listing, layer, progress=progress, what=what, share=share, **passes
    ):
        for indices, maps, _, _ in batches:
            n, c = maps.shape[:2]
            flat = maps.float().reshape(n, c, -1).transpose(1, 2)
            rows.append(flat.reshape(-1, c).cpu().numpy())
            items.append(np.repeat(indices.numpy().astype(np.int64), flat.shape[1]))
    read = (
        np.concatenate(rows) if rows else np.zeros((0, layer.channels), np.float32),
        np.concatenate(items) if items else np.zeros(0, np.int64),
    )
    shares = processes.all_gather(read)
    rows, items = np.concatenate([r for r, _ in shares]), np.concatenate([i for _, i in shares])
    if not len(rows):
        raise InputError(f"none of the {len(listing.items)} files in {folder} could be read")
    order = np.argsort(items, kind="stable")  # by photo, each photo's cells in their order: as one process reads
    found = FolderCells(rows[order], items[order], listing)
    if use_cache and processes.is_main:
        from ..atlas.store import _save_npz

        _save_npz(file, rows=found.rows, items=found.items)
    return found


def read_views(
    engine: Engine, folder: str | Path, layer: str | None, recipe: Recipe, *, processes: Processes, **reading
) -> None:
    """The cells of every view a run of `recipe` learns from, read into the cache, shared among torchrun's
    processes; then rank 0's `train_features` reads no photo."""
    from ..atlas.topk import _same_weights_everywhere

    if processes.world > 1:
        _same_weights_everywhere(engine, processes)  # random weights differ per process: rank 0's everywhere
    info = engine.layer(layer)
    cells = folder_cells(engine, folder, info, processes=processes, **reading)
    for view in _more_views(cells.listing, recipe):
        folder_cells(engine, folder, info, view=view, processes=processes, **reading)


def _more_views(listing: FolderListing, recipe: Recipe) -> range:
    """The views read besides the photos themselves: none for a folder of tensors, which is learnt as it is."""
    return range(1, 1 if check_one_kind(listing) else recipe.views)


def _read_cells(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        rows, items = stored["rows"], stored["items"]
    if rows.ndim != 2 or rows.dtype != np.float32 or items.shape != rows.shape[:1]:
        raise ValueError("not the cells of a layer")
    return rows, items


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class Figures:
    """How well the features rebuild held-out photos' cells, and how many are used."""

    explained_variance: float
    l0: float
    """Mean count of non-zero codes per held-out cell."""
    dead: float
    """Share of the features that fire on none of the training cells."""
    seconds: float
    epochs: int
    train_cells: int
    held_out_cells: int
    train_images: int
    held_out_images: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _lr(step: int, steps: int, recipe: Recipe) -> float:
    warm = max(1, round(recipe.warmup * steps))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _fast_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 products are faster than float32 ones here: a CUDA device, or a CPU with AVX-512 BF16
    or AMX (elsewhere they are emulated, and slower)."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _sparse_rows(indices: torch.Tensor, weights: torch.Tensor, features: int) -> torch.Tensor:
    """F x B CSR matrix holding weights[i, j] at (indices[i, j], i): a batch's k choices per row as a matrix."""
    rows, k = indices.shape
    flat = indices.reshape(-1)
    order = flat.argsort(stable=True)
    crow = torch.zeros(features + 1, dtype=torch.long, device=indices.device)
    crow[1:] = torch.bincount(flat, minlength=features).cumsum(0)
    columns = torch.arange(rows, device=indices.device).repeat_interleave(k)
    with warnings.catch_warnings():  # "CSR support is in beta": the product used here is long established
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, columns[order], weights.reshape(-1)[order], (features, rows))


class _ChosenPreActivations(torch.autograd.Function):
    """The pre-activations (x - b_dec) W_enc^T + b_enc at each row's chosen features (B x k), computed already,
    passed on with their backward written sparse: W_enc's gradient a CSR matrix times the centred rows, b_enc's
    a sum per feature, the rows' an embedding bag, in place of autograd's dense B x F gradient and its product."""

    @staticmethod
    def forward(ctx, values, centred, W_enc, b_enc, indices):  # noqa: ARG004 (b_enc: for its gradient)
        ctx.save_for_backward(centred, W_enc, indices)
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        centred, W_enc, indices = ctx.saved_tensors
        features = W_enc.shape[0]
        grad_W_enc = _sparse_rows(indices, grad, features) @ centred
        grad_b_enc = torch.zeros(features, device=grad.device).index_add_(0, indices.reshape(-1), grad.reshape(-1))
        grad_centred = torch.nn.functional.embedding_bag(indices, W_enc, per_sample_weights=grad, mode="sum")
        return None, grad_centred, grad_W_enc, grad_b_enc, None


class _Trainer:
    """The SAE's parameters, Adam's moments and how long since each feature fired; what a checkpoint holds."""

    def __init__(self, rows: torch.Tensor, features: int, recipe: Recipe):
        generator = torch.Generator().manual_seed(recipe.seed)
        channels = rows.shape[1]
        picked = torch.randint(len(rows), (features,), generator=generator).to(rows.device)
        noise = torch.randn(features, channels, generator=generator).to(rows.device)
        W_dec = rows[picked] - rows.mean(0) + 0.1 * noise * rows.std(0)
        W_dec /= W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.params = {
            "W_enc": W_dec.clone(),
            "b_enc": torch.zeros(features, device=rows.device),
            "W_dec": W_dec,
            "b_dec": rows.mean(0),
        }
        for p in self.params.values():
            p.requires_grad_(True)
        fused = rows.device.type in ("cpu", "cuda")
        self.step_device = rows.device if fused else torch.device("cpu")
        betas = (0.9, recipe.beta2)
        self.optimiser = torch.optim.Adam(self.params.values(), lr=recipe.lr, betas=betas, fused=fused or None)
        self.since_fired = torch.zeros(features, dtype=torch.long, device=rows.device)
        self.choose_in = torch.bfloat16 if _fast_bfloat16(rows.device) else torch.float32
        self.step = 0
        self.epoch = 0

    def sae(self, k: int) -> SparseAutoencoder:
        return SparseAutoencoder(**{n: p.detach() for n, p in self.params.items()}, k=k)

    def state(self) -> dict[str, torch.Tensor]:
        tensors = {n: p.detach() for n, p in self.params.items()}
        for n, p in self.params.items():
            moments = self.optimiser.state.get(p, {})
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in moments:
                    tensors[f"{moment}.{n}"] = moments[moment]
        tensors["since_fired"] = self.since_fired
        return {n: t.detach().cpu().contiguous() for n, t in tensors.items()}

    def load(self, tensors: dict[str, torch.Tensor], step: int, epoch: int) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[n])
        for n, p in self.params.items():
            if f"exp_avg.{n}" in tensors:
                device = p.device
                self.optimiser.state[p] = {
                    "step": torch.tensor(float(step), dtype=torch.float32, device=self.step_device),
                    "exp_avg": tensors[f"exp_avg.{n}"].to(device),
                    "exp_avg_sq": tensors[f"exp_avg_sq.{n}"].to(device),
                }
        self.since_fired = tensors["since_fired"].to(self.since_fired.device)
        self.step, self.epoch = step, epoch

    def loss(self, x: torch.Tensor, recipe: Recipe, variance: float, dead_after: int) -> torch.Tensor:
        """The batch's reconstruction loss (over the cells' variance) plus AuxK's, ready for its backward; counts
        which features fired."""
        p = self.params
        centred = x - p["b_dec"]
        with torch.no_grad():
            kind = self.choose_in
            pre = torch.addmm(p["b_enc"].to(kind), centred.to(kind), p["W_enc"].to(kind).t())
            top = pre.topk(recipe.k, dim=1, sorted=False)
        chosen = _ChosenPreActivations.apply(top.values.float(), centred, p["W_enc"], p["b_enc"], top.indices)
        values = chosen.clamp_min(0)
        decoded = torch.nn.functional.embedding_bag(top.indices, p["W_dec"], per_sample_weights=values, mode="sum")
        error = x - (decoded + p["b_dec"])
        loss = error.square().sum(1).mean() / variance
        with torch.no_grad():
            fired = torch.zeros_like(self.since_fired, dtype=torch.bool)
            fired[top.indices[values > 0]] = True
            self.since_fired += len(x)
            self.since_fired[fired] = 0
            dead = (self.since_fired > dead_after).nonzero().squeeze(1)
        if len(dead):
            with torch.no_grad():
                aux_top = pre[:, dead].topk(min(recipe.k_aux, len(dead)), dim=1, sorted=False)
                aux_indices = dead[aux_top.indices]
            aux_chosen = _ChosenPreActivations.apply(
                aux_top.values.float(), centred, p["W_enc"], p["b_enc"], aux_indices
            )
            aux = torch.nn.functional.embedding_bag(
                aux_indices, p["W_dec"], per_sample_weights=aux_chosen.clamp_min(0), mode="sum"
            )
            residual = error.detach()
            aux_loss = (residual - aux).square().sum(1).mean() / residual.square().sum(1).mean().clamp_min(1e-12)
            loss = loss + AUX_COEFFICIENT * torch.nan_to_num(aux_loss, nan=0.0)
        return loss

    def train_step(self, x: torch.Tensor, recipe: Recipe, variance: float, dead_after: int, lr: float) -> float:
        """One Adam step on a batch of rows."""
        p = self.params
        loss = self.loss(x, recipe, variance, dead_after)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            w, g = p["W_dec"], p["W_dec"].grad
            g.addcmul_(w, torch.linalg.vecdot(g, w).unsqueeze(1), value=-1)  # one pass, no F x C temporary
            for group in self.optimiser.param_groups:
                group["lr"] = lr
            self.optimiser.step()
            w.div_(torch.linalg.vector_norm(w, dim=1, keepdim=True).clamp_min_(1e-12))
        self.step += 1
        return float(loss.detach())

    def resample(self, rows: torch.Tensor, k: int, dead_after: int) -> int:
        """Dead features restarted at the directions of rows rebuilt badly (chosen with odds in proportion to the
        squared error), the encoder tied to them, their Adam moments cleared; how many."""
        p = self.params
        with torch.no_grad():
            dead = (self.since_fired > dead_after).nonzero().squeeze(1)
            if not len(dead):
                return 0
            sae = self.sae(k)
            error = rows - sae.decode_sparse(*sae.encode_sparse(rows))
            generator = torch.Generator().manual_seed(self.step)
            odds = error.square().sum(1).cpu().double().clamp_min(1e-30)
            picked = torch.multinomial(odds, len(dead), replacement=len(dead) > len(rows), generator=generator)
            directions = error[picked.to(rows.device)]
            directions /= directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
            p["W_dec"][dead] = directions
            p["W_enc"][dead] = directions * p["W_enc"].norm(dim=1).mean()
            p["b_enc"][dead] = 0
            for name in ("W_enc", "W_dec", "b_enc"):
                moments = self.optimiser.state.get(p[name], {})
                for moment in ("exp_avg", "exp_avg_sq"):
                    if moment in moments:
                        moments[moment][dead] = 0
            self.since_fired[dead] = 0
        return len(dead)


def _measure(sae: SparseAutoencoder, rows: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Reconstructions of the rows, their mean L0 and how often each feature fired on them."""
    rebuilt, l0, fired = [], 0.0, torch.zeros(sae.features, dtype=torch.long, device=rows.device)
    with torch.no_grad():
        for start in range(0, len(rows), chunk):
            values, indices = sae.encode_sparse(rows[start : start + chunk])
            rebuilt.append(sae.decode_sparse(values, indices))
            active = values > 0
            l0 += float(active.sum())
            fired.index_add_(0, indices[active], torch.ones_like(indices[active]))
    return torch.cat(rebuilt), l0 / max(1, len(rows)), fired


def _run_key(engine: Engine, layer: LayerInfo, listing: FolderListing, recipe: Recipe) -> str:
    identity = _identity(engine, weights_fingerprint(engine.model), layer)
    return _hash({**identity, "signature": listing.signature, "recipe": recipe.__dict__, "version": VERSION})


def default_output(engine: Engine, layer: LayerInfo, listing: FolderListing, recipe: Recipe) -> Path:
    """Beside the atlas: the cache's atlas folder, `features/`, one file per model, layer, folder and recipe."""
    name = f"{engine.name}-{layer.path}-{recipe.width}x-k{recipe.k}-{_run_key(engine, layer, listing, recipe)[:10]}"
    return atlas_dir() / "features" / f"{name}.safetensors"


def checkpoint_of(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint")


def train_features(
    engine: Engine,
    folder: str | Path,
    layer: str | None,
    recipe: Recipe,
    *,
    out: str | Path | None = None,
    workers: int = 0,
    reader: Reader | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> tuple[SparseAutoencoder, Path]:
    """A TopK SAE of the layer learnt on the folder's cells, saved (at `out`, else beside the atlas), with its
    figures on held-out photos in its metadata. `progress` hears the reading and every epoch (with the
    explained variance so far and the time left) and cancels by answering False; a cancelled or interrupted
    run leaves a checkpoint that the same call resumes from."""
    info = engine.layer(layer)
    check_recipe(recipe, info)
    reading = {"workers": workers, "reader": reader, "progress": progress, "use_cache": use_cache}
    cells = folder_cells(engine, folder, info, **reading)
    listing = cells.listing
    out = Path(out) if out is not None else default_output(engine, info, listing, recipe)
    key = _run_key(engine, info, listing, recipe)
    train_mask, held_mask = cells.split(recipe.seed)
    held_photos = np.unique(cells.items[held_mask])
    views = [cells.rows[train_mask]]
    for view in _more_views(listing, recipe):
        viewed = folder_cells(engine, folder, info, view=view, **reading)
        views.append(viewed.rows[~np.isin(viewed.items, held_photos)])
    device = engine.device
    train = torch.from_numpy(np.concatenate(views) if len(views) > 1 else views[0]).to(device)
    del views
    held = torch.from_numpy(cells.rows[held_mask]).to(device)
    variance = float((train - train.mean(0)).square().sum(1).mean())
    features = recipe.width * info.channels
    torch.manual_seed(recipe.seed)
    trainer = _Trainer(train, features, recipe)
    checkpoint = checkpoint_of(out)
    seconds = _resume(trainer, checkpoint, key)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    steps = steps_per_epoch * recipe.epochs
    dead_after = max(1, round(recipe.dead_after * len(train)))
    resample_at = {round(share * steps) for share in RESAMPLE_AT}
    generator = torch.Generator().manual_seed(recipe.seed + 1)
    for _ in range(trainer.epoch):  # the same batches as an uninterrupted run
        torch.randperm(len(train), generator=generator)
    started, saved = time.perf_counter() - seconds, time.perf_counter()
    what = f"learning {features} features of {info.name} (k {recipe.k})"
    report(progress, what, trainer.epoch, recipe.epochs)
    try:
        while trainer.epoch < recipe.epochs:
            order = torch.randperm(len(train), generator=generator).to(device)
            for start in range(0, len(train), recipe.batch_size):
                batch = train[order[start : start + recipe.batch_size]]
                if trainer.step in resample_at:
                    chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(trainer.step))
                    trainer.resample(train[chosen[:RESAMPLE_ROWS].to(device)], recipe.k, dead_after)
                trainer.train_step(batch, recipe, variance, dead_after, _lr(trainer.step, steps, recipe))
            trainer.epoch += 1
            elapsed = time.perf_counter() - started
            left = elapsed / trainer.epoch * (recipe.epochs - trainer.epoch)
            if time.perf_counter() - saved > CHECKPOINT_SECONDS and trainer.epoch < recipe.epochs:
                _save_checkpoint(trainer, checkpoint, key, elapsed)
                saved = time.perf_counter()
            said = f"{what}: epoch {trainer.epoch}/{recipe.epochs}, {_eta(left)} left"
            report(progress, said, trainer.epoch, recipe.epochs)
    except (Cancelled, KeyboardInterrupt):
        _save_checkpoint(trainer, checkpoint, key, time.perf_counter() - started)
        raise
    seconds = time.perf_counter() - started
    sae = trainer.sae(recipe.k)
    rebuilt, l0, _ = _measure(sae, held)
    _, _, fired = _measure(sae, train)
    figures = Figures(
        explained_variance(held, rebuilt),
        l0,
        float((fired == 0).float().mean()),
        seconds,
        recipe.epochs,
        len(train),
        len(held),
        len(np.unique(cells.items[train_mask])),
        len(np.unique(cells.items[held_mask])),
    )
    sae.meta = {
        "model": engine.name,
        "weights": engine.weights.source,
        "layer": info.path,
        "layer_name": info.name,
        "folder": str(listing.folder.resolve()),
        "figures": json.dumps(figures.as_dict()),
        "recipe": json.dumps(recipe.__dict__),
        "held_out": json.dumps(cells.held_out_names(recipe.seed)),
    }
    sae.save(out)
    checkpoint.unlink(missing_ok=True)
    return sae, out


def _eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _save_checkpoint(trainer: _Trainer, file: Path, key: str, seconds: float) -> None:
    from safetensors.torch import save_file

    meta = {"key": key, "step": str(trainer.step), "epoch": str(trainer.epoch), "seconds": f"{seconds:.3f}"}
    partial = file.with_name(file.name + ".writing")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        save_file(trainer.state(), str(partial), metadata=meta)
        partial.replace(file)
    except OSError:  # a checkpoint that cannot be written costs a resumed run time, nothing else
        partial.unlink(missing_ok=True)


def _resume(trainer: _Trainer, file: Path, key: str) -> float:
    """Loads the checkpoint of this very run (model, layer, folder, recipe) if there is one; its seconds so far."""
    from safetensors import safe_open

    if not file.is_file():
        return 0.0
    try:
        with safe_open(str(file), framework="pt", device="cpu") as opened:
            meta = opened.metadata() or {}
            if meta.get("key") != key:
                return 0.0
            tensors = {name: opened.get_tensor(name) for name in opened.keys()}  # noqa: SIM118
        trainer.load(tensors, int(meta["step"]), int(meta["epoch"]))
        return float(meta["seconds"])
    except Exception:  # a damaged checkpoint: start again
        return 0.0
