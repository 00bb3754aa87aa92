"""The producers of a transformer's views (declared in `livevis.views.transformers`): attention at the selected
block (every head as a grid, one on the frame) or rolled out up to it, the norm of every token with the
high-norm outliers marked, and the prefix tokens.

A convolutional network gets none of them (they draw nothing), so a window or a command can ask for them
whatever the model.
"""

from __future__ import annotations

import numpy as np
import torch

from livevis.geometry import GridLayout, grid_layout
from livevis.views.transformers import MEAN_OF_HEADS

from ..errors import OptionError
from ..producer import Producer, RenderContext
from ..render.base import SEPARATOR
from .attention import (
    attention_matrix,
    attention_modules,
    attention_unavailable,
    query_attention,
    rollout,
    rollout_unavailable,
)

ATTENTION_COLORMAP = "inferno"
PREFIX_CELL = 4
"""Pixels a side of one channel's cell in a prefix token's grid."""
OUTLIER_RATIO = 2.0
"""A token whose norm is above this many times the median patch token's is marked as a high-norm outlier
(Darcet et al. 2024 see such tokens at several times the typical norm in large ViTs)."""


def _attention_module(ctx: RenderContext, block_path: str) -> str | None:
    found = attention_modules(ctx.engine.model, block_path)
    return found[0] if len(found) == 1 else None


def _query(block_shape: tuple[int, ...], query: tuple[int, int] | None) -> tuple[int, int] | None:
    """The query cell where it lies on the block's grid (a layer of another grid falls back to the class
    token)."""
    if query is None or not (query[0] < block_shape[1] and query[1] < block_shape[2]):
        return None
    return query


class _Attention:
    """What the attention grid and overlay share for one frame: the maps to draw, computed once."""

    def __init__(self, ctx: RenderContext):
        engine, options, result = ctx.engine, ctx.options, ctx.result
        self.block = engine.block_of(ctx.layer)
        self.note = ""
        self.maps = None
        if self.block is None:
            self.note = "no transformer block at or before this layer"
            return
        grid, prefix = self.block.shape[1:], self.block.prefix_tokens
        self.query = _query(self.block.shape, options["attention_query"])
        blocks = engine.blocks[: engine.blocks.index(self.block) + 1]
        module = _attention_module(ctx, self.block.path)
        self.mode = options["attention"]
        if self.mode == "rollout":
            refused = rollout_unavailable(engine.model, [_attention_module(ctx, block.path) for block in blocks])
            if refused:
                self.mode, self.note = "heads", refused
        if self.mode == "heads":
            unavailable = attention_unavailable(engine.model.get_submodule(module))
            if unavailable:
                self.note = unavailable
                return
            found = query_attention(
                engine.model, module, result.module_inputs[module], grid=grid, prefix=prefix, query=self.query
            )
            self.maps, self.prefix, self.window = found.patch, found.prefix, found.window
            self.query = None if found.query is None else self.query  # class attention answers from the class token
            self.note = "; ".join(note for note in (self.note, found.note) if note)
            head = options["attention_head"]
            self.selected = self.maps.mean(0) if head == MEAN_OF_HEADS or head >= len(self.maps) else self.maps[head]
            self.titles = [f"head {i}" for i in range(len(self.maps))]
        else:
            matrices = [
                attention_matrix(engine.model, path, result.module_inputs[path])
                for path in (_attention_module(ctx, block.path) for block in blocks)
            ]
            row = 0 if self.query is None else prefix + self.query[0] * grid[1] + self.query[1]
            rolled = [step[row] for step in rollout(matrices)]
            self.maps = torch.stack([r[prefix:].reshape(grid) for r in rolled])
            self.prefix = torch.stack([r[:prefix] for r in rolled])
            self.window = None
            self.selected = self.maps[-1]
            self.titles = [f"up to {block.name}" for block in blocks]

    def query_cell(self) -> int | None:
        return None if self.query is None else self.query[0] * self.maps.shape[2] + self.query[1]


