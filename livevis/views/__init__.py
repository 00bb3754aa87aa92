"""Views: what livevis computes from a frame and shows, each declared once.

A view is a `ViewSpec`: its name, what computes it (a producer, on the torch side), the pane or tab that shows
it (on the Qt side), the options it takes with their defaults and checks, the pictures and arrays it saves.
The pipeline, the live state, the settings, `render`, snapshots and recordings know views only through these
declarations. Producers and panes are named by import paths (``"package.module:Name"``, as entry points name
objects), so that a declaration loads without torch or Qt and each side imports only its own half.

livevis's own views are declared in the modules of this package; other packages add theirs through the
``livevis.views`` entry-point group, whose entries name a `ViewSpec` or a sequence of them::

    [project.entry-points."livevis.views"]
    edges = "livevis_edges:VIEW"
"""

from __future__ import annotations

import logging
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "livevis.views"
BUILTIN = (
    "livevis.views.core:VIEWS",
    "livevis.views.backprop:VIEWS",
    "livevis.views.transformers:VIEWS",
    "livevis.views.concepts:VIEWS",
    "livevis.views.network:VIEWS",
    "livevis.views.impact:VIEWS",
    "livevis.views.detection:VIEWS",
    "livevis.views.features:VIEWS",
)
"""livevis's own declarations, in the order their panes are placed."""


@dataclass(frozen=True)
class Option:
    """A value a view takes, with its default and what it may be. The live state holds it (the window's keys,
    boxes and settings change it), every render request carries it, and `render` and `bench` take it as
    `flag`. A name is shared by every view: give a plug-in's options names of their own (``edges_low``)."""

    name: str
    default: Any
    choices: tuple = ()
    """The values it may take, in the order its key cycles them; empty: any value `check` accepts."""
    check: Callable[[Any], bool] | None = None
    """Whether a value is allowed (besides `choices`)."""
    what: str = ""
    """What it is called in an error ("backprop mode"; default: its name)."""
    expects: str = ""
    """What a value must be, for the error a refused one gets ("2 to 12")."""
    parse: Callable[[str], Any] = str
    """A value from the command line or the settings file."""
    flag: str = ""
    """`render` and `bench` take it as this flag ("--backprop"); "" for none."""
    help: str = ""
    """What it does, for the flag's help and the key's description."""
    key: str = ""
    """A key of the window that steps it through `choices` ("B"); "" for none."""
    title: str = ""
    """The key's entry in the View menu ("Backprop mode")."""
    key_help: str = ""
    """What the key does, for the help overlay and the README's keys table."""
    toolbar: str = ""
    """A box on the toolbar with this label chooses it; "" for none."""
    persist: bool = False
    """Kept in the settings from one start to the next."""
    live: bool = True
    """Held by the live state; False for one that a tab sets per request (the network rows)."""

    def check_value(self, value: Any) -> None:
        """Raises ValueError, saying what is allowed, for a value this option cannot take."""
        if self.choices:
            allowed = value in self.choices and type(value) in {type(choice) for choice in self.choices}
        else:
            allowed = self.check is None or bool(self.check(value))
        if allowed:
            return
        what = self.what or self.name
        if self.expects:
            raise ValueError(f"{what} must be {self.expects}, got {value!r}")
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, self.choices))}")

    def next(self, value: Any) -> Any:
        """The choice after `value` (the first after the last, or for a value not among them)."""
        choices = list(self.choices)
        return choices[(choices.index(value) + 1) % len(choices)] if value in choices else choices[0]


@dataclass(frozen=True)
class Place:
    """Where a view's pane sits in the Live tab's default layout."""

    beside: str = ""
    """The pane it is placed beside (a view's name, or "layers", "unit"); "" for the first column."""
    side: str = "right"
    """right of `beside` (a new column), below it (in its column), or tabbed with it."""
    share: float = 0.3
    """Its share of the room: of the tab's width for a column, of its column's height below another."""
    open: bool = False
    """Open in the default layout."""
    presented: bool = False
    """Shown in the presentation mode (while it is open)."""
    transformers_only: bool = False
    """There for a vision transformer only: opened when one is loaded, closed for any other network."""


