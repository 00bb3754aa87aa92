"""An action of the window, as data: the window's own, a view option's key and a pane's own are all one of
these (see `livevis.app.window.actions`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtWidgets import QMainWindow


@dataclass(frozen=True)
class ActionSpec:
    id: str
    title: str
    keys: tuple[str, ...]
    description: str
    handler: str | Callable[[QMainWindow], object]
    """What the action calls: a method of the window by name (of the pane, for a pane's action), or a
    function of the window."""
    menu: str = ""
    """Top-level menu it is listed in ("" for keys only)."""
    toolbar: bool = False
    checkable: bool = False
    short: str = ""
    """Its text on the toolbar where the title is too long for it."""
    follows: str = ""
    """The live state's yes/no field it shows checked (`frozen`, `zoomed`)."""
    pane: str = ""
    """The pane whose method `handler` names ("" for the window's)."""
