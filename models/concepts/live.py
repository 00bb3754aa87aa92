"""Concepts that stay put while the frames go by: each frame's factorisation starts from the last one's, and
each concept keeps its colour.

The last frame's channel vectors W are the start: the new map is first placed on them (H by least squares,
so a concept that moved is found where it now is), the channel vectors are estimated afresh from that
placement (W by least squares: one alternating step, which keeps the factorisation from drifting into a
poorer one as the scene changes), then both factors take a few multiplicative updates. The
concepts are then matched to the last frame's by the cosine of their channel vectors (the Hungarian
assignment, scipy's `linear_sum_assignment`), so that a concept that swapped places with another, or one
found again after a restart, keeps its colour. A frame drawn again (frozen, a still image) is factorised
once. Fixed concepts (fitted on a folder, `ConceptSet`) are only placed on each frame, never changed.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .nmf import (
    EPSILON,
    MAX_CONCEPTS,
    Factors,
    check_concept_count,
    factorise,
    least_squares_channels,
    least_squares_start,
    multiplicative_updates,
    normalised,
    row_max,
    to_numpy,
)

if TYPE_CHECKING:
    from .dataset import ConceptSet

WARM_ITERATIONS = 5
"""Joint updates per frame after the warm start: enough to follow a moving scene, cheap enough for every frame."""


def colour_order(previous: np.ndarray | None, current: np.ndarray) -> np.ndarray:
    """For each concept of `current` (K x C channel vectors), the index of the concept of `previous` (K' x C) it
    continues, by the Hungarian assignment on the cosine of their vectors; -1 where there is none (K > K')."""
    from scipy.optimize import linear_sum_assignment  # imported on first use: the live view starts without it

    k = current.shape[0]
    found = np.full(k, -1, np.int64)
    if previous is None or previous.size == 0:
        return found
    unit = current / np.maximum(np.linalg.norm(current, axis=1, keepdims=True), EPSILON)
    before = previous / np.maximum(np.linalg.norm(previous, axis=1, keepdims=True), EPSILON)
    rows, columns = linear_sum_assignment(-(unit @ before.T))
    found[rows] = columns
    return found


@dataclass(frozen=True)
class FrameConcepts:
    """One frame's concepts: the factors, each concept's colour (an index into the palette) and what it took."""

    factors: Factors
    colours: np.ndarray
    """(K,) int: the palette entry of each concept, kept from frame to frame."""
    milliseconds: float
    """The factorisation alone (placement, updates and matching)."""
    cold: bool
    """Factorised from scratch (a new layer or number of concepts, or a concept lost)."""


class ConceptTracker:
    """Factorises each frame of one stream, warm-started from the frame before; one per pipeline."""

    def __init__(self):
        self._stream: tuple | None = None
        self._frame_ref = None
        self._last: FrameConcepts | None = None

    def update(
        self, V, k: int, layer: str, frame=None, *, warm: bool = True, fixed: ConceptSet | None = None
    ) -> FrameConcepts:
        """V (C x N, non-negative) of this frame of `layer` in k concepts, or placed on `fixed` ones. `frame`: the
        forward result the map came from; the same one again returns the same concepts without work.
        `warm=False` factorises from scratch to convergence (the colours still follow the last frame's)."""
        stream = (layer, k if fixed is None else fixed.k, None if fixed is None else str(fixed.file))
        last = self._last
        if frame is not None and last is not None and self._stream == stream and self._frame_ref is not None:
            if self._frame_ref() is frame:
                return last
        start = time.perf_counter()
        if fixed is not None:
            factors, colours, cold = fixed.place(V), np.arange(fixed.k), False
        else:
            check_concept_count(k)
            same_layer = (
                last is not None
                and self._stream[0] == layer
                and type(last.factors.channels) is type(V)
                and last.factors.channels.shape[1] == V.shape[0]
            )
            cold = not (warm and same_layer and self._stream[1:] == (k, None))
            factors = None if cold else self._warm(V, last.factors)
            if factors is None:
                cold, factors = True, factorise(V, k)
            previous = to_numpy(last.factors.channels) if same_layer else None
            order = colour_order(previous, to_numpy(factors.channels))
            colours = self._colours(order, last.colours if same_layer else None, k)
        self._last = FrameConcepts(factors, colours, (time.perf_counter() - start) * 1000.0, cold)
        self._stream = stream
        self._frame_ref = weakref.ref(frame) if frame is not None else None
        return self._last

    @staticmethod
    def _warm(V, previous: Factors) -> Factors | None:
        """Placed on the last frame's channel vectors, then updated together; None when a concept died out
        (multiplicative updates can never bring it back: start again)."""
        W = previous.channels.T
        H, _ = least_squares_start(V, W)  # placed on the last frame's concepts
        W = least_squares_channels(V, H)  # the concepts re-estimated from this frame (one alternating step)
        W, H, done = multiplicative_updates(V, W, H, WARM_ITERATIONS)
        peak = row_max(H)
        if float(peak.min()) <= EPSILON or float(W.sum(0).min()) <= EPSILON:
            return None
        factors = normalised(W, H, peak)
        return Factors(factors.channels, factors.maps, done)

    @staticmethod
    def _colours(order: np.ndarray, before: np.ndarray | None, k: int) -> np.ndarray:
        """Each concept takes the colour of the concept it continues; the others the first colours unused."""
        colours = np.full(k, -1, np.int64)
        if before is not None:
            continued = order >= 0
            colours[continued] = before[order[continued]]
        taken = set(colours.tolist())
        free = iter(c for c in range(MAX_CONCEPTS) if c not in taken)
        for i in range(k):
            if colours[i] < 0:
                colours[i] = next(free)
        return colours
