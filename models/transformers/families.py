"""Which attention an attention module computes, and what of it livevis can show.

Attention modules are known by their class, not by their look: timm alone has a dozen classes called
`Attention` (ViT's, BEiT's with a relative position bias, LeViT's with a bias over its grid, ...), and
computing one with another's formula would draw a map that lies. A module that looks like attention (an
`...Attention`/`...Attn` class with heads) but is none of the known ones gets a one-line note instead.

What each family shows:
- ViT, DeiT, DINOv2 (with registers), EVA / EVA-02 (rotary embeddings), torchvision's ViT: the softmax of
  every head from any token, and rollout.
- BEiT: the same, its relative position bias (per block or shared) included.
- CaiT's self-attention blocks (talking heads): each head's softmax, after the heads were mixed before it
  (`proj_l`); the heads are mixed again after it (`proj_w`), so there is no rollout.
- Class attention (CaiT's and XCiT's last blocks): the class token's softmax only; no rollout.
- LeViT: the softmax with its attention biases, over its shrinking grids (no class token); rollout within
  the first stage only.
- Swin (timm's, torchvision's V1 and V2): the softmax within the query's (shifted) window; no rollout.
- XCiT's cross-covariance attention: none (it attends across channels, not tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

WINDOWS_NO_ROLLOUT = "rollout needs attention over every token; this model attends in windows"


@dataclass(frozen=True)
class AttentionFamily:
    """What livevis knows of one attention class."""

    formula: str
    """Which formula `attention` computes its scores with again: timm, beit, talking_heads, levit, mha, class,
    swin or swin_torchvision; none where it computes none."""
    kind: str
    """`global` (every token asks every token), `window` (within Swin's windows), `class` (the class token asks
    alone) or `none` (no token-to-token attention to show)."""
    unavailable: str = ""
    """Why there is no map (kind `none`)."""
    no_rollout: str = ""
    """Why the rollout through such a block cannot be shown ('' where it can)."""
    caveat: str = ""
    """What to know when looking at its maps."""


_TIMM = AttentionFamily("timm", "global")
_WINDOWS = AttentionFamily("swin", "window", no_rollout=WINDOWS_NO_ROLLOUT)
_TORCHVISION_WINDOWS = AttentionFamily("swin_torchvision", "window", no_rollout=WINDOWS_NO_ROLLOUT)

KNOWN: dict[str, AttentionFamily] = {
    "timm.layers.attention.Attention": _TIMM,  # ViT, DeiT, DINOv2 and their kin
    "timm.models.vision_transformer.Attention": _TIMM,  # the same before timm moved it to its layers
    "timm.layers.attention.AttentionRope": _TIMM,
    "timm.models.eva.EvaAttention": _TIMM,
    "timm.models.beit.Attention": AttentionFamily("beit", "global"),
    "timm.models.cait.TalkingHeadAttn": AttentionFamily(
        "talking_heads",
        "global",
        no_rollout="rollout needs the mixing each block applies; talking heads mix the heads again after the softmax",
        caveat="talking heads: each head's softmax, before proj_w mixes the heads again",
    ),
    "timm.models.cait.ClassAttn": AttentionFamily(
        "class",
        "class",
        no_rollout="rollout needs attention from every token; class attention asks from the class token alone",
    ),
    "timm.models.levit.Attention": AttentionFamily("levit", "global"),
    "timm.models.xcit.XCA": AttentionFamily(
        "none",
        "none",
        unavailable="XCiT attends across channels, not tokens: no attention map to show",
        no_rollout="rollout needs attention between tokens; XCiT's blocks attend across channels",
    ),
    "timm.models.swin_transformer.WindowAttention": _WINDOWS,
    "torchvision.models.swin_transformer.ShiftedWindowAttention": _TORCHVISION_WINDOWS,
    "torchvision.models.swin_transformer.ShiftedWindowAttentionV2": _TORCHVISION_WINDOWS,
}
"""Attention classes by their full name."""

LEVIT_CONVOLUTIONAL = AttentionFamily(
    "none",
    "none",
    unavailable="LeViT's convolutional variant is not computed again here: no attention map to show",
    no_rollout="rollout needs every block's attention; LeViT's convolutional variant is not computed again here",
)

_LOOKS_LIKE_ATTENTION = re.compile(r"Attention|Attn")
_NOT_ATTENTION_ITSELF = re.compile(r"Block|Pool|Layer|Stage")


def attention_family(module: nn.Module) -> AttentionFamily | None:
    """The family of an attention module; None for a module that is no attention."""
    if isinstance(module, nn.MultiheadAttention):
        return AttentionFamily("mha", "global")
    cls = type(module)
    known = KNOWN.get(f"{cls.__module__}.{cls.__qualname__}")
    if known is not None and known.formula == "levit" and module.use_conv:
        return LEVIT_CONVOLUTIONAL
    if known is not None:
        return known
    name = cls.__name__
    if _LOOKS_LIKE_ATTENTION.search(name) and not _NOT_ATTENTION_ITSELF.search(name) and hasattr(module, "num_heads"):
        return AttentionFamily(
            "none",
            "none",
            unavailable=f"livevis does not know how {name} ({cls.__module__}) computes its attention: "
            "no attention map to show",
            no_rollout=f"rollout needs every block's attention; livevis does not know how {name} computes it",
        )
    return None
