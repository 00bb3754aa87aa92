"""The features view's producer (declared in `livevis.views.features`): the frame's cells at the SAE's layer
encoded into sparse features, the most active drawn on the frame in colours that stay with their features
from frame to frame."""

from __future__ import annotations

import numpy as np
import torch

from ..concepts.nmf import like
from ..errors import LivevisError, OptionError
from ..producer import Producer
from ..render.base import CONCEPT_PALETTE
from .sae import check_fits, explained_variance, features_at

SHOWN = 6
"""Features drawn on the frame: the frame's strongest by their summed codes."""
_PALETTE = CONCEPT_PALETTE.astype(np.float32)


def _sae_and_layer(engine, options):
    file = options["features"]
    if not file:
        raise OptionError("the features view needs a features file: --features FILE (from `livevis features train`)")
    sae = features_at(file)
    layer = engine.layer(sae.layer or None)
    check_fits(sae, layer, file)
    return sae, layer


class Colours:
    """A palette colour per feature shown, kept while the feature stays among those shown (as the concepts'
    colours are kept), a newcomer taking a colour none of the others has."""

    def __init__(self):
        self.of: dict[int, int] = {}

    def update(self, shown: list[int]) -> list[int]:
        kept = {j: c for j, c in self.of.items() if j in shown}
        free = [c for c in range(len(_PALETTE)) if c not in kept.values()]
        for j in shown:
            if j not in kept:
                kept[j] = free.pop(0) if free else j % len(_PALETTE)
        self.of = kept
        return [kept[j] for j in shown]


class FeaturesProducer(Producer):
    """Codes z = TopK(ReLU((x - b_dec) W_enc^T + b_enc)) of every cell of the SAE's layer as measured (before any
    edit), the reconstruction and this frame's explained variance; the strongest `SHOWN` features on the frame."""

    def check(self, engine, layer, options):
        _sae_and_layer(engine, options)

    def layers(self, layer, options):
        try:
            return {features_at(options["features"]).layer} - {""} if options["features"] else set()
        except LivevisError:
            return set()

    def render(self, ctx):
        try:
            sae, layer = _sae_and_layer(ctx.engine, ctx.options)
        except LivevisError as exc:  # said in the pane; the other views go on
            return {"features_error": str(exc)}
        activation = ctx.result.activations[layer.path].float()
        if activation.dim() == 1:
            activation = activation.reshape(-1, 1, 1)
        sae = ctx.memory.setdefault("features_sae", {}).get(ctx.options["features"])
        if sae is None or sae.W_enc.device != activation.device:
            sae = features_at(ctx.options["features"]).to(activation.device)
            ctx.memory["features_sae"] = {ctx.options["features"]: sae}
        c, h, w = activation.shape
        rows = activation.reshape(c, -1).t()
        values, indices = sae.encode_sparse(rows)  # the one product over all F features per cell
        reconstruction = sae.decode_sparse(values, indices)
        ev = explained_variance(rows, reconstruction)
        totals = torch.zeros(sae.features, device=rows.device).index_add_(0, indices.reshape(-1), values.reshape(-1))
        top = totals.topk(min(SHOWN, sae.features)).indices
        top = top[totals[top] > 0]
        shown_features = [int(j) for j in top]
        colours = ctx.memory.setdefault("features_colours", Colours()).update(shown_features)
        maps = ((indices[None] == top.reshape(-1, 1, 1)) * values[None]).sum(2).reshape(-1, h, w)
        peak = float(maps.max()) if len(top) else 1.0
        r = ctx.renderer
        out = {
            "feature_top": np.array(shown_features, np.int64),
            "feature_strength": totals[top].cpu().numpy().astype(np.float32),
            "feature_colours": np.array(colours, np.int64),
            "feature_explained_variance": np.float32(ev),
            "feature_layer": layer.path,
            "feature_maps": (maps / max(peak, 1e-12)).cpu().numpy(),
        }
        if len(top):
            shown, placed = ctx.shown_frame
            normalised = r.asarray((maps / max(peak, 1e-12)).contiguous())
            out["features"] = r.render_concepts(shown, normalised, like(_PALETTE[colours], normalised), placed)
        else:
            out["features"] = ctx.shown_frame[0]
        if ctx.with_arrays:
            codes = torch.zeros((len(rows), sae.features), device=rows.device).scatter_(1, indices, values)
            out["feature_codes"] = codes.t().reshape(-1, h, w)
            out["feature_reconstruction"] = reconstruction.t().reshape(c, h, w)
        return out

    def summary(self, values):
        if "features_error" in values:
            return {"features": {"error": values["features_error"]}}
        return {
            "features": {
                "layer": values["feature_layer"],
                "explained_variance": float(values["feature_explained_variance"]),
                "top": [
                    {"feature": int(j), "strength": float(s)}
                    for j, s in zip(values["feature_top"], values["feature_strength"], strict=True)
                ],
            }
        }

    def report(self, values, engine):
        if "features_error" in values:
            return [f"features: {values['features_error']}"]
        top = ", ".join(
            f"{int(j)} ({float(s):.3g})" for j, s in zip(values["feature_top"], values["feature_strength"], strict=True)
        )
        ev = float(values["feature_explained_variance"])
        return [f"features of {values['feature_layer']}: explained variance {ev:.3f} on this frame; strongest {top}"]
