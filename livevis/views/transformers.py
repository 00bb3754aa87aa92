"""A vision transformer's views: attention at the selected block (every head, one on the frame) or rolled out
up to it, the norm of every token with its high-norm outliers, and the prefix tokens. A convolutional
network gets none of them: they draw nothing there."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

ATTENTION_MODES = ("off", "heads", "rollout")
"""Nothing, every head's attention at the selected block, or the attention rolled out from the first block up
to it (Abnar & Zuidema 2020)."""
MEAN_OF_HEADS = -1
"""`attention_head` for the mean of the heads."""


def _head(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= MEAN_OF_HEADS


def _cell_or_none(value) -> bool:
    return value is None or (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )


def parse_cell(text: str) -> tuple[int, int]:
    """'ROW,COL' as a grid cell."""
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a grid cell ROW,COL (for example 3,7)") from None
    if row < 0 or col < 0:
        raise ValueError(f"{text!r}: a cell's row and column count from 0")
    return row, col


ATTENTION = ViewSpec(
    name="attention",
    producer="livevis.models.transformers.views:AttentionProducer",
    title="Attention",
    pane="livevis.app.panes.attention:AttentionPane",
    pictures=("attention", "attention_overlay"),
    recorded=("attention_overlay",),
    arrays=(
        ("attention_maps", "attention"),
        ("attention_prefix", "attention_prefix"),
        ("rollout_maps", "attention_rollout"),
        ("rollout_prefix", "attention_rollout_prefix"),
    ),
    options=(
        Option(
            "attention",
            "heads",
            choices=ATTENTION_MODES,
            what="attention mode",
            flag="--attention",
            help="heads (every head at the layer's block), rollout (up to it) or off",
            key="A",
            title="Attention mode",
            key_help="a transformer's attention pane: off, every head at the block, or the rollout up to it",
        ),
        Option(
            "attention_head",
            MEAN_OF_HEADS,
            check=_head,
            expects=f"a head's number from 0, or {MEAN_OF_HEADS} for the mean of the heads",
            parse=int,
            flag="--head",
            help="the head drawn on the frame (default: the mean of the heads)",
        ),
        Option(
            "attention_query",
            None,
            check=_cell_or_none,
            expects="a (row, column) cell of the patch grid, or none for the class token",
            parse=parse_cell,
            flag="--query",
            help="ask attention from this patch-grid cell ROW,COL (default: the class token)",
        ),
    ),
    rendered=True,
    place=Place(beside="backprop", side="tab", presented=True, transformers_only=True),
    description="attention.png (every head) and attention_overlay.png (one head, or the rollout, on the frame)",
)
TOKEN_NORMS = ViewSpec(
    name="token_norms",
    producer="livevis.models.transformers.views:TokenNormsProducer",
    title="Token norms",
    pane="livevis.app.panes.token_norms:TokenNormsPane",
    pictures=("token_norms",),
    recorded=("token_norms",),
    rendered=True,
    place=Place(beside="attention", side="tab", transformers_only=True),
    description="token_norms.png: every token's norm on the frame, high-norm outliers ringed",
)
PREFIX_TOKENS = ViewSpec(
    name="prefix_tokens",
    producer="livevis.models.transformers.views:PrefixTokensProducer",
    title="Prefix tokens",
    pane="livevis.app.panes.prefix_tokens:PrefixTokensPane",
    pictures=("prefix_tokens",),
    rendered=True,
    place=Place(beside="grid", side="below", share=0.18, transformers_only=True),
    description="prefix_tokens.png: the class, distillation and register tokens, laid out as the grid",
)
VIEWS = (ATTENTION, TOKEN_NORMS, PREFIX_TOKENS)
