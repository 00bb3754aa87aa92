"""Every action of the window in one table: id, title, keys, where it shows, and what it calls.

The menus, the toolbar, the shortcuts, the help overlay (h) and the README's keys table are all built from
`all_actions()`: the window's own (`ACTIONS`), a key for each view option that declares one (it steps the
option through its choices) and the panes' own (`Pane.ACTIONS`). Keys follow the Deep Visualization Toolbox:
arrows (and j/l/i/k) move the selected unit, u/o step through layers, space freezes the frame.

`python -m livevis.app.window.actions --markdown` prints the keys table the README shows; `--readme FILE`
writes it into FILE between its two keys markers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu, QToolBar

from livevis import views
from livevis.app.window.action_spec import ActionSpec


def _source(method: str) -> Callable[[QMainWindow], object]:
    return lambda window: getattr(window.sources, method)()


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("previous_layer", "Previous layer", ("U",), "previous layer", lambda w: w.step_layer(-1), "View"),
    ActionSpec("next_layer", "Next layer", ("O",), "next layer", lambda w: w.step_layer(1), "View"),
    ActionSpec(
        "open_files",
        "Open image or video files...",
        ("Ctrl+O",),
        "open image or video files",
        _source("choose_files"),
        "File",
        toolbar=True,
        short="Open...",
    ),
    ActionSpec(
        "open_folder",
        "Open a folder of images...",
        ("Ctrl+Shift+O",),
        "open a folder of images",
        _source("choose_folder"),
        "File",
    ),
    ActionSpec(
        "open_url",
        "Open URL...",
        ("Ctrl+L",),
        "open a network camera: a phone (http://PHONE:8080/video) or an IP camera (rtsp://...)",
        _source("choose_url"),
        "File",
    ),
    ActionSpec(
        "camera_settings",
        "Camera settings...",
        (),
        "a camera's resolution and frame rate, kept per camera",
        _source("choose_camera_settings"),
        "File",
    ),
    ActionSpec(
        "draw",
        "Draw...",
        ("P",),
        "draw on a pad: each stroke flows through the model (right-click clears)",
        lambda w: w.sources.open("draw"),
        "File",
        toolbar=True,
    ),
    ActionSpec(
        "toggle_source", "Camera / files", ("C",), "switch between the camera and files", _source("toggle"), "File"
    ),
    ActionSpec(
        "previous_file",
        "Previous file",
        ("PgUp",),
        "previous file of a folder or selection",
        lambda w: w.capture.step(-1),
        "File",
    ),
    ActionSpec(
        "next_file", "Next file", ("PgDown",), "next file of a folder or selection", lambda w: w.capture.step(1), "File"
    ),
    ActionSpec(
        "freeze",
        "Freeze",
        ("Space", "F"),
        "freeze / unfreeze the frame",
        "toggle_freeze",
        "File",
        toolbar=True,
        checkable=True,
        follows="frozen",
    ),
    ActionSpec(
        "snapshot",
        "Snapshot",
        ("S", "Ctrl+S"),
        "save every view shown and the activations",
        "snapshot",
        "File",
        toolbar=True,
    ),
    ActionSpec(
        "record",
        "Record",
        ("R",),
        "record the views on the frame and the grid to MP4 files, one per view",
        lambda w: w.recording.toggle(),
        "File",
        toolbar=True,
        checkable=True,
    ),
    ActionSpec(
        "mine",
        "Mine a folder...",
        (),
        "the selected layer's top images in a folder, for the unit pane",
        lambda w: w.choose_folder_to_mine(),
        "File",
    ),
    ActionSpec(
        "load_weights",
        "Load weights file...",
        (),
        "load a state-dict file into the running model",
        lambda w: w.model_menu.choose_weights(),
        "File",
    ),
    ActionSpec("quit", "Quit", ("Q", "Ctrl+Q"), "quit", "close", "File"),
    ActionSpec(
        "boost_channel",
        "Per-channel boost",
        ("T",),
        "cycle the per-channel boost (0, 0.3, 0.5, 0.8, 1)",
        "cycle_channel_boost",
        "View",
    ),
    ActionSpec(
        "boost_gamma", "Gamma boost", ("Shift+T",), "cycle the gamma boost (1, 0.7, 0.5, 0.3)", "cycle_gamma", "View"
    ),
    ActionSpec("colormap", "Next colormap", ("M",), "next colormap", "cycle_colormap", "View"),
    ActionSpec(
        "optimise",
        "Optimise an image for the channel",
        ("D",),
        "optimise an image that excites the selected channel (in the background)",
        "optimise_unit",
        "View",
    ),
    ActionSpec(
        "presentation",
        "Presentation mode",
        ("F11",),
        "full screen with the grid and the selected channel on the frame, large (Esc leaves it)",
        "toggle_presentation",
        "View",
        checkable=True,
    ),
    ActionSpec(
        "leave_presentation",
        "Leave the presentation mode",
        ("Esc",),
        "leave the presentation mode",
        lambda w: w.set_presentation(False),
    ),
    ActionSpec(
        "reset_layout",
        "Reset layout",
        (),
        "the panes back where they start, the default ones open",
        "reset_layout",
        "View",
    ),
    ActionSpec(
        "help", "Keyboard shortcuts", ("H",), "show or hide this help", lambda w: w.help_overlay.toggle(), "Help"
    ),
    ActionSpec("about", "About livevis", (), "versions and what livevis is", "show_about", "Help"),
)
"""The window's own actions."""

