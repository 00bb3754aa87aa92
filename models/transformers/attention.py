"""Attention of the blocks in view, computed again from their own queries and keys.

timm's attention runs fused (`scaled_dot_product_attention`), which never forms the attention matrix, and
switching that off would slow every block of every forward. Instead a forward pre-hook on the attention
modules in view keeps their input (`AttentionInputs`), and the softmax is computed again from it, with each
family's own formula (`families`), for those blocks only, and for the query rows asked for only: the class
token's row costs a few thousandths of a forward.

Computed here: timm's `Attention` (ViT, DeiT, DINOv2 with or without registers, and the like), `EvaAttention`
and `AttentionRope` (rotary position embeddings), BEiT's (relative position bias), CaiT's talking heads and
class attention (also XCiT's), LeViT's (attention biases), torch's `nn.MultiheadAttention` (torchvision's
ViT), and window attention: timm's Swin `WindowAttention` and torchvision's `ShiftedWindowAttention` (V1 and
V2), where a query sees the tokens of its own (shifted) window only. What cannot be shown says why
(`attention_unavailable`, `rollout_unavailable`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .families import attention_family

SWIN_MASK = -100.0
"""What Swin adds to the scores of tokens a shifted window joined from elsewhere (both timm and torchvision)."""


def attention_kind(module: nn.Module) -> str | None:
    """`global` (every token sees every token), `window` (Swin), `class` (only the class token asks), `none`
    (attention with no token-to-token map: `attention_unavailable` says why) or None for a module that is no
    attention."""
    family = attention_family(module)
    return None if family is None else family.kind


def attention_unavailable(module: nn.Module) -> str:
    """Why the attention of `module` has no map to show; '' where it has one."""
    family = attention_family(module)
    return "" if family is None else family.unavailable


def rollout_unavailable(model: nn.Module, paths: list[str]) -> str:
    """Why the attention of the modules `paths` (every block up to the one in view, in order) cannot be rolled
    out; '' where it can."""
    grids = set()
    for path in paths:
        module = model.get_submodule(path)
        family = attention_family(module)
        if family is None:
            return f"rollout needs every block's attention; {path} has none livevis knows"
        if family.no_rollout:
            return family.no_rollout
        if family.formula == "levit":
            grids.add(tuple(module.resolution))
    if len(grids) > 1:
        return "rollout needs one token grid; LeViT's grid shrinks from stage to stage (roll out within the first)"
    return ""


def attention_modules(model: nn.Module, block_path: str) -> list[str]:
    """The attention modules inside a block (or the block itself), in definition order."""
    block = model.get_submodule(block_path)
    prefix = f"{block_path}." if block_path else ""
    return [
        prefix + name if name else block_path
        for name, module in block.named_modules()
        if attention_kind(module) is not None
    ]


class AttentionInputs:
    """Forward pre-hooks on attention modules that keep what each was called with, on the thread that made
    them (a model is shared between threads); a context manager, `release()` removes them."""

    def __init__(self, model: nn.Module, paths):
        self.inputs: dict[str, tuple[tuple, dict]] = {}
        owner = threading.get_ident()
        self._handles = []
        for path in paths:

            def keep(_module, args, kwargs, path=path):
                if threading.get_ident() == owner:
                    detach = lambda v: v.detach() if isinstance(v, torch.Tensor) else v  # noqa: E731
                    self.inputs[path] = (tuple(detach(a) for a in args), {k: detach(v) for k, v in kwargs.items()})

            handle = model.get_submodule(path).register_forward_pre_hook(keep, with_kwargs=True)
            self._handles.append(handle)

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> AttentionInputs:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ---------------------------------------------------------------------------------------------------------------------
# Queries and keys


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """B x N x (H d) -> B x H x N x d."""
    b, n, _ = x.shape
    return x.reshape(b, n, heads, -1).transpose(1, 2)


def _projection(module: nn.Module, part: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of the query (0) or key (1) projection of a timm attention module (EVA's key has no
    bias; its query bias is a parameter of its own)."""
    if getattr(module, "qkv", None) is None:
        linear = module.q_proj if part == 0 else module.k_proj
        return linear.weight, linear.bias
    size = module.qkv.weight.shape[0] // 3
    weight = module.qkv.weight[part * size : (part + 1) * size]
    if getattr(module, "q_bias", None) is not None:
        return weight, module.q_bias if part == 0 else module.k_bias
    bias = module.qkv.bias
    return weight, None if bias is None else bias[part * size : (part + 1) * size]


