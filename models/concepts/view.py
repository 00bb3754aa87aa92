"""The concepts view's producer (declared in `livevis.views.concepts`): the layer cut into a few concepts on
each frame, or placed on concepts fitted on a folder, drawn on the frame as a coloured segmentation."""

from __future__ import annotations

import numpy as np

from ..errors import LivevisError
from ..producer import Producer, RenderContext
from ..render.base import CONCEPT_PALETTE
from .dataset import check_layer, concept_set_at
from .head import classifier_head, concept_classes, feeds_head, head_layer
from .live import ConceptTracker
from .nmf import like, min_shifted, top_indices
from .summary import TOP_CHANNELS, ConceptsSummary, summarise

_PALETTE = CONCEPT_PALETTE.astype(np.float32)


class ConceptsProducer(Producer):
    """The layer cut into a few concepts (NMF of its min-shifted maps), drawn on the frame as a coloured
    segmentation, each concept with its top channels' tiles and, where the layer feeds the classifier
    directly, its top classes. On a sequence of frames each frame's concepts start from the last frame's and
    keep their colours; concepts fitted on a folder (`concept_set`) are fixed and only placed on each frame."""

    def check(self, engine, layer, options):
        check_layer(layer, options["concept_count"])

    def render(self, ctx):
        r, o, layer = ctx.renderer, ctx.options, ctx.layer
        count, concept_set = o["concept_count"], o["concept_set"]
        try:
            check_layer(layer, count)
            fixed = concept_set_at(concept_set) if concept_set else None
            if fixed is not None and fixed.layer != layer.path:
                raise LivevisError(
                    f"the concepts of {fixed.folder.name} were fitted at {fixed.layer_name}: "
                    f"fit them for {layer.name}, or use this frame's"
                )
        except LivevisError as exc:  # said in the pane; the other views go on
            return {"concepts_error": str(exc)}
        maps, tile = ctx.maps
        V, offset = min_shifted(maps)
        tracker = ctx.memory.setdefault("concepts", ConceptTracker())
        found = tracker.update(V, count, layer.path, ctx.result, warm=o.sequence, fixed=fixed)
        channels, k = found.factors.channels, len(found.colours)
        concept_maps = found.factors.maps.reshape(k, *tile)
        shown, placed = ctx.shown_frame
        colours = like(_PALETTE[found.colours], concept_maps)
        top = top_indices(channels, TOP_CHANNELS)
        picked = top.reshape(-1)  # each tile on its own scale: a weak channel's pattern still shows
        low, high, _ = ctx.stats
        levels = r.levels(maps[picked], low[picked], high[picked], o.colormap, per_channel=True)
        tiles = r.colorize(r.as_tiles(levels, tile), o.colormap, o.gamma)
        out = {
            "concepts": r.render_concepts(shown, concept_maps, colours, placed, opacity=o.opacity),
            "concept_maps": concept_maps,
            "concept_channels": channels,
            "concept_colours": found.colours,
            "concept_top": top,
            "concept_tiles": tiles,
            "concepts_ms": found.milliseconds,
            "concept_source": "" if fixed is None else str(fixed.folder),
        }
        head = self._head(ctx)
        if head is not None:
            out["concept_class_index"], out["concept_class_probability"] = concept_classes(head, channels, offset)
        return out

    def _head(self, ctx: RenderContext):
        """The classifier's head where this layer feeds it directly (checked once per layer, on a real frame)."""
        heads = ctx.memory.setdefault("concept_heads", {})
        path = ctx.layer.path
        if path not in heads:
            head = classifier_head(ctx.engine)
            fed = head is not None and feeds_head(ctx.result.activations[path], ctx.result.logits[0], head)
            heads[path] = head if fed else None
        return heads.get(path)

    def finish(self, host, ctx):
        if "concepts_error" in host:
            return {"concepts_summary": ConceptsSummary(error=host["concepts_error"])}
        folder = str(host["concept_source"])
        source = f"fitted on {folder}" if folder else "this frame"
        told = "top channels and crops" if folder else "top channels"
        if "concept_class_index" in host:
            note = "classes: each concept's channel vector through the classifier"
        elif not ctx.engine.is_classifier:
            note = f"told by their {told} (the network is not a classifier)"
        else:
            fed = head_layer(ctx.engine, classifier_head(ctx.engine))
            where = f"only {fed.name} feeds" if fed else "no layer with maps feeds"
            note = f"told by their {told}: {where} the classifier directly, where classes name them"
        return {**host, "concepts_summary": summarise(host, ctx.engine.categories, source, note)}

    def summary(self, values):
        summary = values["concepts_summary"]
        concepts = [
            {
                "colour": list(c.rgb),
                "share": c.share,
                "channels": [channel for channel, _ in c.channels],
                "classes": [{"label": label, "probability": p} for label, p in c.classes],
            }
            for c in summary.concepts
        ]
        return {"concepts": concepts}

    def report(self, values, engine):
        summary = values["concepts_summary"]
        if summary.error:
            return [f"concepts: {summary.error}"]
        lines = [f"{len(summary.concepts)} concepts ({summary.milliseconds:.1f} ms); {summary.note}:"]
        for number, concept in enumerate(summary.concepts, 1):
            classes = ", ".join(f"{label} {p:.2f}" for label, p in concept.classes)
            channels = ", ".join(str(c) for c, _ in concept.channels)
            named = f"; {classes}" if classes else ""
            lines.append(f"{number:>2}. {concept.share:4.0%} of the map, channels {channels}{named}")
        return lines

    def for_file(self, images, values, title):
        """concepts.png with its legend: each concept's colour, share, top channels and classes."""
        from .images import concepts_figure

        if "concepts" not in images:
            return dict(images)
        summary = values["concepts_summary"]
        return {
            **images,
            "concepts": concepts_figure(images["concepts"], summary, f"{title}: {len(summary.concepts)} concepts"),
        }
