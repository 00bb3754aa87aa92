"""The producers of the views every network gets (declared in `livevis.views.core`): the frame as shown, the
exact network input, every channel of the layer as a grid, the selected channel on the frame, the top-5."""

from __future__ import annotations

import numpy as np

from .producer import Producer
from .render.base import crop_box, locate_peak


class InputProducer(Producer):
    """The frame shrunk on the device to the size the input pane shows it at (a GUI then blits it)."""

    def render(self, ctx):
        size = ctx.options["frame_display_size"]
        return {} if size is None else {"frame_display": ctx.renderer.fit_within(ctx.frame, *size)}


class SignedInputProducer(Producer):
    """The exact normalised network input, one tile per input channel, in the signed colormap."""

    def render(self, ctx):
        r = ctx.renderer
        return {"input_signed": r.signed_input(r.asarray(ctx.result.input[0]))}


class GridProducer(Producer):
    """Every channel of the layer as a heatmap tile, on the scale the options ask for."""

    def render(self, ctx):
        r, o = ctx.renderer, ctx.options
        (maps, tile), (low, high, mean) = ctx.maps, ctx.stats
        levels = r.levels(maps, low, high, o.colormap, per_channel=o.norm == "channel", boost=o.boost)
        layout = ctx.grid_layout
        return {
            "grid": r.grid_image(levels, tile, layout, o.colormap, o.gamma),
            "grid_layout": layout,
            "channel_max": high,
            "channel_mean": mean,
        }


class SelectedChannelProducer(Producer):
    """The selected channel: upsampled onto the frame at the network's crop with its peak ringed (shown
    smaller than the frame, it is blended at the size shown: shrink, then blend only the pixels shown),
    coloured at its own resolution (a zoomed view scales it up), and where it peaks."""

    def render(self, ctx):
        r, o = ctx.renderer, ctx.options
        shown, placed = ctx.shown_frame
        overlay = r.render_overlay(
            shown,
            ctx.selected_levels,
            placed,
            o.colormap,
            mode=o.overlay_mode,
            opacity=o.opacity,
            gamma=o.gamma,
            peak_index=ctx.peak_index,
        )
        (maps, tile), c = ctx.maps, o.channel
        spatial = maps.shape[1] == tile[0] * tile[1]
        return {
            "overlay": overlay,
            "channel_tile": r.colorize(ctx.selected_levels, o.colormap, o.gamma),
            "peak_index": ctx.peak_index,
            "selected_max": ctx.stats[1][c : c + 1],
            "selected_mean": ctx.stats[2][c : c + 1],
            "peak_tile": tile,
            # the selected channel's raw values (a few hundred numbers): a window shows them under the mouse
            "channel_map": maps[c].reshape(tile if spatial else (1, 1)),
        }

    def finish(self, host, ctx):
        value = float(host["selected_max"][0])
        peak = locate_peak(int(host["peak_index"]), value, host["peak_tile"], crop_box(ctx.crop))
        return {
            "overlay": host["overlay"],
            "channel_tile": host["channel_tile"],
            "peak": peak,
            "selected_mean": float(host["selected_mean"][0]),
            "channel_map": host["channel_map"],
        }

    def summary(self, values):
        peak = values["peak"]
        return {"peak": {"value": peak.value, "cell": list(peak.cell), "frame_xy": list(peak.frame_xy)}}

    def report(self, values, engine):
        peak = values["peak"]
        return [f"peak {peak.value:.3g} at frame x={peak.frame_xy[0]} y={peak.frame_xy[1]}"]


class PredictionsProducer(Producer):
    """The top-5 classes, from the logits of the same forward pass (none for a network that does not
    classify)."""

    def render(self, ctx):
        out = {"logits": ctx.result.logits[0]}
        if ctx.unedited is not None:  # the network with edits, compared with the network without them
            out["unedited_logits"] = ctx.unedited.logits[0]
            if ctx.with_arrays:
                out["probs"] = ctx.unedited.logits[0].float().softmax(0)
                out["probs_edited"] = ctx.result.logits[0].float().softmax(0)
        return out

    def finish(self, host, ctx):
        top5 = ctx.engine.top_k(host["logits"])
        values = {"top5": top5, **{k: host[k] for k in ("probs", "probs_edited") if k in host}}
        if top5:
            values["top5_index"] = np.array([p.index for p in top5], dtype=np.int64)
            values["top5_prob"] = np.array([p.probability for p in top5], dtype=np.float32)
        if "unedited_logits" in host:
            values["top5_unedited"] = ctx.engine.top_k(host["unedited_logits"])
            unedited = np.asarray(host["unedited_logits"], dtype=np.float64)
            unedited = np.exp(unedited - unedited.max())
            values["top5_before"] = [float(unedited[p.index] / unedited.sum()) for p in top5]
        return values

    def summary(self, values):
        def listed(predictions):
            return [{"index": p.index, "label": p.label, "probability": p.probability} for p in predictions]

        compared = {"top5_unedited": listed(values["top5_unedited"])} if "top5_unedited" in values else {}
        return {"top5": listed(values["top5"]), **compared}

    def report(self, values, engine):
        if "top5_unedited" not in values:
            return [f"{rank}. {p.label:<32} {p.probability:.4f}" for rank, p in enumerate(values["top5"], 1)]
        lines = [f"   {'with the edits':<32} {'':6}   {'without them':<32}"]
        for rank, (edited, unedited) in enumerate(zip(values["top5"], values["top5_unedited"], strict=False), 1):
            lines.append(
                f"{rank}. {edited.label:<32} {edited.probability:.4f}   {unedited.label:<32} {unedited.probability:.4f}"
            )
        return lines
