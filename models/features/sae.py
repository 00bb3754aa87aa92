"""A TopK sparse autoencoder of one layer (Gao et al. 2024), its file, and the edit it makes in the forward.

Codes z = TopK_k(ReLU((x - b_dec) W_enc^T + b_enc)), reconstruction x^ = z W_dec + b_dec, on the layer's raw
activation at each cell (a channel vector of C values). The few lines are written here in torch rather than taken
from Overcomplete (TopK, BatchTopK and Archetypal SAEs on PyPI): it needs Python < 3.13 and pulls scikit-image,
einops, matplotlib and timm for what is a matrix product, a top-k and a sum of k decoder rows.

The file is safetensors (no code runs as it loads): W_enc (F x C), b_enc (F), W_dec (F x C), b_dec (C), float32,
and string metadata: `k`, `model`, `weights`, `layer`, `folder` and `figures` (JSON: explained variance, L0,
dead share, seconds, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..cache import read_per_version
from ..errors import InputError, OptionError, OutputError

TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")
FORMAT = "livevis-topk-sae"
"""The metadata's `format`: what wrote the file."""
MAX_FEATURES = 1 << 20
SPARSE_ROWS = 0.65
"""On a CPU, rows with more than this share of zeros (a ReLU's output) are multiplied as sparse: the product then
costs in proportion to the non-zeros, about 2.4 times the dense product's cost per multiply here."""
SPARSE_BLOCK = 256
"""Features per block of the sparse product: a block of W_enc^T (C x 256) stays in a core's cache over all the rows."""