def _attention_inputs(engine, layer, options) -> set[str]:
    if options["attention"] == "off" or not engine.blocks:
        return set()
    block = engine.block_of(layer)
    if block is None:
        return set()
    blocks = engine.blocks[: engine.blocks.index(block) + 1] if options["attention"] == "rollout" else [block]
    found = [attention_modules(engine.model, b.path) for b in blocks]
    return {paths[0] for paths in found if len(paths) == 1}


class AttentionProducer(Producer):
    """Every head's attention from the query token at the selected block, one tile per head on the grid's
    layout (or, in rollout, the rollout up to each block so far), each tile on its own scale; and the selected
    head's attention (or the mean of the heads, or the rollout) on the frame at the crop the network saw, the
    query cell ringed."""

    def check(self, engine, layer, options):
        query, block = options["attention_query"], engine.block_of(layer) or layer
        if query is not None and not (block.is_spatial and query[0] < block.shape[1] and query[1] < block.shape[2]):
            grid = " x ".join(map(str, block.shape[1:]))
            raise OptionError(f"--query {query[0]},{query[1]} is outside {block.name}'s {grid} patch grid")

    def inputs(self, engine, layer, options):
        return _attention_inputs(engine, layer, options)

    def render(self, ctx):
        if ctx.options["attention"] == "off" or not ctx.engine.blocks:
            return {}
        found = _Attention(ctx)
        if found.maps is None:
            return {"attention_note": found.note}
        r = ctx.renderer
        heads, h, w = found.maps.shape
        maps = r.asarray(found.maps.reshape(heads, h * w).contiguous())
        low, high, _ = r.channel_stats(maps)
        levels = r.levels(maps, low * 0, high, ATTENTION_COLORMAP, per_channel=True)  # from 0: no weight is black
        layout = grid_layout(heads, h, w, 1.0, max(1, 64 // max(h, w)))
        out = {
            "attention": r.grid_image(levels, (h, w), layout, ATTENTION_COLORMAP),
            "attention_overlay": self._overlay(ctx, found),
            "attention_layout": layout,
            "attention_titles": found.titles,
            "attention_block": found.block.path,
            "attention_mode": found.mode,
            "attention_query_cell": found.query,
            "attention_window": found.window,
            "attention_note": found.note,
            "attention_prefix_weight": r.asarray(found.prefix.sum(-1).contiguous()) if found.prefix.numel() else None,
        }
        if ctx.with_arrays:
            kind = "rollout" if found.mode == "rollout" else "attention"
            out[f"{kind}_maps"] = found.maps.float()
            out[f"{kind}_prefix"] = found.prefix.float()
        return out

    @staticmethod
    def _overlay(ctx: RenderContext, found: _Attention):
        r = ctx.renderer
        h, w = found.selected.shape
        selected = r.asarray(found.selected.reshape(1, h * w).contiguous())
        low, high, _ = r.channel_stats(selected)
        levels = r.levels(selected, low * 0, high, ATTENTION_COLORMAP, per_channel=True).reshape(h, w)  # from 0
        shown, crop = ctx.shown_frame
        return r.render_overlay(
            shown, levels, crop, ATTENTION_COLORMAP, opacity=ctx.options.opacity, peak_index=found.query_cell()
        )

    def summary(self, values):
        note = values.get("attention_note") or None
        if "attention_block" not in values:
            return {"attention": None, "attention_note": note}
        shown = {
            "block": values["attention_block"],
            "mode": values["attention_mode"],
            "query": values["attention_query_cell"],
            "heads": values["attention_layout"].channels,
        }
        return {"attention": shown, "attention_note": note}

    def report(self, values, engine):
        """Why there is no map, or what stands for one (a note such as XCiT's channel attention)."""
        return [f"attention: {values['attention_note']}"] if values.get("attention_note") else []


class TokenNormsProducer(Producer):
    """The L2 norm of every token of the selected layer, on the frame, with the high-norm outliers ringed
    ("Vision Transformers Need Registers", Darcet et al. 2024); the prefix tokens' norms apart."""

    def render(self, ctx):
        if ctx.layer.layout is None or not ctx.layer.is_spatial:
            return {}
        r = ctx.renderer
        activation = ctx.result.activations[ctx.layer.path].float()
        _, h, w = activation.shape
        norms = torch.linalg.vector_norm(activation, dim=0)
        median = norms.median()
        outliers = torch.nonzero(norms.flatten() > OUTLIER_RATIO * median).flatten()
        flat = r.asarray(norms.reshape(1, h * w).contiguous())
        low, high, _ = r.channel_stats(flat)
        levels = r.levels(flat, low, high, ATTENTION_COLORMAP, per_channel=True).reshape(h, w)
        shown, crop = ctx.shown_frame
        image = r.render_overlay(shown, levels, crop, ATTENTION_COLORMAP, opacity=ctx.options.opacity)
        image = r.mark_cells(image, outliers.tolist(), (h, w), crop)
        prefix = ctx.result.prefix_tokens.get(ctx.layer.path)
        return {
            "token_norms": image,
            "token_norm_map": r.asarray(norms.contiguous()),
            "token_norm_median": float(median),
            "token_outliers": [divmod(int(i), w) for i in outliers.tolist()],
            "prefix_norms": None if prefix is None else r.asarray(torch.linalg.vector_norm(prefix.float(), dim=-1)),
        }

    def summary(self, values):
        return {"token_outliers": values.get("token_outliers")}


class PrefixTokensProducer(Producer):
    """The prefix tokens (class, distillation, registers) of the selected layer, each as a small grid of its
    channels on the layer grid's rows and columns, one cell per channel, on the layer's own colour scale:
    channel c's value in the class token sits where channel c's map sits in the grid."""

    def render(self, ctx):
        prefix = ctx.result.prefix_tokens.get(ctx.layer.path)
        if prefix is None or not len(prefix):
            return {}
        r, o = ctx.renderer, ctx.options
        low, high, _ = ctx.stats
        layout = ctx.grid_layout  # the grid's own
        count, channels = prefix.shape
        # channels x tokens, held to each channel's range in the maps so that it takes the grid's colours
        values = prefix.float().t().contiguous().clamp(torch.as_tensor(low)[:, None], torch.as_tensor(high)[:, None])
        levels = r.levels(r.asarray(values), low, high, o.colormap, per_channel=o.norm == "channel", boost=o.boost)
        cells = GridLayout(channels, layout.rows, layout.cols, 1, 1, scale=PREFIX_CELL)
        tokens = [
            r.colorize(r.enlarge(_cells(levels[:, i], cells, r), PREFIX_CELL), o.colormap, o.gamma)
            for i in range(count)
        ]
        names = ctx.engine.tokens.prefix[:count] if ctx.engine.tokens is not None else []
        return {"prefix_tokens": _side_by_side(tokens, r), "prefix_names": names, "prefix_layout": cells}


def _cells(levels, layout: GridLayout, renderer):
    """A token's C channel levels on the grid's rows and columns, one cell each, no separators (the cells
    past the last channel take the separator grey)."""
    padded = renderer.full((layout.rows * layout.cols,), SEPARATOR, like=levels)
    padded[: layout.channels] = levels
    return padded.reshape(layout.rows, layout.cols)


def _side_by_side(images: list, renderer) -> object:
    """Images of one height next to each other with a 6 px gap of the separator grey."""
    gap = renderer.full((images[0].shape[0], 6), 48, like=images[0])
    parts = []
    for image in images:
        parts += [image, _grey(gap, image)]
    stacked = parts[:-1]
    return np.concatenate(stacked, axis=1) if isinstance(images[0], np.ndarray) else torch.cat(stacked, dim=1)


def _grey(gap, like):
    """The gap in colour, like `like` (H x W x 3)."""
    if isinstance(like, np.ndarray):
        return np.repeat(gap[..., None], 3, axis=2)
    return gap[..., None].expand(-1, -1, 3)
