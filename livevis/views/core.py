"""The views every network gets: the frame as the window shows it, the exact network input, every channel of
the layer as a grid, the selected channel on the frame, and the top-5 classes."""

from __future__ import annotations

from livevis.views import Option, Place, ViewSpec


def _size_or_none(value) -> bool:
    return value is None or (
        isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)
    )


INPUT = ViewSpec(
    name="input",
    producer="livevis.models.views:InputProducer",
    title="Input",
    pane="livevis.app.panes.input:InputPane",
    options=(
        Option(
            "frame_display_size",
            None,
            check=_size_or_none,
            expects="a (width, height) in pixels or none",
            live=False,
            help="the size the input pane shows the frame at: it is shrunk to it on the device",
        ),
    ),
    place=Place(share=0.22, open=True),
    description="the frame as the input pane shows it",
)
SIGNED_INPUT = ViewSpec(
    name="input_signed",
    producer="livevis.models.views:SignedInputProducer",
    pictures=("input_signed",),
    rendered=True,
    description="the exact normalised network input, each input channel in the signed colormap",
)
GRID = ViewSpec(
    name="grid",
    producer="livevis.models.views:GridProducer",
    title="Channels of the layer",
    pane="livevis.app.panes.grid:GridPane",
    pictures=("grid",),
    recorded=("grid",),
    rendered=True,
    place=Place(beside="input", share=0.36, open=True, presented=True),
    description="every channel of the layer as a heatmap tile",
)
SELECTED = ViewSpec(
    name="selected",
    producer="livevis.models.views:SelectedChannelProducer",
    title="Selected channel",
    pane="livevis.app.panes.selected:SelectedPane",
    pictures=("overlay", "channel_tile"),
    recorded=("overlay",),
    rendered=True,
    place=Place(beside="grid", share=0.42, open=True, presented=True),
    description="the selected channel on the frame (overlay) and at its own resolution (channel_tile), its peak",
)
PREDICTIONS = ViewSpec(
    name="predictions",
    producer="livevis.models.views:PredictionsProducer",
    title="Predictions",
    pane="livevis.app.panes.predictions:PredictionsPane",
    arrays=(
        ("top5_index", "top5_index"),
        ("top5_prob", "top5_prob"),
        ("probs", "probs"),
        ("probs_edited", "probs_edited"),
    ),
    rendered=True,
    place=Place(beside="input", side="below", share=0.2, open=True),
    description="the top-5 classes (none for a network that does not classify)",
)
VIEWS = (INPUT, SIGNED_INPUT, GRID, SELECTED, PREDICTIONS)