def _timm_queries_keys(
    module: nn.Module, x: torch.Tensor, rope: torch.Tensor | None, rows: slice | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (scaled, of the query rows only) and k, B x H x N x d, as timm's Attention, EvaAttention,
    AttentionRope and BEiT's Attention make them."""
    heads = module.num_heads
    queries = x if rows is None or rope is not None else x[:, rows]  # rotary embeddings need every position
    q = _heads(F.linear(queries, *_projection(module, 0)), heads)
    k = _heads(F.linear(x, *_projection(module, 1)), getattr(module, "num_kv_heads", heads))
    if k.shape[1] != heads:  # grouped-query attention: each key head serves several query heads
        k = k.repeat_interleave(heads // k.shape[1], dim=1)
    if getattr(module, "q_norm", None) is not None:  # BEiT has no query and key norms
        q, k = module.q_norm(q), module.k_norm(k)
    if rope is not None:
        from timm.layers import apply_rot_embed_cat

        npt, half = module.num_prefix_tokens, getattr(module, "rotate_half", False)
        q = torch.cat([q[:, :, :npt], apply_rot_embed_cat(q[:, :, npt:], rope, half=half)], dim=2)
        k = torch.cat([k[:, :, :npt], apply_rot_embed_cat(k[:, :, npt:], rope, half=half)], dim=2)
        q = q if rows is None else q[:, :, rows]
    return q * module.scale, k


def _beit_position_bias(module: nn.Module, kwargs: dict) -> torch.Tensor | None:
    """BEiT's relative position bias, 1 x H x N x N (class token included): the block's own, the one shared
    by every block, or their sum; None where it has neither."""
    bias = None
    table = module.relative_position_bias_table
    if table is not None:
        tokens = module.relative_position_index.shape[0]
        bias = table[module.relative_position_index.reshape(-1)].reshape(tokens, tokens, -1).permute(2, 0, 1)[None]
    shared = kwargs.get("shared_rel_pos_bias")
    if shared is not None:
        bias = shared if bias is None else bias + shared
    return bias


def _talking_heads_scores(module: nn.Module, x: torch.Tensor, rows: slice | None) -> torch.Tensor:
    """CaiT's self-attention: the heads' scores mixed by `proj_l` before the softmax, B x H x R x N."""
    q = _heads(F.linear(x if rows is None else x[:, rows], *_projection(module, 0)), module.num_heads)
    k = _heads(F.linear(x, *_projection(module, 1)), module.num_heads)
    scores = (q * module.scale) @ k.transpose(-2, -1)
    return F.linear(scores.permute(0, 2, 3, 1), module.proj_l.weight, module.proj_l.bias).permute(0, 3, 1, 2)


def _levit_scores(module: nn.Module, x: torch.Tensor, rows: slice | None) -> torch.Tensor:
    """LeViT's attention (tokens, not its convolutional variant): per head q, k and v lie side by side in one
    projection with a batch norm (its own `qkv`), plus a learnt bias for each offset on its grid."""
    b, n, _ = x.shape
    q, k, _v = (
        module.qkv(x).view(b, n, module.num_heads, -1).split([module.key_dim, module.key_dim, module.val_dim], dim=3)
    )
    q, k = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3)
    bias = module.attention_biases[:, module.attention_bias_idxs]
    if rows is not None:
        q, bias = q[:, :, rows], bias[:, rows]
    return (q @ k.transpose(-2, -1)) * module.scale + bias


def _class_scores(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class attention (CaiT, XCiT): the class token's query against every token's key, B x H x 1 x N."""
    heads = module.num_heads
    q = _heads(F.linear(x[:, :1], module.q.weight, module.q.bias), heads)
    k = _heads(F.linear(x, module.k.weight, module.k.bias), heads)
    return (q * module.scale) @ k.transpose(-2, -1)


def _mha_queries_keys(
    module: nn.MultiheadAttention, args: tuple, kwargs: dict, rows: slice | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (scaled, of the query rows only) and k, B x H x N x d, as torch's MultiheadAttention makes them."""
    query = args[0] if args else kwargs["query"]
    key = args[1] if len(args) > 1 else kwargs.get("key", query)
    if not module.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    e = module.embed_dim
    if module.in_proj_weight is not None:
        w_q, w_k = module.in_proj_weight[:e], module.in_proj_weight[e : 2 * e]
    else:
        w_q, w_k = module.q_proj_weight, module.k_proj_weight
    b_q = b_k = None
    if module.in_proj_bias is not None:
        b_q, b_k = module.in_proj_bias[:e], module.in_proj_bias[e : 2 * e]
    heads = module.num_heads
    query = query if rows is None else query[:, rows]
    q, k = _heads(F.linear(query, w_q, b_q), heads), _heads(F.linear(key, w_k, b_k), heads)
    return q * (e // heads) ** -0.5, k


def _global_scores(module: nn.Module, args: tuple, kwargs: dict, rows: slice | None) -> torch.Tensor:
    """Pre-softmax scores B x H x R x N of the query rows `rows` (None: all) against every key."""
    formula = attention_family(module).formula
    if formula == "mha":
        q, k = _mha_queries_keys(module, args, kwargs, rows)
        scores = q @ k.transpose(-2, -1)
    elif formula == "talking_heads":
        return _talking_heads_scores(module, args[0], rows)
    elif formula == "levit":
        return _levit_scores(module, args[0], rows)
    elif formula == "beit":
        q, k = _timm_queries_keys(module, args[0], None, rows)
        scores = q @ k.transpose(-2, -1)
        bias = _beit_position_bias(module, kwargs)
        if bias is not None:
            scores = scores + (bias if rows is None else bias[..., rows, :])
        return scores
    else:
        rope = kwargs.get("rope", args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None)
        q, k = _timm_queries_keys(module, args[0], rope, rows)
        scores = q @ k.transpose(-2, -1)
    mask = kwargs.get("attn_mask")
    if mask is not None:
        if mask.dtype == torch.bool:
            mask = torch.zeros_like(mask, dtype=scores.dtype).masked_fill_(~mask, float("-inf"))
        scores = scores + (mask if rows is None else mask[..., rows, :])
    return scores


# ---------------------------------------------------------------------------------------------------------------------
# Swin's windows


@dataclass(frozen=True)
class WindowGeometry:
    """Where a block's (shifted) windows lie on its H x W grid.

    timm rolls the grid by -shift and then pads it to whole windows; torchvision pads first and then rolls
    (and does not shift where one window covers the grid). Cells are given in the unshifted grid."""

    height: int
    width: int
    window: tuple[int, int]
    shift: tuple[int, int]
    pad_then_roll: bool

    @property
    def padded(self) -> tuple[int, int]:
        wh, ww = self.window
        return math.ceil(self.height / wh) * wh, math.ceil(self.width / ww) * ww

    def _period(self) -> tuple[int, int]:
        """The extent the roll wraps around: the padded grid (torchvision) or the grid (timm)."""
        return self.padded if self.pad_then_roll else (self.height, self.width)

    def shifted(self, row: int, col: int) -> tuple[int, int]:
        ph, pw = self._period()
        return (row - self.shift[0]) % ph, (col - self.shift[1]) % pw

    def unshifted(self, row: int, col: int) -> tuple[int, int] | None:
        """The grid cell a cell of the shifted, padded grid holds; None for padding."""
        ph, pw = self._period()
        if not self.pad_then_roll and (row >= self.height or col >= self.width):
            return None
        row, col = (row + self.shift[0]) % ph, (col + self.shift[1]) % pw
        return (row, col) if row < self.height and col < self.width else None

    def locate(self, row: int, col: int) -> tuple[int, int]:
        """(window index, position in the window) of a grid cell."""
        (wh, ww), (_, pw) = self.window, self.padded
        r, c = self.shifted(row, col)
        return (r // wh) * (pw // ww) + c // ww, (r % wh) * ww + c % ww

    def cells(self, window_index: int) -> list[tuple[int, int] | None]:
        """The grid cell of each position of a window (None: padding)."""
        (wh, ww), (_, pw) = self.window, self.padded
        top, left = (window_index // (pw // ww)) * wh, (window_index % (pw // ww)) * ww
        return [self.unshifted(top + i // ww, left + i % ww) for i in range(wh * ww)]

    def region_labels(self) -> torch.Tensor:
        """Swin's mask regions on the shifted, padded grid: tokens of different labels do not see each other."""
        ph, pw = self.padded
        labels = torch.zeros(ph, pw)
        if any(self.shift):
            (wh, ww), (sh, sw) = self.window, self.shift
            count = 0
            for h in ((0, -wh), (-wh, -sh), (-sh, None)):
                for w in ((0, -ww), (-ww, -sw), (-sw, None)):
                    labels[h[0] : h[1], w[0] : w[1]] = count
                    count += 1
        return labels


def window_geometry(module: nn.Module, block: nn.Module, grid: tuple[int, int]) -> WindowGeometry:
    """The window geometry of a Swin block whose input lies on `grid` (timm's or torchvision's)."""
    height, width = grid
    if type(module).__name__ == "WindowAttention":  # timm: the block holds the window and the shift
        window, shift = tuple(block.window_size), tuple(block.shift_size)
        return WindowGeometry(height, width, window, shift, pad_then_roll=False)
    window, shift = list(module.window_size), list(module.shift_size)
    geometry = WindowGeometry(height, width, tuple(window), (0, 0), pad_then_roll=True)
    ph, pw = geometry.padded
    shift = (0 if window[0] >= ph else shift[0], 0 if window[1] >= pw else shift[1])
    return WindowGeometry(height, width, tuple(window), shift, pad_then_roll=True)


def _window_scores(
    module: nn.Module, args: tuple, kwargs: dict, geometry: WindowGeometry, window_index: int, position: int
) -> torch.Tensor:
    """Pre-softmax scores H x N of one query position of one window against the window's tokens."""
    heads = module.num_heads
    if type(module).__name__ == "WindowAttention":  # timm: called with the windows, B*nW x N x C, and the mask
        tokens = args[0][window_index : window_index + 1]
        qkv = F.linear(tokens, module.qkv.weight, module.qkv.bias)
        q, k, _v = qkv.reshape(1, tokens.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        scores = ((q[0, :, position, None] * module.scale) @ k[0].transpose(-2, -1))[:, 0]
        scores = scores + module._get_rel_pos_bias()[0, :, position]
        mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
        if mask is not None:
            scores = scores + mask[window_index % mask.shape[0], position]
        return scores
    # torchvision: called with the B x H x W x C grid; its function pads, rolls and partitions inside
    x = args[0][:1]
    (wh, ww), (ph, pw) = geometry.window, geometry.padded
    x = F.pad(x, (0, 0, 0, pw - geometry.width, 0, ph - geometry.height))
    if any(geometry.shift):
        x = torch.roll(x, shifts=(-geometry.shift[0], -geometry.shift[1]), dims=(1, 2))
    top, left = (window_index // (pw // ww)) * wh, (window_index % (pw // ww)) * ww
    tokens = x[:, top : top + wh, left : left + ww].reshape(1, wh * ww, -1)
    bias = module.qkv.bias
    logit_scale = getattr(module, "logit_scale", None)
    if logit_scale is not None and bias is not None:  # V2: the key has no bias
        bias = bias.clone()
        bias[bias.numel() // 3 : 2 * bias.numel() // 3] = 0
    qkv = F.linear(tokens, module.qkv.weight, bias)
    q, k, _v = qkv.reshape(1, wh * ww, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = q[0, :, position], k[0]
    if logit_scale is not None:  # V2's cosine attention
        scores = (F.normalize(q, dim=-1)[:, None] @ F.normalize(k, dim=-1).transpose(-2, -1))[:, 0]
        scores = scores * torch.clamp(logit_scale[:, 0, 0], max=math.log(100.0)).exp()[:, None]
    else:
        scores = (q * (q.shape[-1] ** -0.5))[:, None].matmul(k.transpose(-2, -1))[:, 0]
    scores = scores + module.get_relative_position_bias()[0, :, position]
    if any(geometry.shift):
        labels = geometry.region_labels()[top : top + wh, left : left + ww].reshape(-1).to(scores.device)
        scores = scores + torch.where(labels == labels[position], 0.0, SWIN_MASK).to(scores.dtype)
    return scores


# ---------------------------------------------------------------------------------------------------------------------
# What the views show


@dataclass(frozen=True)
class QueryAttention:
    """One block's attention from one query token, per head, laid out like the layer's maps."""

    module: str
    """The attention module's path."""
    patch: torch.Tensor
    """heads x h x w: the softmax weight the query gives each patch token (0 outside a Swin window)."""
    prefix: torch.Tensor
    """heads x P: the weight it gives each prefix token (class, distillation, registers)."""
    query: tuple[int, int] | None
    """The query's grid cell; None for the class token."""
    window: tuple[int, int, int, int] | None = None
    """Swin: the query's window as (top row, left column, rows, columns) of the unshifted grid (it may wrap)."""
    note: str = ""
    """What to know when looking at these maps (talking heads mixed again; a patch query the class token
    answered instead)."""


@torch.no_grad()
def query_attention(
    model: nn.Module,
    path: str,
    inputs: tuple[tuple, dict],
    *,
    grid: tuple[int, int],
    prefix: int,
    query: tuple[int, int] | None,
) -> QueryAttention:
    """The attention of module `path` (called with `inputs`) from the query token: the class token (the first
    prefix token) for `query=None`, else the patch token of grid cell (row, col). A model without prefix
    tokens (Swin) asks from the centre cell when `query` is None; class attention asks from the class token
    whatever `query` is (`note` says so)."""
    module = model.get_submodule(path)
    family = attention_family(module)
    if family is None or family.kind == "none":
        raise ValueError(attention_unavailable(module) or f"{path} is no attention module")
    args, kwargs = inputs
    height, width = grid
    if family.kind == "class":
        note = "class attention asks from the class token alone" if query is not None else ""
        weights = _class_scores(module, args[0])[0, :, 0].float().softmax(-1)
        return QueryAttention(
            path, weights[:, prefix:].reshape(-1, height, width), weights[:, :prefix], None, note=note
        )
    if query is None and prefix == 0:
        query = (height // 2, width // 2)
    if family.kind == "window":
        block = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
        geometry = window_geometry(module, block, grid)
        index, position = geometry.locate(*query)
        weights = _window_scores(module, args, kwargs, geometry, index, position).float().softmax(-1)
        patch = weights.new_zeros(weights.shape[0], height * width)
        cells = geometry.cells(index)
        shown = [i for i, cell in enumerate(cells) if cell is not None]
        flat = torch.tensor([cells[i][0] * width + cells[i][1] for i in shown], device=weights.device)
        patch[:, flat] = weights[:, shown]
        top, left = geometry.unshifted(*_window_origin(geometry, index)) or (0, 0)
        window = (top, left, *geometry.window)
        return QueryAttention(
            path, patch.reshape(-1, height, width), weights.new_zeros(weights.shape[0], 0), query, window
        )
    row = 0 if query is None else prefix + query[0] * width + query[1]
    weights = _global_scores(module, args, kwargs, slice(row, row + 1))[0, :, 0].float().softmax(-1)
    return QueryAttention(
        path, weights[:, prefix:].reshape(-1, height, width), weights[:, :prefix], query, note=family.caveat
    )


def _window_origin(geometry: WindowGeometry, index: int) -> tuple[int, int]:
    (wh, ww), (_, pw) = geometry.window, geometry.padded
    return (index // (pw // ww)) * wh, (index % (pw // ww)) * ww


@torch.no_grad()
def attention_matrix(model: nn.Module, path: str, inputs: tuple[tuple, dict]) -> torch.Tensor:
    """Every head's whole attention matrix, H x T x T (the first sample of a batch): for rollout."""
    module = model.get_submodule(path)
    if attention_kind(module) != "global":
        raise ValueError(rollout_unavailable(model, [path]) or f"{path} has no attention over every token")
    args, kwargs = inputs
    return _global_scores(module, args, kwargs, None)[0].float().softmax(-1)


def rollout(matrices: list[torch.Tensor], residual: float = 0.5) -> list[torch.Tensor]:
    """Attention rollout (Abnar & Zuidema 2020): each layer's attention averaged over heads, the residual
    connection added as `residual` x identity, rows renormalised, multiplied from the first layer up.
    Returns the rollout after each layer (T x T each; row i: how much token i there draws on each input
    token); the last is the rollout of them all."""
    if not matrices:
        raise ValueError("rollout needs the attention of at least one block")
    rolled, result = [], None
    for attention in matrices:
        mean = attention.mean(0)
        mixed = residual * torch.eye(mean.shape[-1], device=mean.device, dtype=mean.dtype) + (1 - residual) * mean
        mixed = mixed / mixed.sum(-1, keepdim=True)
        result = mixed if result is None else mixed @ result
        rolled.append(result)
    return rolled
