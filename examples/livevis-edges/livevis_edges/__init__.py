"""The edges view: where the selected channel's map changes most (its Sobel magnitude), on the frame.

The declaration only: livevis reads it without torch or Qt, then imports the producer where frames are
computed and the pane where the window shows them.
"""

from livevis.views import Option, Place, ViewSpec

COLORMAPS = ("inferno", "gray", "viridis")

VIEW = ViewSpec(
    name="edges",
    producer="livevis_edges.producer:EdgesProducer",
    title="Edges",
    pane="livevis_edges.pane:EdgesPane",
    pictures=("edges",),
    recorded=("edges",),
    arrays=(("edges_magnitude", "edges"),),
    options=(
        Option(
            "edges_colormap",
            "inferno",
            choices=COLORMAPS,
            flag="--edges-colormap",
            help="the edges' colours: inferno (default), gray or viridis",
            key="E",
            title="Edges colormap",
            key_help="the edges pane's next colormap: inferno, gray, viridis",
        ),
    ),
    place=Place(beside="backprop", side="tab"),
    description="edges.png: where the selected channel's map changes most (its Sobel magnitude), on the frame",
)
