"""The Live tab: one pane per view that has one (see `livevis.views`), each in a dock that can be moved,
tabbed, floated (onto a second screen or a projector), closed and reopened from View > Panes.

The tab asks the pipeline for the views its open panes show, so a view nobody shows is never computed, and
merges what each pane adds to the request (the sizes it shows pictures at). The docks, their default places,
the View menu's entries and the presentation mode all come from `pane_specs()`: the views' declarations, plus
the two panes that serve the selection (the layers and the unit).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

from PyQt6.QtCore import QByteArray, QPointF, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from livevis import views as declared
from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.worker import LiveResult
from livevis.app.panes.base import Pane, PaneServices
from livevis.app.panes.edits import EditsPane
from livevis.app.panes.layers import LayersPane
from livevis.app.panes.unit import UnitPane
from livevis.views import Place, ViewSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaneSpec:
    id: str
    """The dock's object name, under which its place is saved: never renamed."""
    title: str
    """Its entry in the View menu."""
    pane: type[Pane] | str
    """Its class, or where to import it from (a view's pane)."""
    place: Place
    view: ViewSpec | None = None
    """The view it shows (None for the layers and unit panes)."""


SELECTION_PANES = (
    PaneSpec("layers", "Layers", LayersPane, Place(beside="predictions", side="below", share=0.42, open=True)),
    PaneSpec("edits", "Edits", EditsPane, Place(beside="layers", side="tab")),
    PaneSpec("unit", "Unit", UnitPane, Place(beside="selected", side="below", share=0.36)),
)
"""The panes that serve the selection (or change the network) rather than show a view."""


def pane_specs() -> tuple[PaneSpec, ...]:
    """Every pane of the Live tab in the order the default layout places them: each view's pane in the order
    the views were declared, the selection's panes right after the pane they sit beside. A pane beside one
    that is not there (or beside none, after the first) is tabbed with the last one placed."""
    specs = [PaneSpec(v.name, v.title or v.name, v.pane, v.place, v) for v in declared.all_views().values() if v.pane]
    ordered: list[PaneSpec] = []
    waiting = list(SELECTION_PANES)
    for spec in specs:
        if ordered and spec.place.beside not in {s.id for s in ordered}:
            spec = PaneSpec(spec.id, spec.title, spec.pane, _tabbed_with(ordered[-1].id, spec.place), spec.view)
        ordered.append(spec)
        for core in [c for c in waiting if c.place.beside == spec.id]:
            ordered.append(core)
            waiting.remove(core)
    for core in waiting:  # beside a view that is not there: tabbed with the last pane
        ordered.append(PaneSpec(core.id, core.title, core.pane, _tabbed_with(ordered[-1].id, core.place)))
    return tuple(ordered)


def _tabbed_with(pane_id: str, place: Place) -> Place:
    return Place(pane_id, "tab", place.share, place.open, place.presented, place.transformers_only)


def _builtin(spec: PaneSpec) -> bool:
    return spec.view is None or spec.view.producer.startswith("livevis.")


def layout_version(specs: tuple[PaneSpec, ...]) -> int:
    """Saved with the layout: a layout saved for another set of livevis's own panes is not restored (the
    default is used). A plug-in's pane does not count: installing one keeps the layout, and its dock starts
    where the default places it."""
    placed = [(s.id, s.place.beside, s.place.side) for s in specs if _builtin(s)]
    return zlib.crc32(f"{LAYOUT_FORMAT}:{placed}".encode()) & 0x7FFFFFFF


LAYOUT_FORMAT = 2

