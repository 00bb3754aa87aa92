"""Edits of a layer's activation inside the forward pass: units switched off, set to their mean or scaled,
and directions taken out of every cell (a concept, a learnt feature).

An edit acts on the layer's output read as maps (N x C x H x W, or N x F for a vector layer) and, for a
transformer's token layer, on its prefix tokens too (N x P x D: a channel is one of the D features of every
token). It is applied by a forward hook on the layer's module, so that everything after the layer sees the
edited network; the layer's own capture (its grid) keeps the activation as measured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..errors import OptionError

MODES = ("zero", "mean", "scale")
"""What an edited unit becomes: 0, its mean (over a mined folder, else over the frames seen), or itself times
a factor."""


@dataclass(frozen=True)
class UnitEdit:
    """Channels of one layer set to zero, to their means, or scaled by a factor: on every cell (and every
    prefix token), or on a rectangle of the map's cells."""

    layer: str
    """The layer's module path."""
    channels: tuple[int, ...]
    mode: str = "zero"
    factor: float = 0.0
    """The scale of mode `scale` (0.5 halves the units, 2 doubles them)."""
    cells: tuple[int, int, int, int] | None = None
    """(top, left, bottom, right), rows top..bottom-1 and columns left..right-1 of the map; None: every cell."""
    means: tuple[float, ...] | None = None
    """Each channel's mean, in the order of `channels` (mode `mean`: over a mined folder); None: each channel's
    mean over the frames the edit has seen, this one included."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise OptionError(f"unknown edit mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not self.channels or min(self.channels) < 0:
            raise OptionError("an edit needs one or more channels, each a whole number from 0")
        if self.mode == "mean" and self.means is not None and len(self.means) != len(self.channels):
            raise OptionError(f"{len(self.means)} means given for {len(self.channels)} channels")

    @property
    def needs_seen_means(self) -> bool:
        return self.mode == "mean" and self.means is None

    def check(self, channels: int, map_hw: tuple[int, int] | None) -> None:
        """Raises `OptionError` where the edit does not fit a layer of `channels` channels (and maps)."""
        if max(self.channels) >= channels:
            raise OptionError(f"channel {max(self.channels)} is out of range: {self.layer} has 0..{channels - 1}")
        if self.cells is not None:
            top, left, bottom, right = self.cells
            if map_hw is None:
                raise OptionError(f"{self.layer} has no maps: edit whole channels, not cells")
            if not (0 <= top < bottom <= map_hw[0] and 0 <= left < right <= map_hw[1]):
                raise OptionError(
                    f"cells {self.cells} are not a rectangle of {self.layer}'s {map_hw[0]} x {map_hw[1]} map"
                )

    def apply(
        self, maps: torch.Tensor, prefix: torch.Tensor | None, seen: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`seen`: the layer's channel means over the frames seen (C), for mode `mean` without means of its own."""
        index = torch.as_tensor(self.channels, device=maps.device)
        maps = maps.clone()
        if self.cells is None:
            region = (slice(None), index)
        else:
            top, left, bottom, right = self.cells
            region = (slice(None), index, slice(top, bottom), slice(left, right))
        means = None
        if self.mode == "mean":
            means = seen[index] if self.means is None else torch.as_tensor(self.means, device=maps.device)
        maps[region] = self._new(maps[region], means, maps.dim() - 2 if self.cells is None else 2)
        if prefix is not None and self.cells is None:
            prefix = prefix.clone()
            prefix[..., index] = self._new(prefix[..., index], means, 0, channels_last=True)
        return maps, prefix

    def _new(self, values: torch.Tensor, means, trailing: int, channels_last: bool = False):
        """The edited values of the channels picked (their axis second, with `trailing` axes after it; last where
        `channels_last`)."""
        if self.mode == "zero":
            return torch.zeros_like(values)
        if self.mode == "scale":
            return values * self.factor
        means = means.to(dtype=values.dtype)
        shape = (-1,) if channels_last else (-1, *([1] * trailing))
        return means.reshape(shape).expand_as(values)

    def describe(self) -> str:
        what = {"zero": "off", "mean": "at their means", "scale": f"x {self.factor:g}"}[self.mode]
        where = (
            "" if self.cells is None else f" on cells {self.cells[0]}:{self.cells[2]}, {self.cells[1]}:{self.cells[3]}"
        )
        return f"{self.layer}: {format_channels(self.channels)} {what}{where}"


Edit = UnitEdit
"""What edits a layer: a `UnitEdit` here, a concept taken out (`models.concepts.edit.ConceptEdit`), or any object
with `layer`, `needs_seen_means`, `check(channels, map_hw)`, `apply(maps, prefix, seen)` and `describe()`."""


def parse_channels(text: str) -> tuple[int, ...]:
    """'3,17,40-63' -> (3, 17, 40, 41, ..., 63)."""
    found: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise OptionError(f"{text!r} is not a list of channels (for example 3,17,40-63)")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise OptionError(f"{part.strip()!r}: a range counts up (40-63)")
        found.extend(range(first, last + 1))
    return tuple(dict.fromkeys(found))


def format_channels(channels: Sequence[int]) -> str:
    """(3, 17, 40, 41, ..., 63) -> '3, 17, 40-63'."""
    ordered, parts = sorted(set(channels)), []
    start = previous = None
    for channel in [*ordered, None]:
        if channel is not None and previous is not None and channel == previous + 1:
            previous = channel
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = channel
    return ", ".join(parts)


def by_layer(edits: Iterable[Edit]) -> dict[str, list[Edit]]:
    found: dict[str, list[Edit]] = {}
    for edit in edits:
        found.setdefault(edit.layer, []).append(edit)
    return found
