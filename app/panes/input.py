"""The input pane: the frame with the network's crop, the drawing pad, and the units under a click."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QStackedWidget,
    QWidget,
)

from livevis.app.panes.base import Pane, column
from livevis.state import LiveState
from livevis.widgets.draw_pad import DrawPad
from livevis.widgets.image_view import ImageView
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
