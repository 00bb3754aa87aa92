"""The Live tab: panes that each show some of the views a frame produced, keyed by the views' names, each in
a dock that can be moved, tabbed, floated (onto a second screen or a projector), closed and reopened from
the View menu.

A pane declares the views it shows (`views`) and draws them from a `LiveResult` (`show_result`); the tab asks
the pipeline for the union of what its open panes show, so a view nobody shows is never computed. `PANES` is
the one table the docks, their default places, the View menu's entries and the presentation mode are built
from: adding a pane is one `Pane` subclass and one row.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PyQt6.QtCore import QByteArray, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QWidget,
)

from livevis.app.concepts_pane import ConceptsPane
from livevis.app.model_loader import ModelInfo
from livevis.app.pane import Pane, column
from livevis.app.transformer_panes import AttentionPane, PrefixTokensPane, TokenNormsPane
from livevis.app.worker import LiveResult
from livevis.state import LiveState
from livevis.widgets.channel_grid import ChannelGrid
from livevis.widgets.draw_pad import DrawPad
from livevis.widgets.image_view import ImageView
from livevis.widgets.layer_tree import LayerTree
from livevis.widgets.predictions import PredictionsView
from livevis.widgets.unit_view import UnitView
from livevis.widgets.units_list import UnitsAtPoint


class InputPane(Pane):
    """The frame with the network's crop dashed (click it: which units fire there). A tensor input is shown
    as its channels, each signed; the drawing pad takes the frame's place while it is the source."""

    FRAME_TITLE = "input (dashed: what the network sees; click: units firing there)"
    PAD_TITLE = "draw here (right-click clears); below: what the network sees"

    @property
    def views(self) -> tuple[str, ...]:
        return ("frame_display", *(("input_signed",) if self.tensor_input else ()))

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.tensor_input = False
        self.image = ImageView(placeholder="No input yet.\nOpen a camera, files or a folder (File menu).")
        self.image.setMouseTracking(True)
        self.units = UnitsAtPoint()
        self.units.hide()
        self.pad = DrawPad()
        self.pad.setToolTip("draw with the mouse; right-click or Backspace clears")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.image)
        self.stack.addWidget(self.pad)
        self.network_input = ImageView(smooth=False, placeholder="what the network sees")
        self.network_input.setMaximumHeight(150)
        self.network_input.hide()
        self.setLayout(column(self.stack, self.network_input, self.units))
        self.set_title(self.FRAME_TITLE)

    def show_pad(self, drawing: bool) -> None:
        """The drawing pad in place of the frame, with what the network sees of the drawing under it."""
        self.stack.setCurrentIndex(1 if drawing else 0)
        self.network_input.setVisible(drawing)
        self.set_title(self.PAD_TITLE if drawing else self.FRAME_TITLE)
        if drawing:
            self.wanted.emit(True)
            self.pad.setFocus()

    def show_result(self, result, model):
        views = result.views
        if self.stack.currentWidget() is self.pad:
            self.network_input.set_image(views.frame)
        if views.tensor_input != self.tensor_input:  # ask for (or stop asking for) the signed channels
            self.tensor_input = views.tensor_input
            self.views_changed.emit()
        signed = views.images.get("input_signed") if views.tensor_input else None
        if signed is not None:
            self.image.set_image(signed)
            self.image.set_rect(None)
        else:
            shown = views.frame if views.frame_display is None else views.frame_display
            self.image.set_image(shown, views.frame_size)
            self.image.set_rect((views.crop.x, views.crop.y, views.crop.w, views.crop.h))


