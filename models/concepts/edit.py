"""A concept taken out of a layer in the forward pass (an edit, as `models.interventions` applies them): the
concepts view's own placement of each map on the concepts, the chosen ones' part removed, the rest kept."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import OptionError
from ..interventions.edits import format_channels
from .nmf import min_shifted, project


@dataclass(frozen=True)
class ConceptEdit:
    """Concepts taken out of every cell of a layer, the rest kept: each map is placed on the concepts' channel
    vectors as the concepts view places it (its min-shifted maps V ~ W H, H >= 0 by non-negative least
    squares), and the chosen concepts' part W_k H_k is removed (`strength` 0) or scaled (2 doubles it)."""

    layer: str
    concepts: tuple[tuple[float, ...], ...]
    """K x C: every concept's channel vector (non-negative), as the concepts view found them."""
    chosen: tuple[int, ...]
    strength: float = 0.0
    name: str = ""

    needs_seen_means = False

    def check(self, channels: int, map_hw: tuple[int, int] | None) -> None:
        if map_hw is None:
            raise OptionError(f"{self.layer} has no maps: concepts are parts of a layer's maps")
        if any(len(vector) != channels for vector in self.concepts):
            raise OptionError(f"the concepts have another length than {self.layer}'s {channels} channels")
        if not self.chosen or not all(0 <= k < len(self.concepts) for k in self.chosen):
            raise OptionError(f"concepts {self.chosen} are not among the {len(self.concepts)} given")

    def parts(self, maps: torch.Tensor) -> torch.Tensor:
        """N x C x H x W: the chosen concepts' part of each map."""
        W = torch.as_tensor(self.concepts, dtype=torch.float32, device=maps.device).t()  # C x K
        chosen = torch.as_tensor(self.chosen, device=maps.device)
        found = []
        for activation in maps.float():
            V, _offset = min_shifted(activation)
            H = project(V, W)
            found.append((W[:, chosen] @ H[chosen]).reshape(activation.shape))
        return torch.stack(found).to(maps.dtype)

    def apply(
        self, maps: torch.Tensor, prefix: torch.Tensor | None, seen: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return maps + (self.strength - 1.0) * self.parts(maps), prefix

    def describe(self) -> str:
        what = "off" if self.strength == 0 else f"x {self.strength:g}"
        return f"{self.layer}: {self.name or 'concepts ' + format_channels(self.chosen)} {what}"
