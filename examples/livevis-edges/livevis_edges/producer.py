"""What the edges view computes: the Sobel magnitude of the selected channel's map, drawn on the frame at the
crop the network saw."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from livevis.models import Producer

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(values: torch.Tensor) -> torch.Tensor:
    """sqrt(gx^2 + gy^2) of an (h, w) map, its border repeated outward (so a map's edge is not an edge)."""
    kernels = torch.stack([SOBEL_X, SOBEL_X.t()]).to(values)[:, None]
    padded = F.pad(values[None, None], (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kernels)[0]
    return torch.sqrt(gx * gx + gy * gy)


class EdgesProducer(Producer):
    def render(self, ctx):
        activation = ctx.result.activations[ctx.layer.path]
        if activation.dim() != 3:
            return {}  # a layer of values, not maps: no edges to draw
        magnitude = sobel_magnitude(activation[ctx.options.channel].float())
        r, colormap = ctx.renderer, ctx.options["edges_colormap"]
        flat = r.asarray(magnitude.reshape(1, -1).contiguous())
        _, high, _ = r.channel_stats(flat)
        levels = r.levels(flat, high * 0, high, colormap, per_channel=True).reshape(magnitude.shape)
        shown, placed = ctx.shown_frame
        out = {"edges": r.render_overlay(shown, levels, placed, colormap, opacity=ctx.options.opacity)}
        if ctx.with_arrays:
            out["edges_magnitude"] = magnitude
        return out

    def summary(self, values):
        return {"edges_max": float(values["edges_magnitude"].max()) if "edges_magnitude" in values else None}