class PredictionsPane(Pane):
    """The top-5 classes (click one: Grad-CAM explains it); a network that does not classify has none."""

    views = ("predictions",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.view = PredictionsView()
        self.none = QLabel("this network does not output classes")
        self.none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.none.hide()
        self.setLayout(column(self.view, self.none))
        self.set_title("predictions (click one: Grad-CAM explains it)")

    def show_result(self, result, model):
        classifier = model is None or bool(model.categories)
        self.view.setVisible(classifier)
        self.none.setVisible(not classifier)
        note = "" if model is None or model.trained else "UNTRAINED (random weights)"
        self.view.set_predictions([(p.label, p.probability) for p in result.views.top5], note)


class LayersPane(Pane):
    """The model's layers as a tree; the state's layer selected."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.tree = LayerTree(state)
        self.tree.setMinimumWidth(200)
        self.setLayout(column(self.tree))
        self.set_title("layers (u / o step through them)")

    def show_result(self, result, model):
        pass


class GridPane(Pane):
    """Every channel of the selected layer; the state's channel outlined."""

    views = ("grid",)
    computed_while_closed = True

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.grid = ChannelGrid(state)
        self.setLayout(column(self.grid))
        self.set_title("layer")

    def show_result(self, result, model):
        views = result.views
        self.grid.set_grid(views.grid, views.grid_layout, views.channel_max, views.channel_mean)
        self.set_title(f"{views.layer.label}  ({views.layer.channels} channels; click or arrows to pick)")


class SelectedPane(Pane):
    """The selected channel on the frame or zoomed (the state's `zoomed` swaps them), and its numbers."""

    views = ("overlay", "channel_tile", "peak")

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.overlay = ImageView(placeholder="selected channel")
        self.tile = ImageView(smooth=False, placeholder="zoomed channel")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.overlay)
        self.stack.addWidget(self.tile)
        self.small = ImageView(smooth=False)
        self.small.setMinimumSize(100, 100)
        self.small.setMaximumHeight(110)
        self.info = QLabel("-")
        # a fixed size: new numbers every frame must not re-lay out (and repaint) the whole window
        self.info.setFixedSize(240, 90)
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout()
        row.addWidget(self.small, 1)
        row.addWidget(self.info, 1)
        layout = column(self.stack)
        layout.addLayout(row)
        self.setLayout(layout)
        self.set_title("selected channel on the frame (z swaps)")
        self._last: LiveResult | None = None
        state.events.zoomed.connect(self._on_zoomed)

    def keep_useful(self, size: QSize) -> None:
        """The frame with the channel never gets smaller than `size`: panes opened beside it take their room
        from elsewhere."""
        self.stack.setMinimumSize(size)

    def _on_zoomed(self, zoomed: bool) -> None:
        self.stack.setCurrentIndex(1 if zoomed else 0)
        if self._last is not None:
            self.show_result(self._last, None)

    def show_result(self, result, model):
        self._last = result
        views = result.views
        self.overlay.set_image(views.overlay, views.frame_size)
        self.tile.set_image(views.channel_tile)
        self.small.set_image(views.overlay if self.state.zoomed else views.channel_tile)
        peak = views.peak
        if peak is not None:
            self.info.setText(
                f"channel {views.channel} of {views.layer.name}\nmax {peak.value:.4g} at cell {peak.cell}\n"
                f"frame x={peak.frame_xy[0]}, y={peak.frame_xy[1]}\nmean {views.channel_mean[views.channel]:.4g}"
            )


class BackpropPane(Pane):
    """What drives the selected unit (backprop, deconv, guided backprop) or where a class is seen
    (Grad-CAM); open while the state's `backprop` is not off, and computed only then."""

    views = ("backprop",)
    DEFAULT_MODE = "guided"

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.image = ImageView(placeholder="b turns on backprop of the selected unit")
        self.setLayout(column(self.image))
        self.set_title("backprop (b: mode, n: view)")
        self.last_mode = state.backprop if state.backprop != "off" else self.DEFAULT_MODE
        state.events.backprop.connect(self._follow)

    def _follow(self, mode: str) -> None:
        if mode != "off":
            self.last_mode = mode
        self.wanted.emit(mode != "off")

    @property
    def active(self) -> bool:
        return self.state.backprop != "off"

    def opened(self, is_open: bool) -> None:
        if is_open != self.active:
            self.state.backprop = self.last_mode if is_open else "off"

    def wants_open(self) -> bool | None:
        return self.active

    def show_result(self, result, model):
        views = result.views
        image = views.images.get("backprop")
        if image is None:
            return
        self.image.set_image(image, views.frame_size)
        options, values = result.options, views.values
        if options.backprop == "gradcam":
            index = values.get("backprop_class")
            label = model.categories[index] if model is not None and index is not None else index
            picked = "picked" if options.class_index is not None else "top-1"
            path = values.get("gradcam_layer", views.layer.path)
            row = model.find(path) if model is not None else None
            self.set_title(f"Grad-CAM of {label} ({picked}; click a prediction) at {row[1] if row else path}, "
                           "the last layer with maps")  # fmt: skip
        else:
            count = values.get("backprop_rule_count", 0)
            rule = f"the {options.backprop} rule at {count} ReLU calls"
            if count == 0 and options.backprop != "grad":  # GELU and the like: the rule has nothing to act on
                rule = f"no ReLU in this model: {options.backprop} is the plain gradient here"
            blind = " (the same for every image in this network: no max-pooling; try guided)" if values.get(
                "backprop_sees_the_image", True) is False else ""  # fmt: skip
            self.set_title(f"{options.backprop} ({options.backprop_view}) of {views.layer.name}:{views.channel}"
                           f" - {rule}{blind}")  # fmt: skip


