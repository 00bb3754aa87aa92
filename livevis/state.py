"""What the user is looking at, and how: one evented model, Qt-free and torch-free.

The window, the inference worker and the widgets all read and write this one object and subscribe to
its events (psygnal), so no widget keeps a copy of the selection and nothing is sent back and forth to
be set again. Values are checked as they are set: a bad one raises `ValueError` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from psygnal import evented

COLORMAPS = ("signed", "gray", "viridis", "inferno")
NORMALIZATIONS = ("layer", "channel")
OVERLAY_MODES = ("overlay", "mask")
CHANNEL_BOOSTS = (0.0, 0.3, 0.5, 0.8, 1.0)
"""The Toolbox's per-channel boost steps (T cycles them)."""
GAMMA_BOOSTS = (1.0, 0.7, 0.5, 0.3)
"""The Toolbox's gamma boost steps (Shift+T cycles them)."""

BACKPROP_MODES = ("off", "grad", "deconv", "guided", "gradcam")
"""What the backprop pane shows: nothing, a unit's input gradient under a ReLU rule, or Grad-CAM."""
BACKPROP_VIEWS = ("raw", "gray", "norm", "normblur")
ATTENTION_MODES = ("off", "heads", "rollout")
"""What a transformer's attention pane shows: nothing, every head's attention at the selected block, or the
attention rolled out from the first block up to it (Abnar & Zuidema 2020)."""
MEAN_OF_HEADS = -1
"""`attention_head` for the mean of the heads."""

CONCEPT_COUNTS = range(2, 13)
"""How many concepts a layer can be cut into (the concepts pane's spin box)."""

VIEW_DEFAULTS = {
    "colormap": "signed",
    "norm": "layer",
    "gamma": 1.0,
    "boost": 0.0,
    "overlay_mode": "overlay",
    "opacity": 0.8,
    "backprop": "off",
    "backprop_view": "normblur",
    "class_index": None,
    "concept_count": 5,
    "concept_set": "",
    "attention": "heads",
    "attention_head": MEAN_OF_HEADS,
    "attention_query": None,
}
"""How a frame is drawn until the user says otherwise: the live state, render requests and the settings
file all start from these."""
VIEW_OPTION_NAMES = tuple(VIEW_DEFAULTS)
"""The options that change how a frame is drawn, not what is computed."""


def _one_of(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


def _is_cell(value) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    )


def check_option(name: str, value) -> None:
    """Raises ValueError, saying what is allowed, when `value` is not one `name` can take."""
    if name == "colormap":
        _one_of("colormap", value, COLORMAPS)
    elif name == "norm":
        _one_of("normalisation", value, NORMALIZATIONS)
    elif name == "overlay_mode":
        _one_of("overlay mode", value, OVERLAY_MODES)
    elif name == "gamma" and not (isinstance(value, int | float) and value > 0):
        raise ValueError(f"gamma must be above 0, got {value}")
    elif name in ("boost", "opacity") and not (isinstance(value, int | float) and 0 <= value <= 1):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    elif name == "backprop":
        _one_of("backprop mode", value, BACKPROP_MODES)
    elif name == "backprop_view":
        _one_of("backprop view", value, BACKPROP_VIEWS)
    elif name == "class_index" and not (value is None or (isinstance(value, int) and value >= 0)):
        raise ValueError(f"a class is a whole number from 0 (or none for the top-1), got {value!r}")
    elif name == "concept_count" and not (
        isinstance(value, int) and not isinstance(value, bool) and value in CONCEPT_COUNTS
    ):
        raise ValueError(f"the number of concepts must be {CONCEPT_COUNTS[0]} to {CONCEPT_COUNTS[-1]}, got {value!r}")
    elif name == "concept_set" and not isinstance(value, str):
        raise ValueError(f"concepts fitted on a folder are named by their file, got {value!r}")
    elif name == "channel" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValueError(f"channel must be a whole number from 0, got {value!r}")
    elif name == "attention":
        _one_of("attention mode", value, ATTENTION_MODES)
    elif name == "attention_head" and not (
        isinstance(value, int) and not isinstance(value, bool) and value >= MEAN_OF_HEADS
    ):
        raise ValueError(f"a head is a whole number from 0 (or {MEAN_OF_HEADS} for their mean), got {value!r}")
    elif name == "attention_query" and not (value is None or _is_cell(value)):
        raise ValueError(f"the attention query is a (row, column) cell of the patch grid or none, got {value!r}")


@evented
@dataclass
class LiveState:
    """The live selection and view options. Set attributes to change them; connect to `events.NAME`."""

    model: str = ""
    """The running model's name ("" until one is loaded)."""
    layer: str = ""
    """The selected layer's module path ("" for the model's default layer)."""
    channel: int = 0
    frozen: bool = False
    colormap: str = VIEW_DEFAULTS["colormap"]
    norm: str = VIEW_DEFAULTS["norm"]
    gamma: float = VIEW_DEFAULTS["gamma"]
    boost: float = VIEW_DEFAULTS["boost"]
    overlay_mode: str = VIEW_DEFAULTS["overlay_mode"]
    opacity: float = VIEW_DEFAULTS["opacity"]
    zoomed: bool = False
    """The selected-channel pane shows the zoomed map instead of the overlay."""
    backprop: str = VIEW_DEFAULTS["backprop"]
    backprop_view: str = VIEW_DEFAULTS["backprop_view"]
    class_index: int | None = VIEW_DEFAULTS["class_index"]
    """The class Grad-CAM explains; None: the top-1 of each frame."""
    attention: str = VIEW_DEFAULTS["attention"]
    attention_head: int = VIEW_DEFAULTS["attention_head"]
    """The head shown on the frame; MEAN_OF_HEADS for their mean."""
    attention_query: tuple[int, int] | None = VIEW_DEFAULTS["attention_query"]
    """The patch-grid cell attention is asked from; None: the class token (the centre cell where a model
    has no class token)."""
    concepts: bool = False
    """The concepts pane is on: the layer cut into a few parts, on the frame."""
    concept_count: int = VIEW_DEFAULTS["concept_count"]
    concept_set: str = VIEW_DEFAULTS["concept_set"]
    """The file of concepts fitted on a folder that each frame is placed on; "": each frame's own concepts."""

    def __setattr__(self, name: str, value) -> None:
        check_option(name, value)
        super().__setattr__(name, value)

    def update(self, **changes) -> None:
        """Several values at once; all are checked before any is set. Each still fires its own event: a
        subscriber that reads the whole state defers its read to the end of the change (the app's worker
        sync does, once per turn of the event loop), so it never sees a new layer with the old channel."""
        for name, value in changes.items():
            if name not in _FIELDS:
                raise ValueError(f"the live state has no {name!r}")
            check_option(name, value)
        for name, value in changes.items():
            setattr(self, name, value)

    def view_options(self) -> dict:
        """The drawing options, as keyword arguments for a render request."""
        return {name: getattr(self, name) for name in VIEW_OPTION_NAMES}


_FIELDS = {f.name for f in fields(LiveState)}
