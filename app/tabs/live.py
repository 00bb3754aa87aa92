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
    QMainWindow,
    QMenu,
    QWidget,
)

from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.worker import LiveResult
from livevis.app.panes.backprop import BackpropPane
from livevis.app.panes.base import Pane
from livevis.app.panes.concepts import ConceptsPane
from livevis.app.panes.grid import GridPane
from livevis.app.panes.input import InputPane
from livevis.app.panes.layers import LayersPane
from livevis.app.panes.predictions import PredictionsPane
from livevis.app.panes.selected import SelectedPane
from livevis.app.panes.transformers import AttentionPane, PrefixTokensPane, TokenNormsPane
from livevis.app.panes.unit import UnitPane
from livevis.state import LiveState


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
    PaneSpec("backprop", "Backprop", BackpropPane, beside="grid", side="below", share=0.45, open=False, presented=True),
    PaneSpec("unit", "Unit", UnitPane, beside="selected", side="below", share=0.36, open=False),
    PaneSpec("prefix", "Prefix tokens", PrefixTokensPane, beside="grid", side="below", share=0.18, open=False),
    PaneSpec("attention", "Attention", AttentionPane, beside="backprop", side="tab", open=False, presented=True),
    PaneSpec("token_norms", "Token norms", TokenNormsPane, beside="attention", side="tab", open=False),
    PaneSpec("concepts", "Concepts", ConceptsPane, beside="backprop", side="tab", open=False, presented=True),
)
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
        wanted = [
            pane
            for pane_id, pane in self.panes.items()
            if pane.active and (self.is_open(pane_id) or pane.computed_while_closed)
        ]
        return tuple(dict.fromkeys(name for pane in wanted for name in pane.views))

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        for pane_id, pane in self.panes.items():
            if self.is_open(pane_id) and pane.active:
                pane.show_result(result, model)

    def display_sizes(self) -> dict:
        """The sizes the overlay and frame are shown at, and the grid pane's shape, for render requests."""
        grid = self.grid_pane.grid
        sizes = {
            "display_size": self.selected.overlay.render_size(),
            "frame_display_size": self.input.image.render_size(),
        }
        if min(sizes["display_size"] + sizes["frame_display_size"]) <= 16:
            sizes = {}
        if min(grid.width(), grid.height()) > 16:
            sizes["grid_aspect"] = round(grid.width() / grid.height(), 2)
        return sizes
