"""A pane of the Live tab: the part of the window that shows one view (see `livevis.views`), in a dock.

A pane is built with the live state, its view's declaration and the window's services (background jobs, the
model running now, the status bar). It shows each result in `show_result`, says what it adds to the render
request (`request`: the sizes it shows pictures at) and may declare keys of its own (`ACTIONS`). The Live tab
knows panes only through this class: a plug-in's pane is one more subclass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PyQt6.QtCore import QPointF, QSize, pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from livevis.app.live.model_loader import ModelInfo
from livevis.app.live.worker import LiveResult
from livevis.app.window.action_spec import ActionSpec
from livevis.views import ViewSpec

if TYPE_CHECKING:
    from livevis.app.live.jobs import JobRunner
    from livevis.models import Engine, FrameViews
    from livevis.widgets.draw_pad import DrawPad
    from livevis.widgets.image_view import ImageView


@dataclass(frozen=True)
class PaneServices:
    """What a pane may use of the window besides the live state."""

    runner: JobRunner
    """Long work (mining, optimising, fitting) runs here, off the GUI thread, with progress and cancel."""
    engine: Callable[[], Engine | None]
    """The model running now (None while none is loaded); only for jobs: never run it on the GUI thread."""
    message: Callable[[str, int], None]
    """A line in the status bar for that many milliseconds."""
    notice: Callable[[str], None]
    """A message that stays until clicked away (a failure the user must see)."""
    open_source: Callable[[str], None]
    """Show a file (or a camera, a URL) as the live source."""


class Pane(QWidget):
    """A part of the Live tab fed by a view's results, shown in a dock titled by `title_changed`."""

    ACTIONS: tuple[ActionSpec, ...] = ()
    """Keys of its own; each action's handler names a method of the pane."""
    pad: DrawPad | None = None
    """The drawing pad it holds, if any: the drawing source shows strokes there (`show_pad`)."""
    computed_while_closed = False
    """Its view is computed even while its dock is closed (the grid's layout steers the arrow keys)."""
    title_changed = pyqtSignal(str)
    views_changed = pyqtSignal()
    """The views it asks for changed (the input pane's, for a tensor input)."""
    wanted = pyqtSignal(bool)
    """It asks for its dock to be opened (True) or closed (False): a pane that follows the state (backprop
    while its mode is not off), the input pane for the drawing pad."""
    display_changed = pyqtSignal()
    """The size it shows pictures at changed (its `request` changed)."""
    frame_clicked = pyqtSignal(float, float)
    """A click on a picture of the frame, in frame pixels: which units fire there is asked."""
    frame_hovered = pyqtSignal(float, float, QPointF)
    """The mouse over a picture of the frame (frame pixels, and where on the screen)."""

    def __init__(self, state: Any, spec: ViewSpec | None, services: PaneServices, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.spec = spec
        self.services = services
        self._title = ""
        self.fits_model = not self.transformers_only
        """Its view applies to the model loaded (a transformer's view to a transformer only: none until one is
        loaded)."""

    @property
    def transformers_only(self) -> bool:
        return self.spec is not None and self.spec.place.transformers_only

    @property
    def active(self) -> bool:
        """Whether its view is wanted at all (the backprop pane: not while backprop is off)."""
        return self.fits_model

    def views(self) -> tuple[str, ...]:
        """The views it asks the pipeline for while it is open and active."""
        return (self.spec.name,) if self.spec is not None else ()

    def request(self) -> dict[str, Any]:
        """What it adds to the render request: the sizes it shows pictures at."""
        return {}

    def set_title(self, text: str) -> None:
        if text != self._title:
            self._title = text
            self.title_changed.emit(text)

    def title_text(self) -> str:
        return self._title

    def opened(self, is_open: bool) -> None:
        """The user opened or closed the pane's dock."""

    def wants_open(self) -> bool | None:
        """Whether the pane must be open now (a pane that follows the state, a transformer's pane), None where
        the user decides; asked when a layout is set up or restored."""
        return self.active if self.transformers_only else None

    def set_model(self, model: ModelInfo) -> None:
        """A model was loaded: a transformer's pane opens for a transformer and closes for any other."""
        if self.transformers_only:
            self.fits_model = model.transformer
            self.wanted.emit(bool(self.wants_open()))

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        """A new frame's results, while the pane is open and active."""

    def show_units(self, cell: tuple[int, int], units: list[tuple[int, float]], views: FrameViews) -> None:
        """The layer's channels ranked at a clicked spot of the frame (map cell, [(channel, value)])."""

    def show_value_at(self, x: float, y: float, where: QPointF, views: FrameViews | None) -> None:
        """The mouse is over frame pixel (x, y) in some pane."""

    def frame_clicked_at(self, x: float, y: float, views: FrameViews | None) -> None:
        """Frame pixel (x, y) was clicked in some pane (the edits pane takes a rectangle's corners so)."""

    def show_pad(self, drawing: bool) -> None:
        """Show its drawing pad (the pad is the source) or not."""

    def set_stale(self, why: str) -> None:
        """The frame shown is old (a camera reconnecting: why), or '' once frames flow again."""

    def keep_useful(self, size: QSize) -> None:
        """The least size the tab asks its main pictures to keep when panes open beside them."""

    @property
    def paint_ms(self) -> float:
        """How long its last paint took (the grid's, for the status line)."""
        return 0.0

    def probe(self, image: ImageView) -> None:
        """Clicks and hovers on a picture of the frame ask which units fire there and show values."""
        image.setMouseTracking(True)
        image.clicked.connect(self.frame_clicked)
        image.hovered.connect(self.frame_hovered)
        image.resized.connect(lambda *_: self.display_changed.emit())


def column(*widgets: QWidget, stretch_first: bool = True) -> QVBoxLayout:
    layout = QVBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if stretch_first and index == 0 else 0)
    return layout
