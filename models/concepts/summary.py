"""One frame's concepts as plain values for a legend: each concept's colour, how much of the map it takes,
its top channels with their tiles, and its top classes where the layer feeds the classifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..render.base import CONCEPT_PALETTE

TOP_CHANNELS = 4
"""Channels listed (with their tiles) per concept."""


@dataclass(frozen=True)
class Concept:
    index: int
    """Its row in `concept_maps` and `concept_channels`."""
    colour: int
    """Its palette entry: the same from frame to frame (for good, for concepts fitted on a folder)."""
    rgb: tuple[int, int, int]
    share: float
    """The fraction of the map's cells where it is the strongest concept."""
    channels: tuple[tuple[int, float], ...]
    """Its top channels and the part of its channel vector each makes up."""
    tiles: np.ndarray
    """Those channels' maps for this frame (n x h x w x 3 uint8), drawn as the grid draws them."""
    classes: tuple[tuple[str, float], ...] = ()
    """Its channel vector's top classes through the classifier (only where the layer feeds it directly)."""


@dataclass(frozen=True)
class ConceptsSummary:
    concepts: tuple[Concept, ...] = ()
    """In the order of their colours."""
    source: str = ""
    """What the concepts were fitted on: this frame (and the ones before it), or a folder."""
    note: str = ""
    """What the legend tells the concepts by (classes, or why not, and what instead)."""
    milliseconds: float = 0.0
    """The factorisation (or the placement on fixed concepts) alone."""
    error: str = ""
    """Why there are no concepts (a layer without maps, too few cells, concepts of another layer)."""


def summarise(host: Mapping[str, np.ndarray], categories: Sequence[str], source: str, note: str) -> ConceptsSummary:
    """The legend's values from the arrays the concepts view brought back to the host."""
    maps, channels = host["concept_maps"], host["concept_channels"]
    colours, top, tiles = host["concept_colours"], host["concept_top"], host["concept_tiles"]
    k, n = top.shape
    flat = maps.reshape(k, -1)
    dominant = flat.argmax(0)
    classes = host.get("concept_class_index"), host.get("concept_class_probability")
    rows = []
    for i in np.argsort(colours, kind="stable"):
        total = max(float(channels[i].sum()), 1e-12)
        named = ()
        if classes[0] is not None:
            named = tuple((categories[int(c)], float(p)) for c, p in zip(classes[0][i], classes[1][i], strict=True))
        rows.append(
            Concept(
                int(i),
                int(colours[i]),
                tuple(int(v) for v in CONCEPT_PALETTE[colours[i]]),
                float((dominant == i).mean()),
                tuple((int(c), float(channels[i, c]) / total) for c in top[i]),
                tiles[i * n : (i + 1) * n],
                named,
            )
        )
    return ConceptsSummary(tuple(rows), source, note, float(host["concepts_ms"]))