@dataclass(frozen=True)
class ViewSpec:
    """One view: what computes it, what shows it, what it takes and what it saves."""

    name: str
    """Unique; `render --view NAME`, the pane's id in the layout."""
    producer: str
    """Import path of its producer class (a `livevis.models.producer.Producer`, torch side)."""
    title: str = ""
    """Its pane's entry under View > Panes."""
    pane: str = ""
    """Import path of its pane class (a `livevis.app.panes.base.Pane`, Qt side); "" for none."""
    tab: str = ""
    """Import path of a tab that shows it instead of a pane (a `livevis.app.tabs.network.NetworkTab`-like
    class); "" for none."""
    pictures: tuple[str, ...] = ()
    """The pictures it draws: NAME.png from `render` and snapshots."""
    arrays: tuple[tuple[str, str], ...] = ()
    """(value, key): what it adds to activations.npz (`render --save-activations`, snapshots), as float32."""
    recorded: tuple[str, ...] = ()
    """Its pictures that a recording keeps, one video each."""
    options: tuple[Option, ...] = ()
    rendered: bool = False
    """`render` draws it unless told otherwise (a view that draws nothing where it does not apply may be);
    other views are drawn when `--view NAME` or one of their flags asks for them."""
    place: Place = field(default_factory=Place)
    description: str = ""
    """One line: what it shows (listed by `render --help`)."""


_views: dict[str, ViewSpec] = {}
_options: dict[str, Option] = {}
_loaded = False
_state_built = False
RESERVED = frozenset({"model", "layer", "channel", "frozen", "zoomed", "views", "settings"})
"""Names the live state and the render request use for themselves."""


def register(spec: ViewSpec) -> ViewSpec:
    """Adds a view; its name and its options' names must be new. Views that the window offers register
    before the live state is built (livevis's own and the entry points' are, at first use)."""
    if not spec.name or spec.name in _views:
        raise ValueError(f"a view needs a name of its own; {spec.name!r} is taken or empty")
    taken = [o.name for o in spec.options if o.name in _options or o.name in RESERVED]
    if taken:
        raise ValueError(f"the view {spec.name!r} takes the option {taken[0]!r}, which another view has")
    if _state_built and any(o.live for o in spec.options):
        log.warning(
            "the view %r registered after the live state was built: the window will not hold its options", spec.name
        )
    _views[spec.name] = spec
    _options.update({o.name: o for o in spec.options})
    return spec


def unregister(name: str) -> None:
    """Removes a view registered at run time (a test's)."""
    spec = _views.pop(name)
    for option in spec.options:
        _options.pop(option.name, None)


def all_views() -> dict[str, ViewSpec]:
    """Every view by name: livevis's own, then the installed plug-ins', then those registered at run time."""
    _load()
    return dict(_views)


def view(name: str) -> ViewSpec:
    _load()
    if name not in _views:
        raise ValueError(f"unknown view {name!r}; views: {', '.join(_views)}")
    return _views[name]


def live_views(transformer: bool) -> tuple[str, ...]:
    """The views the Live tab computes with its default layout: those whose panes open by default (for a
    transformer, its own panes too). What `livevis bench` times unless told otherwise."""
    _load()
    return tuple(
        name
        for name, spec in _views.items()
        if spec.pane and (spec.place.open or (transformer and spec.place.transformers_only))
    )


def options() -> dict[str, Option]:
    """Every view's options by name."""
    _load()
    return dict(_options)


def option(name: str) -> Option | None:
    _load()
    return _options.get(name)


def resolve(path: str) -> Any:
    """The object an import path names ("package.module:Name")."""
    return pkgutil.resolve_name(path)


def state_built() -> None:
    """The live state was built with the options known now."""
    global _state_built
    _state_built = True


def _as_specs(found: Any, origin: str) -> Sequence[ViewSpec]:
    specs = [found] if isinstance(found, ViewSpec) else list(found) if isinstance(found, Iterable) else []
    if not specs or not all(isinstance(s, ViewSpec) for s in specs):
        raise TypeError(f"{origin} names {type(found).__name__}, not a ViewSpec or a sequence of them")
    return specs


def _load() -> None:
    """livevis's own views, then each installed plug-in's; a plug-in that fails to load is left out with one
    log line, and livevis goes on without it."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for path in BUILTIN:
        for spec in _as_specs(resolve(path), path):
            register(spec)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            for spec in _as_specs(entry.load(), f"the entry point {entry.name} = {entry.value}"):
                register(spec)
        except Exception as exc:  # a broken plug-in must not take livevis down
            log.warning("the view plug-in %s (%s) was not loaded: %s", entry.name, entry.value, exc)
