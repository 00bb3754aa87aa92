"""The layers of a model as a tree (module paths nest), with friendly name and output shape.

The selected layer is the live state's: the tree follows `state.layer` and a click sets it.
"""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from livevis.state import LiveState

PATH_ROLE = Qt.ItemDataRole.UserRole


class LayerTree(QTreeWidget):
    """Takes (path, name, shape) rows in execution order; emits the path of the layer picked."""

    layer_selected = pyqtSignal(str)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        state.events.layer.connect(self.select_path)
        self.setHeaderLabels(["layer", "shape"])
        header = self.header()  # the names take the room the shapes leave
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._items: dict[str, QTreeWidgetItem] = {}
        self.itemClicked.connect(self._on_item)

    def set_layers(self, rows: Sequence[tuple[str, str, tuple[int, ...]]]) -> None:
        """Rows in execution order. A layer nests under the longest listed path that prefixes it, so a
        container (listed after its children, when its output is final) holds them."""
        self.clear()
        self._items = {}
        for path, name, shape in rows:
            label = name if name == path else f"{name}  ({path})"
            dims = " x ".join(str(s) for s in shape)
            item = QTreeWidgetItem([label, dims])
            item.setData(0, PATH_ROLE, path)
            item.setToolTip(0, f"{path}\noutput {dims}")
            self._items[path] = item
        for path, _, _ in rows:
            parent = self._parent_of(path)
            if parent is None:
                self.addTopLevelItem(self._items[path])
            else:
                parent.addChild(self._items[path])
        self.expandToDepth(0)
        self.select_path(self.state.layer)

    def _parent_of(self, path: str) -> QTreeWidgetItem | None:
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            parent = self._items.get(".".join(parts[:cut]))
            if parent is not None:
                return parent
        return None

    def select_path(self, path: str) -> None:
        item = self._items.get(path)
        if item is None:
            return
        parent = item.parent()
        while parent is not None:
            parent.setExpanded(True)
            parent = parent.parent()
        self.setCurrentItem(item)
        self.scrollToItem(item)

    def _on_item(self, item: QTreeWidgetItem, _column: int) -> None:
        path = item.data(0, PATH_ROLE)
        if path != self.state.layer:
            self.state.update(layer=path, channel=0)
        self.layer_selected.emit(path)
