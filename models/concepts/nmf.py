"""A layer's maps as a few non-negative parts: NMF by multiplicative updates, on numpy or torch arrays.

A layer's output (C x h x w) is made non-negative as Deep Feature Factorization does (each channel's minimum
over the map subtracted), flattened to V (C x N, N = h * w) and factorised as V ~ W @ H with W (C x K) and H
(K x N) non-negative: column k of W says which channels make concept k, row k of H where it is on the map.
The updates are Lee and Seung's for the Frobenius norm; they use only the operators numpy and torch share,
so the same code runs on the host (numpy, fastest for a small map on the CPU) and on the model's device
(torch). A cold start uses NNDSVDa (Boutsidis and Gallopoulos 2008), as scikit-learn's NMF does by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from livevis.state import check_option
from livevis.views.concepts import CONCEPT_COUNTS

from ..errors import OptionError
from ..progress import Progress, report

MIN_CONCEPTS = CONCEPT_COUNTS[0]
MAX_CONCEPTS = CONCEPT_COUNTS[-1]
EPSILON = 1e-10
"""Keeps the updates' denominators off zero."""
COLD_ITERATIONS = 400
"""The most iterations of a factorisation from scratch; it stops earlier once the error settles."""
TOLERANCE = 1e-5
"""A factorisation has converged when ten iterations lower its relative error by less than this."""
PROJECTION_ITERATIONS = 30
"""Updates of H alone, W fixed, after the least-squares start: known concepts placed on a new map."""


def check_concept_count(k: int) -> int:
    try:
        check_option("concept_count", k)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    return k


def _is_torch(a) -> bool:
    return isinstance(a, torch.Tensor)


def row_max(a):
    """The largest value of each row."""
    return a.amax(1) if _is_torch(a) else a.max(1)


def top_indices(a, n: int):
    """Each row's n largest entries' columns, largest first (K x n)."""
    n = min(n, a.shape[1])
    return a.topk(n, dim=1).indices if _is_torch(a) else np.argsort(-a, axis=1, kind="stable")[:, :n]


def to_numpy(a) -> np.ndarray:
    return a.detach().float().cpu().numpy() if _is_torch(a) else np.asarray(a, dtype=np.float32)


def like(array: np.ndarray, reference):
    """A host array as the kind (and on the device) of `reference`."""
    if _is_torch(reference):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(reference.device)
    return np.ascontiguousarray(array, dtype=np.float32)


def min_shifted(activation) -> tuple:
    """(C, h, w) -> V (C, N) with each channel's minimum over the map subtracted, and those minima (C,)."""
    maps = activation.reshape(activation.shape[0], -1)
    maps = maps.float() if _is_torch(maps) else maps.astype(np.float32, copy=False)
    offset = maps.amin(1) if _is_torch(maps) else maps.min(1)
    return maps - offset.reshape(-1, 1), offset


def relative_error(V, W, H) -> float:
    """||V - W H|| / ||V|| (Frobenius)."""
    residual = V - W @ H
    norm = float((V * V).sum()) ** 0.5
    return float((residual * residual).sum()) ** 0.5 / max(norm, EPSILON)


def _error_from_products(v_norm2: float, WtV, WtW, H) -> float:
    """||V - W H||^2 from the products the updates already made: ||V||^2 - 2 <W^T V, H> + <W^T W, H H^T>."""
    return max(v_norm2 - 2.0 * float((WtV * H).sum()) + float((WtW * (H @ H.T)).sum()), 0.0)


def multiplicative_updates(
    V,
    W,
    H,
    iterations: int,
    *,
    tolerance: float | None = None,
    fixed_w: bool = False,
    products: tuple | None = None,
    progress: Progress | None = None,
):
    """Lee and Seung's updates of ||V - W H||^2: H, then W (not when `fixed_w`), `iterations` times; with a
    `tolerance`, stopping once ten iterations lower the relative error by less than it. `products`: W^T V and
    W^T W where the caller has them; `progress` hears every tenth iteration. Returns (W, H, done)."""
    v_norm2 = float((V * V).sum()) if tolerance is not None else 0.0
    last = None
    WtV, WtW = products if products is not None else (W.T @ V, W.T @ W)
    current = True  # WtV and WtW are those of this W
    done = 0
    for done in range(1, iterations + 1):
        if not current:
            WtV, WtW, current = W.T @ V, W.T @ W, True
        H = H * WtV / (WtW @ H + EPSILON)
        if not fixed_w:
            W = W * (V @ H.T) / (W @ (H @ H.T) + EPSILON)
            current = False
        if progress is not None and done % 10 == 0:
            report(progress, "factorising", done, iterations)
        if tolerance is not None and done % 10 == 0:
            if not current:
                WtV, WtW, current = W.T @ V, W.T @ W, True
            error = _error_from_products(v_norm2, WtV, WtW, H) ** 0.5 / max(v_norm2**0.5, EPSILON)
            if last is not None and last - error < tolerance:
                break
            last = error
    return W, H, done


