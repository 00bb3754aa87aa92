"""Every action of the window in one table: id, title, keys, where it shows, and the method it calls.

The menus, the toolbar, the shortcuts and the help overlay are all built from `ACTIONS`. Keys follow
the Deep Visualization Toolbox: arrows (and j/l/i/k) move the selected unit, u/o step through layers,
space freezes the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu, QToolBar

from livevis.state import CONCEPT_COUNTS


@dataclass(frozen=True)
class ActionSpec:
    id: str
    title: str
    keys: tuple[str, ...]
    description: str
    handler: str | Callable[[QMainWindow], object]
    """The window's method called when the action triggers, by name, or a function of the window."""
    menu: str = ""
    """Top-level menu it is listed in ("" for keys only)."""
    toolbar: bool = False
    checkable: bool = False
    short: str = ""
    """Its text on the toolbar where the title is too long for it."""


def _next_in(values, current):
    return values[(values.index(current) + 1) % len(values)]


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "left", "Channel left", ("Left", "J"), "select the channel to the left", lambda w: w.move_selection(0, -1)
    ),
    ActionSpec(
        "right", "Channel right", ("Right", "L"), "select the channel to the right", lambda w: w.move_selection(0, 1)
    ),
    ActionSpec("up", "Channel above", ("Up", "I"), "select the channel above", lambda w: w.move_selection(-1, 0)),
    ActionSpec("down", "Channel below", ("Down", "K"), "select the channel below", lambda w: w.move_selection(1, 0)),
    ActionSpec("previous_layer", "Previous layer", ("U",), "previous layer", lambda w: w.step_layer(-1), "View"),
    ActionSpec("next_layer", "Next layer", ("O",), "next layer", lambda w: w.step_layer(1), "View"),
    ActionSpec(
        "open_files",
        "Open image or video files...",
        ("Ctrl+O",),
        "open image or video files",
        lambda w: w.sources.choose_files(),
        "File",
        toolbar=True,
        short="Open...",
    ),
    ActionSpec(
        "open_folder",
        "Open a folder of images...",
        ("Ctrl+Shift+O",),
        "open a folder of images",
        lambda w: w.sources.choose_folder(),
        "File",
    ),
    ActionSpec(
        "open_url",
        "Open URL...",
        ("Ctrl+L",),
        "open a network camera: a phone (http://PHONE:8080/video) or an IP camera (rtsp://...)",
        lambda w: w.sources.choose_url(),
        "File",
    ),
    ActionSpec(
        "camera_settings",
        "Camera settings...",
        (),
        "a camera's resolution and frame rate, kept per camera",
        lambda w: w.sources.choose_camera_settings(),
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
        "toggle_source",
        "Camera / files",
        ("C",),
        "switch between the camera and files",
        lambda w: w.sources.toggle(),
        "File",
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
        "record the overlay, the grid, the backprop and concepts panes to MP4 files",
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
        "backprop",
        "Backprop mode",
        ("B",),
        "cycle the backprop pane: off, grad, deconv, guided, gradcam",
        "cycle_backprop",
        "View",
    ),
    ActionSpec(
        "backprop_view",
        "Backprop view",
        ("N",),
        "cycle the backprop view: raw, gray, norm, normblur",
        "cycle_backprop_view",
        "View",
    ),
    ActionSpec(
        "attention",
        "Attention mode",
        ("A",),
        "a transformer's attention pane: off, every head at the block, or the rollout up to it",
        "cycle_attention",
        "View",
    ),
    ActionSpec(
        "attention_head",
        "Next attention head",
        ("V",),
        "the attention head shown on the frame: the mean of the heads, then each head in turn",
        "cycle_attention_head",
        "View",
    ),
    ActionSpec(
        "optimise",
        "Optimise an image for the channel",
        ("D",),
        "optimise an image that excites the selected channel (in the background)",
        "optimise_unit",
        "View",
    ),
    ActionSpec(
        "concepts",
        "Concepts",
        ("X",),
        "cut the layer into a few concepts (NMF), on the frame",
        lambda w: setattr(w.state, "concepts", not w.state.concepts),
        "View",
        checkable=True,
    ),
    ActionSpec(
        "concept_count",
        "More concepts",
        ("Shift+X",),
        "cut the layer into one more concept (2-12, cycles)",
        lambda w: setattr(w.state, "concept_count", _next_in(CONCEPT_COUNTS, w.state.concept_count)),
        "View",
    ),
    ActionSpec(
        "zoom",
        "Swap overlay and zoom",
        ("Z",),
        "swap the overlay and the zoomed channel in the selected-channel pane",
        "toggle_zoom",
        "View",
        checkable=True,
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

SHORTCUTS: dict[str, tuple[tuple[str, ...], str]] = {a.id: (a.keys, a.description) for a in ACTIONS if a.keys}
"""Every default shortcut by action id: (keys, description)."""

MENUS = ("File", "View", "Model", "Help")


def help_rows() -> list[tuple[str, str]]:
    return [(", ".join(keys), description) for keys, description in SHORTCUTS.values()]


def build_actions(window: QMainWindow, menus: dict[str, QMenu], toolbar: QToolBar) -> dict[str, QAction]:
    """One QAction per spec, with its shortcuts window-wide, listed in its menu and the toolbar."""
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.title, window)
        action.setShortcuts([QKeySequence(k) for k in spec.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{spec.description} ({', '.join(spec.keys)})" if spec.keys else spec.description)
        action.setCheckable(spec.checkable)
        if spec.short:
            action.setIconText(spec.short)
        if callable(spec.handler):
            action.triggered.connect(lambda _=False, handler=spec.handler: handler(window))
        else:
            action.triggered.connect(lambda _=False, name=spec.handler: getattr(window, name)())
        window.addAction(action)
        if spec.menu:
            menus[spec.menu].addAction(action)
        if spec.toolbar:
            toolbar.addAction(action)
        actions[spec.id] = action
    return actions
