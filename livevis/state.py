"""What the user is looking at, and how: one evented model, Qt-free and torch-free.

The window, the inference worker and the widgets all read and write this one object and subscribe to
its events (psygnal), so no widget keeps a copy of the selection and nothing is sent back and forth to
be set again. Values are checked as they are set: a bad one raises `ValueError` and changes nothing.

Its fields are the selection and the drawing options every view shares (below), and each view's own
options, as its declaration gives them (`livevis.views`): the backprop view's `backprop` mode, the
attention view's `attention_head`, a plug-in's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass

from psygnal import evented

from livevis import views

COLORMAPS = ("signed", "gray", "viridis", "inferno")
NORMALIZATIONS = ("layer", "channel")
OVERLAY_MODES = ("overlay", "mask")
CHANNEL_BOOSTS = (0.0, 0.3, 0.5, 0.8, 1.0)
"""The Toolbox's per-channel boost steps (T cycles them)."""
GAMMA_BOOSTS = (1.0, 0.7, 0.5, 0.3)
"""The Toolbox's gamma boost steps (Shift+T cycles them)."""

DRAWING_DEFAULTS = {
    "colormap": "signed",
    "norm": "layer",
    "gamma": 1.0,
    "boost": 0.0,
    "overlay_mode": "overlay",
    "opacity": 0.8,
    "class_index": None,
}
"""How every view draws a frame until the user says otherwise (the live state, render requests and the
settings start from these), and the class the explanations explain (None: each frame's top-1)."""


def _one_of(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


def _whole(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_option(name: str, value) -> None:
    """Raises ValueError, saying what is allowed, when `value` is not one `name` can take (a drawing option,
    the channel, or a view's option)."""
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
    elif name == "class_index" and not (value is None or _whole(value, 0)):
        raise ValueError(f"a class is a whole number from 0 (or none for the top-1), got {value!r}")
    elif name == "channel" and not _whole(value, 0):
        raise ValueError(f"channel must be a whole number from 0, got {value!r}")
    elif name == "edits" and not (
        isinstance(value, tuple)
        and all(isinstance(getattr(e, "layer", None), str) and hasattr(e, "apply") for e in value)
    ):
        raise ValueError(f"edits are a tuple of edits of layers (`livevis.models.interventions`), got {value!r}")
    elif name == "compare" and not isinstance(value, bool):
        raise ValueError(f"compare is true or false, got {value!r}")
    elif (option := views.option(name)) is not None:
        option.check_value(value)


@dataclass
class _Selection:
    """The selection and the drawing options; `LiveState` adds each view's options."""

    model: str = ""
    """The running model's name ("" until one is loaded)."""
    layer: str = ""
    """The selected layer's module path ("" for the model's default layer)."""
    channel: int = 0
    frozen: bool = False
    colormap: str = DRAWING_DEFAULTS["colormap"]
    norm: str = DRAWING_DEFAULTS["norm"]
    gamma: float = DRAWING_DEFAULTS["gamma"]
    boost: float = DRAWING_DEFAULTS["boost"]
    overlay_mode: str = DRAWING_DEFAULTS["overlay_mode"]
    opacity: float = DRAWING_DEFAULTS["opacity"]
    class_index: int | None = DRAWING_DEFAULTS["class_index"]
    """The class the explanations explain (a click on a prediction); None: the top-1 of each frame."""
    zoomed: bool = False
    """The selected-channel pane shows the zoomed map instead of the overlay."""
    edits: tuple = ()
    """Units switched off, set to their means or scaled, concepts taken out (`livevis.models.interventions`):
    every view after an edited layer shows the network with them."""
    compare: bool = True
    """With edits, the network without them runs too: the predictions show both and the change."""

    def __setattr__(self, name: str, value) -> None:
        check_option(name, value)
        super().__setattr__(name, value)

    def update(self, **changes) -> None:
        """Several values at once; all are checked before any is set. Each still fires its own event: a
        subscriber that reads the whole state defers its read to the end of the change (the app's worker
        sync does, once per turn of the event loop), so it never sees a new layer with the old channel."""
        names = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"the live state has no {name!r}")
            check_option(name, value)
        for name, value in changes.items():
            setattr(self, name, value)

    def view_options(self) -> dict:
        """The drawing options, the edits and every view's options, as keyword arguments for a render request."""
        names = (*DRAWING_DEFAULTS, "edits", "compare", *(f.name for f in fields(self) if views.option(f.name)))
        return {name: getattr(self, name) for name in names}


def _live_state_class() -> type:
    """The selection plus the live options of every view known now (livevis's own and the plug-ins')."""
    view_fields = [
        (option.name, object, field(default=option.default)) for option in views.options().values() if option.live
    ]
    views.state_built()
    namespace = {"__module__": __name__, "__doc__": "The live selection, drawing options and views' options."}
    return evented(make_dataclass("LiveState", view_fields, bases=(_Selection,), namespace=namespace))


LiveState = _live_state_class()
"""The live selection and view options. Set attributes to change them; connect to `events.NAME`."""
