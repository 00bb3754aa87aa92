"""The Live tab: panes that each show some of the views a frame produced, keyed by the views' names.

A pane declares the views it shows (`views`) and draws them from a `LiveResult` (`show`); the tab asks
the pipeline for the union of what its panes show, so a view nobody shows is never computed. Adding
a view to the app is one producer in `models.views` and one pane here.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from livevis.app.model_loader import ModelInfo
from livevis.app.worker import LiveResult
from livevis.state import LiveState
from livevis.widgets.channel_grid import ChannelGrid
from livevis.widgets.draw_pad import DrawPad
from livevis.widgets.image_view import ImageView
from livevis.widgets.layer_tree import LayerTree
from livevis.widgets.predictions import PredictionsView
from livevis.widgets.unit_view import UnitView
from livevis.widgets.units_list import UnitsAtPoint


def titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(QLabel(title))
    layout.addWidget(widget, 1)
    return box


class Pane(QWidget):
    """A part of the window fed by named views."""

    views: tuple[str, ...] = ()

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        raise NotImplementedError


class InputPane(Pane):
    """The frame with the network's crop dashed (click it: which units fire there), the top-5 classes
    under it (click one: Grad-CAM explains it). A tensor input is shown as its channels, each signed."""

    views_changed = pyqtSignal()

    @property
    def views(self) -> tuple[str, ...]:
        return ("frame_display", "predictions", *(("input_signed",) if self.tensor_input else ()))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tensor_input = False
        self.image = ImageView(placeholder="No input yet.\nOpen a camera, files or a folder (File menu).")
        self.image.setMouseTracking(True)
        self.predictions = PredictionsView()
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("input (dashed: what the network sees; click: units firing there)")
        layout.addWidget(self.title)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.network_input)
        layout.addWidget(self.units)
        layout.addWidget(self.predictions)

    def show_pad(self, drawing: bool) -> None:
        """The drawing pad in place of the frame, with what the network sees of the drawing under it."""
        self.stack.setCurrentIndex(1 if drawing else 0)
        self.network_input.setVisible(drawing)
        self.title.setText("draw here (right-click clears); below: what the network sees" if drawing else
                           "input (dashed: what the network sees; click: units firing there)")  # fmt: skip
        if drawing:
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
        self.predictions.setVisible(model is None or bool(model.categories))  # not for other networks
        note = "" if model is None or model.trained else "UNTRAINED (random weights)"
        self.predictions.set_predictions([(p.label, p.probability) for p in views.top5], note)


class GridPane(Pane):
    """Every channel of the selected layer; the state's channel outlined."""

    views = ("grid",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("layer")
        self.grid = ChannelGrid(state)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.grid, 1)

    def show_result(self, result, model):
        views = result.views
        self.grid.set_grid(views.grid, views.grid_layout, views.channel_max, views.channel_mean)
        self.title.setText(f"{views.layer.label}  ({views.layer.channels} channels; click or arrows to pick)")


class SelectedPane(Pane):
    """The selected channel on the frame or zoomed (the state's `zoomed` swaps them), and its numbers."""

    views = ("overlay", "channel_tile", "peak")

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.overlay = ImageView(placeholder="selected channel")
        self.tile = ImageView(smooth=False, placeholder="zoomed channel")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.overlay)
        self.stack.addWidget(self.tile)
        self.small = ImageView(smooth=False)
        self.small.setMinimumSize(120, 120)
        self.small.setMaximumHeight(200)
        self.info = QLabel("-")
        # a fixed size: new numbers every frame must not re-lay out (and repaint) the whole window
        self.info.setFixedSize(240, 110)
        self.info.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(titled("selected channel on the frame (z swaps)", self.stack), 1)
        row = QHBoxLayout()
        row.addWidget(self.small, 1)
        row.addWidget(self.info, 1)
        layout.addLayout(row)
        self._last: LiveResult | None = None
        state.events.zoomed.connect(self._on_zoomed)

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
        self.info.setText(
            f"channel {views.channel} of {views.layer.name}\nmax {peak.value:.4g} at cell {peak.cell}\n"
            f"frame x={peak.frame_xy[0]}, y={peak.frame_xy[1]}\nmean {views.channel_mean[views.channel]:.4g}"
        )


class BackpropPane(Pane):
    """What drives the selected unit (backprop, deconv, guided backprop) or where a class is seen
    (Grad-CAM); computed only while the state's `backprop` is not off."""

    views = ("backprop",)

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.title = QLabel("backprop (b: mode, n: view)")
        self.image = ImageView(placeholder="b turns on backprop of the selected unit")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.image, 1)
        state.events.backprop.connect(lambda mode: self.setVisible(mode != "off"))
        self.setVisible(state.backprop != "off")

    @property
    def active(self) -> bool:
        return self.state.backprop != "off"

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
            self.title.setText(f"Grad-CAM of {label} ({picked}; click a prediction) at {views.layer.name}")
        else:
            count = values.get("backprop_rule_count", 0)
            self.title.setText(f"{options.backprop} ({options.backprop_view}) of {views.layer.name}:{views.channel}"
                               f" - the {options.backprop} rule at {count} ReLU calls")  # fmt: skip


class LiveTab(QSplitter):
    """Input, layer tree, channel grid and selected channel side by side."""

    display_size_changed = pyqtSignal()

    def __init__(self, state: LiveState, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.input = InputPane()
        self.layer_tree = LayerTree(state)
        self.layer_tree.setMinimumWidth(250)
        self.grid_pane = GridPane(state)
        self.selected = SelectedPane(state)
        self.backprop = BackpropPane(state)
        self.unit = UnitView()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.selected)
        right.addWidget(self.backprop)
        right.addWidget(self.unit)
        for index, (widget, stretch) in enumerate(
            ((self.input, 3), (self.layer_tree, 1), (self.grid_pane, 4), (right, 3))
        ):
            self.addWidget(widget)
            self.setStretchFactor(index, stretch)
        self.panes: dict[str, Pane] = {"input": self.input, "grid": self.grid_pane, "selected": self.selected,
                                       "backprop": self.backprop}  # fmt: skip
        for view in (self.input.image, self.selected.overlay, self.grid_pane.grid):
            view.resized.connect(lambda *_: self.display_size_changed.emit())

    def add_pane(self, name: str, pane: Pane) -> None:
        """One more pane under the channel grid (the concepts: the same layer, factorised), fed like the others."""
        index, column = self.indexOf(self.grid_pane), QSplitter(Qt.Orientation.Vertical)
        self.insertWidget(index, column)
        column.addWidget(self.grid_pane)
        column.addWidget(pane)
        column.setStretchFactor(0, 2)
        column.setStretchFactor(1, 3)
        self.setStretchFactor(index, 4)
        self.panes[name] = pane

    def views(self) -> tuple[str, ...]:
        """Every view an active pane shows, in a stable order."""
        active = [pane for pane in self.panes.values() if getattr(pane, "active", True)]
        return tuple(dict.fromkeys(name for pane in active for name in pane.views))

    def show_result(self, result: LiveResult, model: ModelInfo | None) -> None:
        for pane in self.panes.values():
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
