"""The input pane: the frame with the network's crop, the drawing pad, and the units under a click."""

from __future__ import annotations

from PyQt6.QtWidgets import QStackedWidget, QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.views import ViewSpec
from livevis.widgets.draw_pad import DrawPad
from livevis.widgets.image_view import ImageView
from livevis.widgets.units_list import UnitsAtPoint

SIGNED_INPUT = "input_signed"
"""The view that draws a tensor input's channels (this pane shows it in the frame's place)."""


class InputPane(Pane):
    """The frame with the network's crop dashed (click it: which units fire there, listed below it). A tensor
    input is shown as its channels, each signed; the drawing pad takes the frame's place while it is the
    source."""

    FRAME_TITLE = "input (dashed: what the network sees; click: units firing there)"
    PAD_TITLE = "draw here (right-click clears); below: what the network sees"

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.tensor_input = False
        self.image = ImageView(placeholder="No input yet.\nOpen a camera, files or a folder (File menu).")
        self.probe(self.image)
        self.units = UnitsAtPoint()
        self.units.hide()
        self.units.channel_chosen.connect(lambda channel: setattr(state, "channel", channel))
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

    def views(self) -> tuple[str, ...]:
        return (self.spec.name, *((SIGNED_INPUT,) if self.tensor_input else ()))

    def request(self) -> dict:
        size = self.image.render_size()
        return {"frame_display_size": size} if min(size) > 16 else {}

    def show_pad(self, drawing: bool) -> None:
        """The drawing pad in place of the frame, with what the network sees of the drawing under it."""
        self.stack.setCurrentIndex(1 if drawing else 0)
        self.network_input.setVisible(drawing)
        self.set_title(self.PAD_TITLE if drawing else self.FRAME_TITLE)
        if drawing:
            self.wanted.emit(True)
            self.pad.setFocus()

    def set_stale(self, why: str) -> None:
        self.image.set_stale(why)

    def show_units(self, cell, units, views) -> None:
        """The channels most active under a click, each with its tile cut from the grid shown."""
        grid, layout = views.images.get("grid"), views.values.get("grid_layout")

        def tile(channel: int):
            if grid is None or layout is None or channel >= layout.channels:
                return None
            x, y, w, h = layout.tile_rect(channel)
            return grid[y : y + h, x : x + w]

        self.units.set_units(cell, [(c, v, tile(c)) for c, v in units])
        self.units.show()

    def show_result(self, result, model):
        views = result.views
        if self.stack.currentWidget() is self.pad:
            self.network_input.set_image(views.frame)
        if views.tensor_input != self.tensor_input:  # ask for (or stop asking for) the signed channels
            self.tensor_input = views.tensor_input
            self.views_changed.emit()
        signed = views.images.get(SIGNED_INPUT) if views.tensor_input else None
        if signed is not None:
            self.image.set_image(signed)
            self.image.set_rect(None)
        else:
            shown = views.values.get("frame_display")
            self.image.set_image(views.frame if shown is None else shown, views.frame_size)
            self.image.set_rect((views.crop.x, views.crop.y, views.crop.w, views.crop.h))