def nndsvda(V: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The NNDSVD start (the k leading singular pairs, each split into its positive or negative part),
    zeros filled with the mean of V so that multiplicative updates can move them (the `a` variant)."""
    U, S, Vt = np.linalg.svd(V.astype(np.float64), full_matrices=False)
    W = np.zeros((V.shape[0], k))
    H = np.zeros((k, V.shape[1]))
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, min(k, len(S))):
        x, y = U[:, j], Vt[j]
        xp, yp, xn, yn = np.maximum(x, 0), np.maximum(y, 0), np.maximum(-x, 0), np.maximum(-y, 0)
        positive = np.linalg.norm(xp) * np.linalg.norm(yp)
        negative = np.linalg.norm(xn) * np.linalg.norm(yn)
        u, v, sigma = (xp, yp, positive) if positive > negative else (xn, yn, negative)
        scale = np.sqrt(S[j] * sigma)
        W[:, j] = scale * u / max(np.linalg.norm(u), EPSILON)
        H[j] = scale * v / max(np.linalg.norm(v), EPSILON)
    mean = V.mean()
    W[W < 1e-6] = mean
    H[H < 1e-6] = mean
    return W.astype(np.float32), H.astype(np.float32)


def _clipped_solution(gram, rhs):
    """X solving (gram + a little) X = rhs (gram K x K), clipped to a small positive floor, which
    multiplicative updates can move (a zero they never could)."""
    k = gram.shape[0]
    ridge = 1e-6 * float(gram.trace()) / k + EPSILON
    if _is_torch(gram):
        X = torch.linalg.solve(gram + ridge * torch.eye(k, device=gram.device, dtype=gram.dtype), rhs)
    else:
        X = np.linalg.inv(gram + ridge * np.eye(k, dtype=gram.dtype)) @ rhs  # K x K: inv is the cheapest
    return X.clip(min=1e-3 * float(abs(X).mean()) + EPSILON)


def least_squares_start(V, W) -> tuple:
    """H, the least-squares placement of V on the channel vectors W (clipped), and the products (W^T V,
    W^T W) it took."""
    WtV, WtW = W.T @ V, W.T @ W
    return _clipped_solution(WtW, WtV), (WtV, WtW)


def least_squares_channels(V, H):
    """W (C x K), the channel vectors that best rebuild V from the placement H (clipped): a fresh estimate
    from this map, so that a channel a concept lacked so far can join it (multiplicative updates alone keep
    what was near zero near zero, and drift into a poorer factorisation as the scene changes)."""
    return _clipped_solution(H @ H.T, H @ V.T).T


def project(V, W, iterations: int = PROJECTION_ITERATIONS):
    """H (K x N) >= 0 that best rebuilds V from the fixed concepts W: non-negative least squares, from the
    least-squares start refined by updates of H alone; within a per cent or so of an exact solver's H after
    the default iterations."""
    H, products = least_squares_start(V, W)
    return multiplicative_updates(V, W, H, iterations, fixed_w=True, products=products)[1]


@dataclass(frozen=True)
class Factors:
    """V ~ channels.T @ maps, each concept's map peaking at 1 (so a channel vector is what the layer adds at a
    cell where that concept alone is fully on)."""

    channels: object
    """K x C, non-negative (numpy or torch, as the maps were)."""
    maps: object
    """K x N, non-negative, each row's maximum 1 (0 for a concept absent from the map)."""
    iterations: int = 0


def normalised(W, H, peak=None) -> Factors:
    """(W C x K, H K x N) rescaled so that each row of H peaks at 1 (`peak`: its rows' maxima, where known);
    the product is unchanged."""
    peak = row_max(H) if peak is None else peak
    peak = peak.clip(min=EPSILON) if _is_torch(peak) else np.maximum(peak, EPSILON)
    return Factors((W * peak.reshape(1, -1)).T, H / peak.reshape(-1, 1))


def factorise(
    V,
    k: int,
    *,
    iterations: int = COLD_ITERATIONS,
    tolerance: float | None = TOLERANCE,
    progress: Progress | None = None,
) -> Factors:
    """V (C x N, non-negative) in k concepts from scratch (NNDSVDa, then updates until the error settles).
    `progress` hears every tenth update (and cancels by answering False): a folder's cells take seconds."""
    check_concept_count(k)
    W0, H0 = nndsvda(to_numpy(V), k)
    W, H, done = multiplicative_updates(V, like(W0, V), like(H0, V), iterations, tolerance=tolerance, progress=progress)
    factors = normalised(W, H)
    return Factors(factors.channels, factors.maps, done)
