"""The toolbar's option boxes and the View menu's choices, bound both ways to the live state.

A box sets the state when the user picks a value and follows the state when anything else changes it
(a key, a menu, restored settings): no box keeps a value of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PyQt6.QtCore import QObject, Qt
from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QComboBox, QLabel, QMenu, QSlider, QToolBar

from livevis import views
from livevis.state import CHANNEL_BOOSTS, COLORMAPS, GAMMA_BOOSTS, NORMALIZATIONS, OVERLAY_MODES


def _number_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bind_combo(combo: QComboBox, state, name: str, parse: Callable = str) -> None:
    def follow(value) -> None:
        text = _number_text(value)
        if combo.findText(text) < 0:  # a value from the settings that is not one of the steps
            combo.addItem(text)
        combo.setCurrentText(text)

    combo.textActivated.connect(lambda text: setattr(state, name, parse(text)))
    getattr(state.events, name).connect(follow)
    follow(getattr(state, name))


def bind_choice_menu(menu: QMenu, owner: QObject, state, name: str, values: Sequence[str]) -> QActionGroup:
    group = QActionGroup(owner)
    for value in values:
        action = QAction(value, owner, checkable=True)
        action.triggered.connect(lambda _=False, v=value: setattr(state, name, v))
        group.addAction(action)
        menu.addAction(action)

    def follow(current) -> None:
        for action in group.actions():
            action.setChecked(action.text() == current)

    getattr(state.events, name).connect(follow)
    follow(getattr(state, name))
    return group


class OptionControls:
    """The model box and the drawing options in the toolbar; the drawing choices in the View menu."""

    def __init__(
        self,
        toolbar: QToolBar,
        view_menu: QMenu,
        state,
        models: Sequence[str],
        choose_model: Callable[[str], None],
    ):
        self.state = state
        self.model = self._combo(toolbar, "model", models)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(10)  # the longest names are cut in the box, whole in its list
        self.model.textActivated.connect(choose_model)
        self.colormap = self._combo(toolbar, "colormap", COLORMAPS)
        bind_combo(self.colormap, state, "colormap")
        self.norm = self._combo(toolbar, "norm", NORMALIZATIONS)
        bind_combo(self.norm, state, "norm")
        self.overlay_mode = self._combo(toolbar, "overlay", OVERLAY_MODES)
        bind_combo(self.overlay_mode, state, "overlay_mode")
        toolbar.addWidget(QLabel(" opacity"))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(64)
        self.opacity.setValue(round(state.opacity * 100))
        self.opacity.valueChanged.connect(lambda v: setattr(state, "opacity", v / 100))
        state.events.opacity.connect(lambda v: self.opacity.setValue(round(v * 100)))
        toolbar.addWidget(self.opacity)
        self.boost = self._combo(toolbar, "boost", [_number_text(b) for b in CHANNEL_BOOSTS])
        self.boost.setToolTip("per-channel boost: 0 keeps the layer's scale, 1 scales each channel alone (T)")
        bind_combo(self.boost, state, "boost", float)
        self.gamma = self._combo(toolbar, "gamma", [_number_text(g) for g in GAMMA_BOOSTS])
        self.gamma.setToolTip("gamma boost: below 1 lifts weak responses (Shift+T)")
        bind_combo(self.gamma, state, "gamma", float)
        self.view_options: dict[str, QComboBox] = {}
        """A box for each view option that asks for one on the toolbar (the backprop mode and view)."""
        for option in views.options().values():
            if option.toolbar and option.live and option.choices:
                combo = self._combo(toolbar, option.toolbar, [str(c) for c in option.choices])
                combo.setToolTip(f"{option.help} ({option.key})" if option.key else option.help)
                bind_combo(combo, state, option.name, option.parse)
                self.view_options[option.name] = combo
        owner = toolbar.parent()
        self.colormap_group = bind_choice_menu(view_menu.addMenu("Colormap"), owner, state, "colormap", COLORMAPS)
        self.norm_group = bind_choice_menu(view_menu.addMenu("Normalisation"), owner, state, "norm", NORMALIZATIONS)
        self.mode_group = bind_choice_menu(
            view_menu.addMenu("Overlay mode"), owner, state, "overlay_mode", OVERLAY_MODES
        )

    @staticmethod
    def _combo(toolbar: QToolBar, label: str, values: Sequence[str]) -> QComboBox:
        toolbar.addWidget(QLabel(f" {label}"))
        combo = QComboBox()
        combo.addItems(list(values))
        combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        toolbar.addWidget(combo)
        return combo
