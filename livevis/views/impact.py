"""The impact view: which units of the selected layer matter for a class on this frame, each channel's effect
on the class's score estimated to first order (activation x gradient) and, for the strongest, measured with the
channel switched off."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

IMPACT = ViewSpec(
    name="impact",
    producer="livevis.models.interventions.view:ImpactProducer",
    title="Which units matter",
    pane="livevis.app.panes.impact:ImpactPane",
    arrays=(("impact_estimates", "impact_estimates"), ("impact_measured", "impact_measured")),
    options=(
        Option(
            "impact",
            False,
            choices=(False, True),
            flag="--impact",
            help="rank the layer's channels by their effect on the class (--class, default the top one): every "
            "channel's first-order estimate and the measured change of the strongest 20",
            live=False,
        ),
    ),
    place=Place(beside="predictions", side="tab"),
    description="every channel's effect on the class's score (--impact)",
)
VIEWS = (IMPACT,)
