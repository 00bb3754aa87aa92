"""The concepts view: the layer cut into a few parts (NMF of its maps), drawn on the frame, each with its top
channels and, where the layer feeds the classifier, its classes."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec

CONCEPT_COUNTS = tuple(range(2, 13))
"""How many concepts a layer can be cut into."""

CONCEPTS = ViewSpec(
    name="concepts",
    producer="livevis.models.concepts.view:ConceptsProducer",
    title="Concepts",
    pane="livevis.app.panes.concepts:ConceptsPane",
    pictures=("concepts",),
    recorded=("concepts",),
    arrays=(("concept_maps", "concepts"), ("concept_channels", "concept_channels")),
    options=(
        Option(
            "concepts",
            False,
            choices=(False, True),
            key="X",
            title="Concepts",
            key_help="cut the layer into a few concepts (NMF), on the frame",
        ),
        Option(
            "concept_count",
            5,
            choices=CONCEPT_COUNTS,
            what="the number of concepts",
            expects=f"{CONCEPT_COUNTS[0]} to {CONCEPT_COUNTS[-1]}",
            parse=int,
            flag="--concepts",
            help=f"cut the layer into K concepts ({CONCEPT_COUNTS[0]}-{CONCEPT_COUNTS[-1]}) by NMF, drawn on the "
            "frame with each one's top channels (and classes where the layer feeds the classifier): concepts.png",
            key="Shift+X",
            title="More concepts",
            key_help="cut the layer into one more concept (2-12, cycles)",
            persist=True,
        ),
        Option(
            "concept_set",
            "",
            check=lambda value: isinstance(value, str),
            expects="the file of concepts fitted on a folder, or '' for each frame's own",
        ),
    ),
    place=Place(beside="backprop", side="tab", presented=True),
    description="concepts.png: the layer cut into K concepts on the frame, with a legend (--concepts K)",
)
VIEWS = (CONCEPTS,)
