"""The detections pane: a detector's boxes or a segmenter's classes on the frame, the legend, the class under the
cursor; a click on a box (or a class) picks what the explanations explain."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QListWidget, QListWidgetItem, QToolTip, QWidget

from livevis.app.panes.base import Pane, PaneServices, column
from livevis.models.detection.draw import class_colours
from livevis.views import ViewSpec
from livevis.widgets.image_view import ImageView

WHOLE_FRAME = ("detect", "segment")


def box_at(x: float, y: float, boxes: np.ndarray, drawn: np.ndarray) -> int | None:
    """The smallest drawn box around frame pixel (x, y), by its index among every detection; None outside all."""
    inside = [i for i in drawn if boxes[i, 0] <= x <= boxes[i, 2] and boxes[i, 1] <= y <= boxes[i, 3]]
    if not inside:
        return None
    return int(min(inside, key=lambda i: (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])))


def class_at(x: float, y: float, classes: np.ndarray, frame_size: tuple[int, int]) -> int | None:
    """The segmentation's class at frame pixel (x, y) (`classes` at the network's resolution)."""
    width, height = frame_size
    if not (0 <= x < width and 0 <= y < height):
        return None
    row = min(classes.shape[0] - 1, int(y * classes.shape[0] / height))
    col = min(classes.shape[1] - 1, int(x * classes.shape[1] / width))
    return int(classes[row, col])


class DetectionsPane(Pane):
    """Boxes with labels and scores (masks, keypoints) or the segmentation's colours with a legend; open for a
    detector or a segmenter. A click on a box or on a class (in the picture or the legend) picks it for the
    explanations (b: eigencam or gradcam)."""

    def __init__(self, state, spec: ViewSpec, services: PaneServices, parent: QWidget | None = None):
        super().__init__(state, spec, services, parent)
        self.image = ImageView(placeholder="a detector's boxes or a segmenter's classes")
        self.image.setMouseTracking(True)
        self.image.clicked.connect(self._clicked)
        self.image.hovered.connect(self._hovered)
        self.legend = QListWidget()
        self.legend.setMaximumHeight(120)
        self.legend.itemClicked.connect(self._legend_clicked)
        self.legend.hide()
        self.setLayout(column(self.image, self.legend))
        self.fits_model = False
        self.set_title("detections")
        self._views = None
        self._names: tuple[str, ...] = ()

    def set_model(self, model) -> None:
        self.fits_model = model.task in WHOLE_FRAME
        self._names = model.class_names
        self.wanted.emit(self.fits_model)

    def wants_open(self) -> bool | None:
        return self.fits_model

    def _name(self, index: int) -> str:
        name = self._names[index] if 0 <= index < len(self._names) else f"class {index}"
        return "background" if name == "__background__" else name

    def _clicked(self, x: float, y: float) -> None:
        views = self._views
        if views is None:
            return
        values = views.values
        if "boxes" in values:
            index = box_at(x, y, values["boxes"], values["detections_drawn"])
            if index is None:
                self.state.box_target = None
                return
            box = tuple(float(v) for v in values["boxes"][index])
            label = int(values["labels"][index])
            self.state.box_target = (*box, float(label))
            self.services.message(f"the explanations explain {self._name(label)} (b: eigencam, gradcam)", 6000)
        elif "segmentation_classes" in values:
            index = class_at(x, y, values["segmentation_classes"], views.frame_size)
            if index is not None:
                self._pick_class(index)

    def _legend_clicked(self, item: QListWidgetItem) -> None:
        self._pick_class(item.data(Qt.ItemDataRole.UserRole))

    def _pick_class(self, index: int) -> None:
        self.state.class_index = index
        self.services.message(f"the explanations explain {self._name(index)} (b: eigencam, gradcam)", 6000)

    def _hovered(self, x: float, y: float, where) -> None:
        views = self._views
        classes = None if views is None else views.values.get("segmentation_classes")
        if classes is None:
            return
        index = class_at(x, y, classes, views.frame_size)
        if index is None:
            QToolTip.hideText()
            return
        QToolTip.showText(where.toPoint(), f"{self._name(index)} (class {index})", self)

    def show_result(self, result, model):
        views = result.views
        self._views = views
        values = views.values
        picture = views.images.get("detections")
        if picture is None:
            picture = views.images.get("segmentation")
        if picture is None:
            return
        self.image.set_image(picture, views.frame_size)
        threshold = result.options["score_threshold"]
        if "boxes" in values:
            self.legend.hide()
            self.set_title(
                f"detections: {len(values['detections_drawn'])} of {len(values['boxes'])} scoring {threshold:g} "
                "or more (click one: the explanations explain it)"
            )
            return
        found = values.get("segmentation_legend", [])
        self._show_legend(found)
        self.set_title("segmentation (click a class: the explanations explain it)")

    def _show_legend(self, found) -> None:
        self.legend.show()
        if [self.legend.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.legend.count())] == [
            index for index, _, _ in found
        ]:
            for row, (_, name, share) in enumerate(found):
                self.legend.item(row).setText(f"{name}  {share:.1%}")
            return
        self.legend.clear()
        colours = class_colours(max((index for index, _, _ in found), default=0) + 1)
        for index, name, share in found:
            item = QListWidgetItem(f"{name}  {share:.1%}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setForeground(QColor(*(int(c) for c in colours[index])) if index else QColor("gray"))
            self.legend.addItem(item)