@dataclass
class SparseAutoencoder:
    """F features of a C-channel layer: a TopK SAE's tensors (float32, on one device) and what it was learnt on."""

    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    k: int
    meta: dict[str, str] = field(default_factory=dict)
    """model, weights, layer (module path), folder, and `figures` as JSON."""
    _encoder_blocks: tuple[list[torch.Tensor], torch.Tensor] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """W_enc^T in blocks of features and b_enc - W_enc b_dec, for the sparse product, made at its first use: an SAE's
    tensors do not change once it is encoding (training wraps its parameters in a new one each time it measures)."""

    @property
    def features(self) -> int:
        return self.W_enc.shape[0]

    @property
    def channels(self) -> int:
        return self.W_enc.shape[1]

    @property
    def layer(self) -> str:
        return self.meta.get("layer", "")

    @property
    def figures(self) -> dict:
        try:
            found = json.loads(self.meta.get("figures", "{}"))
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def to(self, device: torch.device | str) -> SparseAutoencoder:
        if self.W_enc.device == torch.device(device):
            return self
        moved = {name: getattr(self, name).to(device) for name in TENSORS}
        return SparseAutoencoder(**moved, k=self.k, meta=dict(self.meta))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """N x F: (x - b_dec) W_enc^T + b_enc, for N x C rows. Rows that need a gradient take the dense product:
        the sparse one has none for the zeros."""
        needs_gradient = torch.is_grad_enabled() and x.requires_grad
        if x.device.type == "cpu" and not needs_gradient and float((x == 0).sum()) > SPARSE_ROWS * x.numel() > 0:
            return self._sparse_pre_activations(x)
        return torch.addmm(self.b_enc, x - self.b_dec, self.W_enc.t())

    def _sparse_pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """The same as x W_enc^T + (b_enc - W_enc b_dec), each row's non-zero channels picking rows of W_enc^T
        (an embedding bag per block of features): a ReLU's output at a CNN's middle layer is three-quarters
        zeros, and then this takes half the dense product's time on a CPU. Equal to it up to float32 rounding."""
        if self._encoder_blocks is None:
            transposed = self.W_enc.t()
            blocks = [transposed[:, s : s + SPARSE_BLOCK].contiguous() for s in range(0, self.features, SPARSE_BLOCK)]
            self._encoder_blocks = blocks, self.b_enc - self.W_enc @ self.b_dec
        blocks, bias = self._encoder_blocks
        non_zero = x != 0
        channels = non_zero.nonzero()[:, 1]
        offsets = torch.zeros(len(x), dtype=torch.long)
        offsets[1:] = non_zero.sum(1).cumsum(0)[:-1]
        weights = x[non_zero].to(bias.dtype)
        bag = torch.nn.functional.embedding_bag
        products = [bag(channels, block, offsets, per_sample_weights=weights, mode="sum") for block in blocks]
        return torch.cat(products, 1).add_(bias)

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The k codes of each of N rows (N x C): their values (N x k, >= 0) and features (N x k)."""
        top = self.pre_activations(x.float()).topk(self.k, dim=1, sorted=False)
        return top.values.clamp_min(0), top.indices

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """N x F codes: the top k of ReLU((x - b_dec) W_enc^T + b_enc) kept, the rest 0."""
        values, indices = self.encode_sparse(x)
        return torch.zeros((x.shape[0], self.features), device=x.device).scatter_(1, indices, values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """N x C: z W_dec + b_dec."""
        return torch.addmm(self.b_dec, z, self.W_dec)

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """N x C from each row's k codes: sum_j values_j W_dec[indices_j] + b_dec, without the dense N x F."""
        summed = torch.nn.functional.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum")
        return summed + self.b_dec

    def maps(self, activation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A (C, h, w) map's codes (F, h, w) and reconstruction (C, h, w)."""
        c, h, w = activation.shape
        rows = activation.reshape(c, h * w).t().float()
        z = self.encode(rows)
        return z.t().reshape(-1, h, w), self.decode(z).t().reshape(c, h, w)

    def save(self, file: str | Path) -> Path:
        """Written to a temporary file and renamed, so that a reader never sees half a file."""
        from safetensors.torch import save_file

        path = Path(file)
        tensors = {name: getattr(self, name).detach().float().cpu().contiguous() for name in TENSORS}
        meta = {**{k: str(v) for k, v in self.meta.items()}, "k": str(self.k), "format": FORMAT}
        partial = path.with_name(path.name + ".writing")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(tensors, str(partial), metadata=meta)
            partial.replace(path)
        except OSError as exc:
            raise OutputError(f"could not write {path}: {exc.strerror or exc}") from None
        return path


def explained_variance(x: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """1 - sum |x - x^|^2 / sum |x - mean|^2 over N x C rows, the mean per channel over those rows."""
    x, reconstruction = x.double(), reconstruction.double()
    total = (x - x.mean(0, keepdim=True)).square().sum()
    return float(1.0 - (x - reconstruction).square().sum() / total.clamp_min(1e-30))


def read_features(file: str | Path) -> SparseAutoencoder:
    """The SAE in a features file; `InputError` (one line) for a file that is not one, damaged or hostile:
    safetensors reads only tensors and strings, and every shape, type and number is checked."""
    from safetensors import safe_open

    path = Path(file)
    if not path.is_file():
        raise InputError(f"{path}: no such features file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as opened:
            meta = dict(opened.metadata() or {})
            names = set(opened.keys())
            missing = [name for name in TENSORS if name not in names]
            if missing:
                raise InputError(f"{path} is not a features file: it has no {', '.join(missing)}")
            tensors = {name: opened.get_tensor(name) for name in TENSORS}
    except InputError:
        raise
    except Exception as exc:  # safetensors' own errors, a truncated or garbled header, an unreadable file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a readable features file (safetensors): {reason}") from None
    return _checked(path, tensors, meta)


def _checked(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> SparseAutoencoder:
    W_enc, b_enc, W_dec, b_dec = (tensors[name] for name in TENSORS)
    if any(t.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64) for t in tensors.values()):
        raise InputError(f"{path}: the features' tensors must be floating point")
    fits = W_enc.dim() == 2 and W_dec.shape == W_enc.shape
    if not fits or b_enc.shape != W_enc.shape[:1] or b_dec.shape != W_enc.shape[1:]:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise InputError(f"{path}: its shapes make no SAE (W_enc F x C, b_enc F, W_dec F x C, b_dec C): {shapes}")
    features, channels = W_enc.shape
    if not 1 <= features <= MAX_FEATURES or channels < 1:
        raise InputError(f"{path}: {features} features of {channels} channels is not an SAE livevis reads")
    try:
        k = int(meta.get("k", ""))
    except ValueError:
        raise InputError(f"{path}: its metadata has no whole number k (the codes kept per cell)") from None
    if not 1 <= k <= features:
        raise InputError(f"{path}: k = {k} is not between 1 and its {features} features")
    tensors = {name: t.float().contiguous() for name, t in tensors.items()}
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise InputError(f"{path}: the features' tensors hold NaN or infinite values")
    return SparseAutoencoder(**tensors, k=k, meta=meta)


features_at = read_per_version(read_features)
"""The SAE of a file, read once per version of it (every frame encodes with it)."""


def check_fits(sae: SparseAutoencoder, layer, file: str | Path = "") -> None:
    """`OptionError` where the SAE was not learnt on this layer (another module, another channel count)."""
    name = Path(file).name if file else "these features"
    if sae.layer and sae.layer != layer.path:
        raise OptionError(f"{name} were learnt at {sae.layer}: select that layer (not {layer.path})")
    if layer.channels != sae.channels:
        raise OptionError(f"{name} have {sae.channels} channels; {layer.name} has {layer.channels}")


@dataclass(frozen=True)
class FeatureEdit:
    """Features of a layer's SAE switched off or scaled at every cell, the SAE's error kept:
    x' = x + sum_j (s_j - 1) z_j W_dec[j], so that no edit (every s_j = 1) leaves x exactly as it was."""

    layer: str
    file: str
    """The features file (read once per version)."""
    features: tuple[int, ...]
    scale: float = 0.0
    """s_j of every feature named: 0 switches it off, 2 doubles it."""

    needs_seen_means = False

    def sae(self) -> SparseAutoencoder:
        return features_at(self.file)

    def check(self, channels: int, map_hw: tuple[int, int] | None) -> None:
        sae = self.sae()
        if sae.channels != channels:
            raise OptionError(f"{Path(self.file).name} has {sae.channels} channels; {self.layer} has {channels}")
        if not self.features or not all(0 <= j < sae.features for j in self.features):
            raise OptionError(f"features {self.features} are not among the {sae.features} of {Path(self.file).name}")

    def change(self, rows: torch.Tensor) -> torch.Tensor:
        """N x C: what the edit adds to N x C rows, sum_j (s_j - 1) z_j W_dec[j] over the features named."""
        sae = self.sae().to(rows.device)
        values, indices = sae.encode_sparse(rows.float())
        named = torch.zeros(sae.features, dtype=torch.bool, device=rows.device)
        named[list(self.features)] = True
        weights = values * named[indices] * (self.scale - 1.0)
        return torch.nn.functional.embedding_bag(indices, sae.W_dec, per_sample_weights=weights, mode="sum")

    def apply(
        self, maps: torch.Tensor, prefix: torch.Tensor | None, seen: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        n, c = maps.shape[:2]
        rows = maps.reshape(n, c, -1).transpose(1, 2).reshape(-1, c)
        changed = (rows.float() + self.change(rows)).to(maps.dtype)
        maps = changed.reshape(n, -1, c).transpose(1, 2).reshape(maps.shape)
        if prefix is not None:
            flat = prefix.reshape(-1, c)
            prefix = (flat.float() + self.change(flat)).to(prefix.dtype).reshape(prefix.shape)
        return maps, prefix

    def describe(self) -> str:
        from ..interventions.edits import format_channels

        what = "off" if self.scale == 0 else f"x {self.scale:g}"
        return f"{self.layer}: features {format_channels(self.features)} {what}"