class UnitPane(Pane):
    """The selected unit explained: its top images from a mined folder with their deconvolutions, and an
    image optimised to excite it (drawn by the unit controller, not from the live frames)."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.view = UnitView()
        self.view.title.hide()  # the dock's title says which unit
        self.view.title_changed.connect(lambda text: self.set_title(f"{text} (d optimises an image for it)"))
        self.setLayout(column(self.view))
        self.set_title("unit (d optimises an image for it)")

    def show_result(self, result, model):
        pass


@dataclass(frozen=True)
class PaneSpec:
    id: str
    """The dock's object name, under which its place is saved: never renamed."""
    title: str
    """Its entry in the View menu."""
    build: Callable[[LiveState], Pane]
    beside: str = ""
    """The pane, listed before it, that it is placed beside in the default layout ("" for the first)."""
    side: str = "right"
    """right of `beside` (a new column), below it (in its column), or tabbed with it."""
    share: float = 0.3
    """Its share of the room in the default layout: of the tab's width for a column, of its column's
    height for a pane below another."""
    open: bool = True
    """Open in the default layout."""
    presented: bool = False
    """Shown in the presentation mode (when it is open at all)."""


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("input", "Input", InputPane, share=0.22),
    PaneSpec("grid", "Channels of the layer", GridPane, beside="input", share=0.36, presented=True),
    PaneSpec("selected", "Selected channel", SelectedPane, beside="grid", share=0.42, presented=True),
    PaneSpec("predictions", "Predictions", PredictionsPane, beside="input", side="below", share=0.2),
    PaneSpec("layers", "Layers", LayersPane, beside="predictions", side="below", share=0.42),
    PaneSpec("backprop", "Backprop", BackpropPane, beside="grid", side="below", share=0.45, open=False,
             presented=True),
    PaneSpec("unit", "Unit", UnitPane, beside="selected", side="below", share=0.36, open=False),
    PaneSpec("prefix", "Prefix tokens", PrefixTokensPane, beside="grid", side="below", share=0.18, open=False),
    PaneSpec("attention", "Attention", AttentionPane, beside="backprop", side="tab", open=False, presented=True),
    PaneSpec("token_norms", "Token norms", TokenNormsPane, beside="attention", side="tab", open=False),
    PaneSpec("concepts", "Concepts", ConceptsPane, beside="backprop", side="tab", open=False, presented=True),
)  # fmt: skip
"""Every pane of the Live tab, in the order the default layout places them."""
SPECS = {spec.id: spec for spec in PANES}

LAYOUT_FORMAT = 1
LAYOUT_VERSION = zlib.crc32(f"{LAYOUT_FORMAT}:{[(p.id, p.beside, p.side) for p in PANES]}".encode()) & 0x7FFFFFFF
"""Saved with the layout: a layout saved for another set of panes is not restored (the default is used)."""

USEFUL_SHARE = (0.3, 0.4)
"""The least share of the tab's (width, height) the frame with the selected channel keeps when panes open
beside it."""


