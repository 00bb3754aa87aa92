"""Every default shortcut in one place; the menus, the actions and the help overlay read from here.

Modelled on the Deep Visualization Toolbox's keys: arrows (and j/l/k/i) move the selected unit,
u/o step through layers, space freezes the frame.
"""

from __future__ import annotations

SHORTCUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "left": (("Left", "J"), "select the channel to the left"),
    "right": (("Right", "L"), "select the channel to the right"),
    "up": (("Up", "I"), "select the channel above"),
    "down": (("Down", "K"), "select the channel below"),
    "previous_layer": (("U",), "previous layer"),
    "next_layer": (("O",), "next layer"),
    "freeze": (("Space", "F"), "freeze / unfreeze the frame"),
    "toggle_source": (("C",), "switch between the camera and files"),
    "previous_file": (("PgUp",), "previous file of a folder or selection"),
    "next_file": (("PgDown",), "next file of a folder or selection"),
    "boost_channel": (("T",), "cycle the per-channel boost (0, 0.3, 0.5, 0.8, 1)"),
    "boost_gamma": (("Shift+T",), "cycle the gamma boost (1, 0.7, 0.5, 0.3)"),
    "colormap": (("M",), "next colormap"),
    "zoom": (("Z",), "swap the overlay and the zoomed channel in the selected-channel pane"),
    "snapshot": (("S", "Ctrl+S"), "save frame, grid, overlay and activations"),
    "help": (("H",), "show or hide this help"),
    "quit": (("Q", "Ctrl+Q"), "quit"),
    "open_files": (("Ctrl+O",), "open image or video files"),
    "open_folder": (("Ctrl+Shift+O",), "open a folder of images"),
}

CHANNEL_BOOSTS = (0.0, 0.3, 0.5, 0.8, 1.0)
GAMMA_BOOSTS = (1.0, 0.7, 0.5, 0.3)


def help_rows() -> list[tuple[str, str]]:
    return [(", ".join(keys), description) for keys, description in SHORTCUTS.values()]
