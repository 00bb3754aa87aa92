"""The impact view's producer (declared in `livevis.views.impact`): the selected layer's channels ranked by their
effect on a class's score on this frame, in the network as it runs (with the request's edits)."""

from __future__ import annotations

import numpy as np

from ..producer import Producer
from .impact import MEASURED, channel_impact


class ImpactProducer(Producer):
    """Every channel's first-order estimate and the measured change of the strongest `MEASURED`, for the class
    picked (a click on a prediction) or the frame's top class."""

    def render(self, ctx):
        if ctx.layer.path in ("input", "prob", "output") or not ctx.engine.is_classifier:
            return {"impact_note": f"{ctx.layer.name}: no channels to switch off for a class here"}
        with ctx.engine.edited(ctx.options.edits, ctx.memory.get("seen_means")):
            impact = channel_impact(ctx.engine, ctx.result.input, ctx.layer, ctx.options.class_index)
        measured = np.full(len(impact.estimates), np.nan, np.float32)
        for channel, change in impact.measured.items():
            measured[channel] = change
        return {
            "impact": impact,
            "impact_estimates": impact.estimates.astype(np.float32),
            "impact_measured": measured,
        }

    def finish(self, host, ctx):
        impact = host.get("impact")
        if impact is None or not ctx.engine.categories:
            return dict(host)
        return {**host, "impact_label": ctx.engine.categories[impact.class_index]}

    def summary(self, values):
        impact = values.get("impact")
        if impact is None:
            return {"impact": None}
        label = values.get("impact_label")
        channels = [
            {"channel": c, "estimate": float(impact.estimates[c]), "measured": impact.measured.get(c)}
            for c in impact.ranked()
        ]
        return {
            "impact": {
                "layer": impact.layer,
                "class": impact.class_index,
                "label": label,
                "score": impact.score,
                "probability": impact.probability,
                "measured_channels": len(impact.measured),
                "channels": channels,
            }
        }

    def report(self, values, engine):
        impact = values.get("impact")
        if impact is None:
            return [values.get("impact_note", "")]
        name = values.get("impact_label", str(impact.class_index))
        lines = [f"channels of {impact.layer} by their effect on {name} (score {impact.score:.3f}), switched off:"]
        for rank, channel in enumerate(impact.ranked()[:MEASURED], 1):
            measured = impact.measured.get(channel)
            shown = f"{measured:+.4f}" if measured is not None else "-"
            lines.append(f"{rank:>2}. channel {channel:<5} estimate {impact.estimates[channel]:+.4f}  measured {shown}")
        return lines