class PaneDock(QDockWidget):
    """A pane's dock: titled by the pane, movable, floatable and closable (`closed`: by its close button)."""

    closed = pyqtSignal()

    def __init__(self, spec: PaneSpec, pane: Pane, parent: QWidget):
        super().__init__(spec.title, parent)
        self.setObjectName(spec.id)
        self.setWidget(pane)
        self.setWindowTitle(pane.title_text() or spec.title)
        pane.title_changed.connect(self.setWindowTitle)

    def closeEvent(self, event) -> None:
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()


class LiveTab(QMainWindow):
    """The panes of `PANES` in docks, in a main window of their own inside the tab (so the other tabs keep
    the whole window)."""

    display_size_changed = pyqtSignal()
    views_changed = pyqtSignal()
    """The views the open panes show changed (a pane opened or closed)."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowFlags(Qt.WindowType.Widget)  # a page of the tabs, not a window
        self.setDockNestingEnabled(True)
        self.state = state
        self.panes: dict[str, Pane] = {spec.id: spec.build(state) for spec in PANES}
        self.docks: dict[str, PaneDock] = {spec.id: PaneDock(spec, self.panes[spec.id], self) for spec in PANES}
        self._arranging = False
        self._sizes_pending = False
        self._restore_on_show: QByteArray | None = None
        self._presenting: QByteArray | None = None
        self.menu_actions: dict[str, QAction] = {}
        for spec in PANES:
            dock, pane = self.docks[spec.id], self.panes[spec.id]
            dock.closed.connect(lambda i=spec.id: self._opened(i, False))
            pane.wanted.connect(lambda is_open, i=spec.id: self.set_open(i, is_open))
            pane.views_changed.connect(self.views_changed)
        for view in (self.input.image, self.selected.overlay, self.grid_pane.grid, self.attention.overlay):
            view.resized.connect(lambda *_: self.display_size_changed.emit())
        self.reset_layout()

    # the panes other parts of the app reach
    input = property(lambda self: self.panes["input"])
    predictions = property(lambda self: self.panes["predictions"])
    layer_tree = property(lambda self: self.panes["layers"].tree)
    grid_pane = property(lambda self: self.panes["grid"])
    selected = property(lambda self: self.panes["selected"])
    backprop = property(lambda self: self.panes["backprop"])
    unit = property(lambda self: self.panes["unit"].view)
    attention = property(lambda self: self.panes["attention"])
    token_norms = property(lambda self: self.panes["token_norms"])
    prefix = property(lambda self: self.panes["prefix"])

    def set_model(self, model: ModelInfo) -> None:
        """A model was loaded: the panes that depend on what it is (a transformer's) open or close."""
        for pane in self.panes.values():
            pane.set_model(model)

    # ------------------------------------------------------------------ open and closed panes
    def is_open(self, pane_id: str) -> bool:
        """Open: shown, floating, or tabbed behind another pane, in the tab shown or not (not closed)."""
        return not self.docks[pane_id].isHidden()

    def set_open(self, pane_id: str, is_open: bool) -> None:
        """Opens (and brings to the front) or closes a pane. A pane opened where it would squeeze the frame
        with the selected channel below its useful size is tabbed with another pane instead."""
        dock = self.docks[pane_id]
        if is_open == self.is_open(pane_id):
            if is_open:
                dock.raise_()  # tabbed behind another: to the front
            return
        if not is_open:
            dock.hide()
            self._opened(pane_id, False)
            return
        if self.dockWidgetArea(dock) == Qt.DockWidgetArea.NoDockWidgetArea and not dock.isFloating():
            self._place(pane_id)  # taken out of the layout by the presentation mode
        dock.show()
        if not dock.isFloating() and not self._fits():
            self._tab_elsewhere(pane_id)
        dock.raise_()
        self._opened(pane_id, True)

    def _place(self, pane_id: str) -> None:
        """Back into the layout: beside its default neighbour where that one is docked, else at the right."""
        spec = SPECS[pane_id]
        docked = [i for i in self.docks if i != pane_id and self._docked(i) and not self.docks[i].isHidden()]
        if spec.beside in docked:
            side = Qt.Orientation.Horizontal if spec.side == "right" or self.presenting else Qt.Orientation.Vertical
            self.splitDockWidget(self.docks[spec.beside], self.docks[pane_id], side)
        elif docked:
            self.splitDockWidget(self.docks[docked[-1]], self.docks[pane_id], Qt.Orientation.Horizontal)
        else:
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.docks[pane_id])

    def _fits(self) -> bool:
        needed = self.layout().minimumSize()
        return needed.width() <= self.width() and needed.height() <= self.height()

    def _tab_elsewhere(self, pane_id: str) -> None:
        """Tabs the pane with the largest docked pane that is neither the selected channel nor the grid (the
        grid only where there is no other)."""
        others = [i for i in self.docks if i not in (pane_id, "selected") and self._docked_open(i)]
        if others:
            area = {i: self.docks[i].width() * self.docks[i].height() for i in others}
            host = max(others, key=lambda i: (i != "grid", area[i]))
            self.tabifyDockWidget(self.docks[host], self.docks[pane_id])

    def _docked(self, pane_id: str) -> bool:
        dock = self.docks[pane_id]
        return not dock.isFloating() and self.dockWidgetArea(dock) != Qt.DockWidgetArea.NoDockWidgetArea

    def _docked_open(self, pane_id: str) -> bool:
        return self.is_open(pane_id) and self._docked(pane_id)

    def _opened(self, pane_id: str, is_open: bool) -> None:
        """A pane was opened or closed (by the app or by its close button)."""
        if pane_id in self.menu_actions:
            self.menu_actions[pane_id].setChecked(is_open)
        if not self._arranging:
            self.panes[pane_id].opened(is_open)
        self.views_changed.emit()

    def _arranged(self) -> None:
        """After the panes were laid out anew: the wishes of the panes that follow the state, the menu, the
        views asked for."""
        self._follow_wishes()
        for pane_id, action in self.menu_actions.items():
            action.setChecked(self.is_open(pane_id))
        self.views_changed.emit()

    def add_menu_entries(self, menu: QMenu) -> None:
        """One checkable entry per pane: checked while it is open; choosing it opens or closes it."""
        for spec in PANES:
            action = QAction(spec.title, self, checkable=True)
            action.setChecked(self.is_open(spec.id))
            action.triggered.connect(lambda checked, i=spec.id: self.set_open(i, checked))
            menu.addAction(action)
            self.menu_actions[spec.id] = action

    def _follow_wishes(self) -> None:
        """Panes bound to the state (backprop) open or close as it says."""
        for pane_id, pane in self.panes.items():
            wish = pane.wants_open()
            if wish is not None:
                self.set_open(pane_id, wish)

    # ------------------------------------------------------------------ layouts
    def reset_layout(self) -> None:
        """The panes where `PANES` places them, docked, with the default ones open."""
        self._arranging = True
        try:
            self._take_out_all()
            for spec in PANES:
                dock = self.docks[spec.id]
                if not spec.beside:
                    self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
                elif spec.side == "tab":
                    self.tabifyDockWidget(self.docks[spec.beside], dock)
                else:
                    orientation = Qt.Orientation.Horizontal if spec.side == "right" else Qt.Orientation.Vertical
                    self.splitDockWidget(self.docks[spec.beside], dock, orientation)
                dock.show()
            for spec in PANES:
                if not spec.open:
                    self.docks[spec.id].hide()
        finally:
            self._arranging = False
        self._arranged()
        self._sizes_pending = True
        if self.isVisible():
            QTimer.singleShot(0, self._apply_default_sizes)  # once the layout holds the docks

    def _take_out_all(self) -> None:
        """Every dock out of the layout (floating ones docked first: a floating dock stays a window)."""
        for dock in self.docks.values():
            if dock.isFloating():
                dock.setFloating(False)
            self.removeDockWidget(dock)

    def _columns(self) -> dict[str, list[str]]:
        """Each column of the default layout (by the pane at its top): its panes, top to bottom."""
        columns: dict[str, list[str]] = {}
        column_of: dict[str, str] = {}
        for spec in PANES:
            if spec.side == "tab":
                column_of[spec.id] = column_of[spec.beside]
                continue
            head = column_of[spec.beside] if spec.side == "below" else spec.id
            column_of[spec.id] = head
            columns.setdefault(head, []).append(spec.id)
        return columns

    def _apply_default_sizes(self) -> None:
        """Each pane its `share` of the room (once the tab has a size to share)."""
        if not self._sizes_pending:
            return
        self._sizes_pending = False
        share = {spec.id: spec.share for spec in PANES}
        columns = {head: [p for p in panes if self._docked_open(p)] for head, panes in self._columns().items()}
        heads = [head for head, panes in columns.items() if panes]
        total = sum(share[head] for head in heads)
        widths = [round(share[head] / total * self.width()) for head in heads]
        self.resizeDocks([self.docks[columns[h][0]] for h in heads], widths, Qt.Orientation.Horizontal)
        for head in heads:
            panes = columns[head]
            below = [round(share[p] * self.height()) for p in panes[1:]]
            sizes = [max(1, self.height() - sum(below)), *below]
            self.resizeDocks([self.docks[p] for p in panes], sizes, Qt.Orientation.Vertical)

    def save_layout(self) -> QByteArray:
        """The panes' places and sizes, as the settings keep them (the layout before the presentation mode)."""
        return self._presenting if self._presenting is not None else self.saveState(LAYOUT_VERSION)

    def restore_layout(self, saved: QByteArray) -> bool:
        """A saved layout; False (and the default layout kept) for one saved for another set of panes."""
        self._arranging = True
        try:
            restored = self.restoreState(saved, LAYOUT_VERSION)
        finally:
            self._arranging = False
        if restored:
            self._sizes_pending = False
            # sizes are kept in pixels: restored before the tab has its size, they come out scaled
            self._restore_on_show = None if self.isVisible() else saved
            self._arranged()
        return restored

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._sizes_pending:
            QTimer.singleShot(0, self._apply_default_sizes)
        if self._restore_on_show is not None:
            QTimer.singleShot(0, lambda saved=self._restore_on_show: self.restore_layout(saved))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        width, height = USEFUL_SHARE
        self.selected.keep_useful(QSize(round(width * self.width()), round(height * self.height())))

    # ------------------------------------------------------------------ presentation
    @property
    def presenting(self) -> bool:
        return self._presenting is not None

    def present(self, on: bool) -> None:
        """Only the presented panes (the grid and the frame with the selected channel, and backprop while it
        is on), large, side by side; off: the layout as it was."""
        if on == self.presenting:
            return
        if not on:
            saved, self._presenting = self._presenting, None
            self.restore_layout(saved)
            return
        self._presenting = self.saveState(LAYOUT_VERSION)
        self._arranging = True
        try:
            shown = [spec.id for spec in PANES if spec.presented and self.panes[spec.id].active]
            self._take_out_all()
            previous = None
            for pane_id in shown:
                dock = self.docks[pane_id]
                if previous is None:
                    self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
                else:
                    self.splitDockWidget(self.docks[previous], dock, Qt.Orientation.Horizontal)
                dock.show()
                previous = pane_id
        finally:
            self._arranging = False
        self._arranged()

    # ------------------------------------------------------------------ results
    def views(self) -> tuple[str, ...]:
        """Every view an open, active pane shows, in a stable order."""
        wanted = [pane for pane_id, pane in self.panes.items()
                  if pane.active and (self.is_open(pane_id) or pane.computed_while_closed)]  # fmt: skip
        return tuple(dict.fromkeys(name for pane in wanted for name in pane.views))

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        for pane_id, pane in self.panes.items():
            if self.is_open(pane_id) and pane.active:
                pane.show_result(result, model)

    def display_sizes(self) -> dict:
        """The sizes the overlay and frame are shown at, and the grid pane's shape, for render requests."""
        grid = self.grid_pane.grid
        sizes = {"display_size": self.selected.overlay.render_size(),
                 "frame_display_size": self.input.image.render_size()}  # fmt: skip
        if min(sizes["display_size"] + sizes["frame_display_size"]) <= 16:
            sizes = {}
        if min(grid.width(), grid.height()) > 16:
            sizes["grid_aspect"] = round(grid.width() / grid.height(), 2)
        return sizes