MENUS = ("File", "View", "Model", "Help")


def option_actions() -> tuple[ActionSpec, ...]:
    """A key for each view option that declares one: it steps the option through its choices (a yes/no one
    is shown checked while it is on)."""
    return tuple(
        ActionSpec(
            option.name,
            option.title or option.name,
            (option.key,),
            option.key_help or f"the next {option.title or option.name}: {', '.join(map(str, option.choices))}",
            _stepper(option),
            "View",
            checkable=set(option.choices) == {False, True},
            follows=option.name if set(option.choices) == {False, True} else "",
        )
        for option in views.options().values()
        if option.key and option.live
    )


def _stepper(option: views.Option) -> Callable[[QMainWindow], object]:
    return lambda window: setattr(window.state, option.name, option.next(getattr(window.state, option.name)))


def pane_actions() -> tuple[ActionSpec, ...]:
    """The panes' own actions, each naming its pane."""
    from livevis.app.tabs.live import pane_specs

    found = []
    for spec in pane_specs():
        try:
            pane = views.resolve(spec.pane) if isinstance(spec.pane, str) else spec.pane
        except Exception:  # a plug-in pane that cannot be imported has no keys (the Live tab says why)
            continue
        found += [replace(action, pane=spec.id) for action in pane.ACTIONS]
    return tuple(found)


def all_actions() -> tuple[ActionSpec, ...]:
    """Every action: the grid's arrows first, then the window's, the views' options' and the other panes'."""
    panes = pane_actions()
    first = tuple(action for action in panes if action.pane == "grid")
    return (*first, *ACTIONS, *option_actions(), *(action for action in panes if action.pane != "grid"))


def help_rows(actions: tuple[ActionSpec, ...] | None = None) -> list[tuple[str, str]]:
    """(keys, description) of every action that has keys, as the help overlay lists them."""
    return [(", ".join(a.keys), a.description) for a in (actions or all_actions()) if a.keys]


def markdown_table() -> str:
    """The keys table of the README (generated from the same actions, so it cannot drift): two keys a row."""
    rows = help_rows()
    lines = ["| Keys | What they do | Keys | What they do |", "|---|---|---|---|"]
    for first in range(0, len(rows), 2):
        pair = rows[first : first + 2] + [("", "")] * (2 - len(rows[first : first + 2]))
        lines.append("| " + " | ".join(f"{keys} | {what}" for keys, what in pair) + " |")
    return "\n".join(lines)


KEYS_BEGIN = "<!-- keys: generated by python -m livevis.app.window.actions --markdown -->"
KEYS_END = "<!-- /keys -->"


def with_keys_table(text: str) -> str:
    """A document (the README) with the keys table between its markers made anew."""
    head, found, rest = text.partition(KEYS_BEGIN)
    _, ends, tail = rest.partition(KEYS_END)
    if not found or not ends:
        raise ValueError(f"the document has no {KEYS_BEGIN} ... {KEYS_END} markers")
    return f"{head}{KEYS_BEGIN}\n{markdown_table()}\n{KEYS_END}{tail}"


def build_actions(window: QMainWindow, menus: dict[str, QMenu], toolbar: QToolBar) -> dict[str, QAction]:
    """One QAction per action, with its shortcuts window-wide, listed in its menu and the toolbar; a pane's
    action only where its pane was built."""
    actions: dict[str, QAction] = {}
    for spec in all_actions():
        if spec.pane and spec.pane not in window.live.panes:
            continue
        action = QAction(spec.title, window)
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{spec.description} ({', '.join(spec.keys)})" if spec.keys else spec.description)
        action.setCheckable(spec.checkable)
        if spec.short:
            action.setIconText(spec.short)
        action.triggered.connect(lambda _=False, s=spec: _run(window, s))
        if spec.follows:
            getattr(window.state.events, spec.follows).connect(_checked_by(action))
            action.setChecked(bool(getattr(window.state, spec.follows)))
        window.addAction(action)
        if spec.menu:
            menus[spec.menu].addAction(action)
        if spec.toolbar:
            toolbar.addAction(action)
        actions[spec.id] = action
    return actions


def _checked_by(action: QAction) -> Callable[..., None]:
    """Checks the action as a yes/no field of the state changes (its events carry the new and old value)."""
    return lambda value, *_: action.setChecked(bool(value))


def _run(window: QMainWindow, spec: ActionSpec) -> None:
    if callable(spec.handler):
        spec.handler(window)
    else:
        getattr(window.live.panes[spec.pane] if spec.pane else window, spec.handler)()


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown_table())
    elif len(sys.argv) == 3 and sys.argv[1] == "--readme":
        readme = Path(sys.argv[2])
        readme.write_text(with_keys_table(readme.read_text()))
    else:
        sys.exit("usage: python -m livevis.app.window.actions --markdown | --readme README.md")
