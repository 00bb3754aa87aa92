"""A pane of the Live tab: a part of the window fed by named views (see `models.views`), shown in a dock."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.worker import LiveResult
from livevis.state import LiveState


class Pane(QWidget):
    """A part of the Live tab fed by named views, shown in a dock titled by `title_changed`."""

    views: tuple[str, ...] = ()
    computed_while_closed = False
    """Its views are computed even while its dock is closed (the grid's layout steers the arrow keys)."""
    title_changed = pyqtSignal(str)
    views_changed = pyqtSignal()
    """The views it shows changed (the input pane's, for a tensor input)."""
    wanted = pyqtSignal(bool)
    """The pane asks for its dock to be opened (True) or closed (False): the backprop pane follows the
    state's backprop mode, the input pane opens for the drawing pad."""

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._title = ""

    @property
    def active(self) -> bool:
        """Whether its views are wanted at all (the backprop pane: not while backprop is off)."""
        return True

    def set_title(self, text: str) -> None:
        if text != self._title:
            self._title = text
            self.title_changed.emit(text)

    def title_text(self) -> str:
        return self._title

    def opened(self, is_open: bool) -> None:
        """The user opened or closed the pane's dock."""

    def wants_open(self) -> bool | None:
        """Whether the pane must be open now (a pane that follows the state), None where the user decides;
        asked when a layout is set up or restored."""
        return None

    def set_model(self, model: ModelInfo) -> None:
        """A model was loaded (the transformer panes open for a transformer only)."""

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        raise NotImplementedError


def column(*widgets: QWidget, stretch_first: bool = True) -> QVBoxLayout:
    layout = QVBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if stretch_first and index == 0 else 0)
    return layout