PRESENTED_OTHERS = 0.28
"""The share of the width the presentation mode gives the panes beside the grid and the selected channel."""

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
    """The panes of `pane_specs()` in docks, in a main window of their own inside the tab (so the other tabs keep
    the whole window)."""

    display_size_changed = pyqtSignal()
    views_changed = pyqtSignal()
    """The views the open panes show changed (a pane opened or closed)."""
    frame_clicked = pyqtSignal(float, float)
    """A click on a picture of the frame in some pane, in frame pixels."""

    def __init__(self, state, services: PaneServices, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowFlags(Qt.WindowType.Widget)  # a page of the tabs, not a window
        self.setDockNestingEnabled(True)
        self.state = state
        self.left_out: list[str] = []
        """Panes that could not be built (a broken plug-in's), for the window to say."""
        self.specs = {spec.id: spec for spec in self._buildable(pane_specs())}
        self.version = layout_version(tuple(self.specs.values()))
        self.panes: dict[str, Pane] = {}
        for spec in self.specs.values():
            build = declared.resolve(spec.pane) if isinstance(spec.pane, str) else spec.pane
            self.panes[spec.id] = build(state, spec.view, services)
        self.docks: dict[str, PaneDock] = {i: PaneDock(self.specs[i], pane, self) for i, pane in self.panes.items()}
        self._arranging = False
        self._sizes_pending = False
        self._restore_on_show: QByteArray | None = None
        self._presenting: QByteArray | None = None
        self._last: LiveResult | None = None
        self.menu_actions: dict[str, QAction] = {}
        for pane_id, pane in self.panes.items():
            self.docks[pane_id].closed.connect(lambda i=pane_id: self._opened(i, False))
            pane.wanted.connect(lambda is_open, i=pane_id: self.set_open(i, is_open))
            pane.views_changed.connect(self.views_changed)
            pane.display_changed.connect(self.display_size_changed)
            pane.frame_clicked.connect(self.frame_clicked)
            pane.frame_clicked.connect(self._clicked)
            pane.frame_hovered.connect(self._hovered)
        self.reset_layout()

    def _buildable(self, specs: tuple[PaneSpec, ...]) -> list[PaneSpec]:
        """The panes whose class can be imported; a plug-in's that cannot is left out (and said)."""
        kept = []
        for spec in specs:
            if isinstance(spec.pane, str):
                try:
                    declared.resolve(spec.pane)
                except Exception as exc:  # a broken plug-in must not take the window down
                    log.warning("the pane of the view %r (%s) was left out: %s", spec.id, spec.pane, exc)
                    self.left_out.append(f"the {spec.title} pane ({exc})")
                    continue
            kept.append(spec)
        return kept

    def drawing_pane(self) -> Pane | None:
        """The pane that holds the drawing pad."""
        return next((pane for pane in self.panes.values() if pane.pad is not None), None)

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
        with the selected channel below its useful size is tabbed with another pane instead; in the
        presentation mode, one that is not presented waits until it ends."""
        if is_open and self.presenting and not self.specs[pane_id].place.presented:
            return
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
        """Back into the layout: beside its default neighbour where that one is docked, else at the right. In
        the presentation mode, tabbed with the other panes beside the main ones (which stay large)."""
        place = self.specs[pane_id].place
        docked = [i for i in self.docks if i != pane_id and self._docked(i) and not self.docks[i].isHidden()]
        if self.presenting and not self._primary(pane_id) and docked:
            beside = [i for i in docked if not self._primary(i)]
            if beside:
                self.tabifyDockWidget(self.docks[beside[0]], self.docks[pane_id])
            else:  # the first: a column of its own right of the main panes, narrower than they are
                self.splitDockWidget(self.docks[docked[-1]], self.docks[pane_id], Qt.Orientation.Horizontal)
                main = [i for i in docked if self._primary(i)]
                QTimer.singleShot(0, lambda: self._present_sizes(main, [pane_id]))
            return
        if place.beside in docked:
            side = Qt.Orientation.Horizontal if place.side == "right" or self.presenting else Qt.Orientation.Vertical
            self.splitDockWidget(self.docks[place.beside], self.docks[pane_id], side)
        elif docked:
            self.splitDockWidget(self.docks[docked[-1]], self.docks[pane_id], Qt.Orientation.Horizontal)
        else:
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.docks[pane_id])

    def _fits(self) -> bool:
        needed = self.layout().minimumSize()
        return needed.width() <= self.width() and needed.height() <= self.height()

    def _primary(self, pane_id: str) -> bool:
        """One of the panes the tab is for, open and presented from the start: the grid, the selected channel."""
        place = self.specs[pane_id].place
        return place.open and place.presented

    def _tab_elsewhere(self, pane_id: str) -> None:
        """Tabs the pane with the largest docked pane that is not a primary one (the grid and the selected
        channel); with the first primary one only where there is no other."""
        others = [i for i in self.docks if i != pane_id and self._docked_open(i)]
        first = next((i for i in others if self._primary(i)), None)
        hosts = [i for i in others if not self._primary(i)] or ([first] if first else [])
        if hosts:
            host = max(hosts, key=lambda i: self.docks[i].width() * self.docks[i].height())
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
        for spec in self.specs.values():
            action = QAction(spec.title, self, checkable=True)
            action.setChecked(self.is_open(spec.id))
            action.triggered.connect(lambda checked, i=spec.id: self.set_open(i, checked))
            menu.addAction(action)
            self.menu_actions[spec.id] = action

    def _follow_wishes(self) -> None:
        """Panes bound to the state (backprop) open or close as it says; in the presentation mode only the
        presented ones open."""
        for pane_id, pane in self.panes.items():
            wish = pane.wants_open()
            if wish is not None and not (wish and self.presenting and not self.specs[pane_id].place.presented):
                self.set_open(pane_id, wish)

    # ------------------------------------------------------------------ layouts
    def reset_layout(self) -> None:
        """The panes where `pane_specs()` places them, docked, with the default ones open."""
        self._arranging = True
        try:
            self._take_out_all()
            for spec in self.specs.values():
                dock, place = self.docks[spec.id], spec.place
                if place.beside not in self.docks:
                    self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
                elif place.side == "tab":
                    self.tabifyDockWidget(self.docks[place.beside], dock)
                else:
                    orientation = Qt.Orientation.Horizontal if place.side == "right" else Qt.Orientation.Vertical
                    self.splitDockWidget(self.docks[place.beside], dock, orientation)
                dock.show()
            for spec in self.specs.values():
                if not spec.place.open:
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
        for spec in self.specs.values():
            place = spec.place
            if place.side == "tab" and place.beside in column_of:
                column_of[spec.id] = column_of[place.beside]
                continue
            head = column_of[place.beside] if place.side == "below" and place.beside in column_of else spec.id
            column_of[spec.id] = head
            columns.setdefault(head, []).append(spec.id)
        return columns

    def _apply_default_sizes(self) -> None:
        """Each pane its `share` of the room (once the tab has a size to share)."""
        if not self._sizes_pending:
            return
        self._sizes_pending = False
        share = {spec.id: spec.place.share for spec in self.specs.values()}
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
        return self._presenting if self._presenting is not None else self.saveState(self.version)

    def restore_layout(self, saved: QByteArray) -> bool:
        """A saved layout; False (and the default layout kept) for one saved for another set of panes."""
        self._arranging = True
        try:
            restored = self.restoreState(saved, self.version)
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
        useful = QSize(round(width * self.width()), round(height * self.height()))
        for pane in self.panes.values():
            pane.keep_useful(useful)

    # ------------------------------------------------------------------ presentation
    @property
    def presenting(self) -> bool:
        return self._presenting is not None

    def present(self, on: bool) -> None:
        """The main panes (the grid and the frame with the selected channel) large, side by side, and the other
        presented panes that are on (backprop, attention, concepts) tabbed together in one narrower column
        beside them, however many are open; off: the layout as it was."""
        if on == self.presenting:
            return
        if not on:
            saved, self._presenting = self._presenting, None
            self.restore_layout(saved)
            return
        self._presenting = self.saveState(self.version)
        self._arranging = True
        try:
            shown = [i for i, spec in self.specs.items() if spec.place.presented and self.panes[i].active]
            main = [i for i in shown if self._primary(i)]
            others = [i for i in shown if not self._primary(i)]
            self._take_out_all()
            for index, pane_id in enumerate(main + others[:1]):
                if index == 0:
                    self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.docks[pane_id])
                else:
                    previous = (main + others)[index - 1]
                    self.splitDockWidget(self.docks[previous], self.docks[pane_id], Qt.Orientation.Horizontal)
            for pane_id in others[1:]:
                self.tabifyDockWidget(self.docks[others[0]], self.docks[pane_id])
            for pane_id in shown:
                self.docks[pane_id].show()
            if others:
                self.docks[others[0]].raise_()
        finally:
            self._arranging = False
        self._arranged()
        QTimer.singleShot(0, lambda: self._present_sizes(main, others[:1]))

    def _present_sizes(self, main: list[str], others: list[str]) -> None:
        """The main panes share most of the width; the column of the others PRESENTED_OTHERS of it."""
        if not self.presenting or not main:
            return
        width = self.width() * (1 - (PRESENTED_OTHERS if others else 0))
        sizes = [round(width / len(main))] * len(main) + [round(self.width() * PRESENTED_OTHERS)] * len(others)
        self.resizeDocks([self.docks[i] for i in main + others], sizes, Qt.Orientation.Horizontal)

    # ------------------------------------------------------------------ results
    def views(self) -> tuple[str, ...]:
        """Every view an open, active pane shows, in a stable order."""
        wanted = [
            pane
            for pane_id, pane in self.panes.items()
            if pane.active and (self.is_open(pane_id) or pane.computed_while_closed)
        ]
        return tuple(dict.fromkeys(name for pane in wanted for name in pane.views()))

    def request(self) -> dict:
        """What the panes add to the render request: the sizes they show pictures at."""
        merged: dict = {}
        for pane in self.panes.values():
            merged.update(pane.request())
        return merged

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        self._last = result
        for pane_id, pane in self.panes.items():
            if self.is_open(pane_id) and pane.active:
                pane.show_result(result, model)

    def show_units(self, cell: tuple[int, int], units: list[tuple[int, float]]) -> None:
        """The channels ranked at a clicked spot, for the pane that lists them."""
        if self._last is not None:
            for pane in self.panes.values():
                pane.show_units(cell, units, self._last.views)

    def _clicked(self, x: float, y: float) -> None:
        views = self._last.views if self._last is not None else None
        for pane in self.panes.values():
            pane.frame_clicked_at(x, y, views)

    def _hovered(self, x: float, y: float, where: QPointF) -> None:
        views = self._last.views if self._last is not None else None
        for pane in self.panes.values():
            pane.show_value_at(x, y, where, views)

    def set_stale(self, why: str) -> None:
        for pane in self.panes.values():
            pane.set_stale(why)

    @property
    def paint_ms(self) -> float:
        """How long the panes' last paints took."""
        return sum(pane.paint_ms for pane in self.panes.values())
