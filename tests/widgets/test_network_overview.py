"""NetworkOverview: which rows are in sight as it scrolls, clicks on tiles, images shown where they belong."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from livevis.geometry import GridLayout
from livevis.widgets.network_overview import NetworkOverview, default_layout

# AlexNet's layers as `livevis layers` lists them: enough rows to scroll through
LAYERS = [
    ("features.0", "conv1", (64, 55, 55)),
    ("features.1", "relu1", (64, 55, 55)),
    ("features.2", "pool1", (64, 27, 27)),
    ("features.3", "conv2", (192, 27, 27)),
    ("features.4", "relu2", (192, 27, 27)),
    ("features.5", "pool2", (192, 13, 13)),
    ("features.6", "conv3", (384, 13, 13)),
    ("features.7", "relu3", (384, 13, 13)),
    ("features.8", "conv4", (256, 13, 13)),
    ("features.10", "conv5", (256, 13, 13)),
    ("classifier.1", "fc6", (4096,)),
    ("prob", "prob", (1000,)),
]


def grid_image(layout: GridLayout, colour: tuple[int, int, int]) -> np.ndarray:
    """A row's image: every tile in one colour, separators grey, as the renderers draw a grid."""
    image = np.full((layout.height, layout.width, 3), 48, np.uint8)
    for channel in range(layout.channels):
        x, y, w, h = layout.tile_rect(channel)
        image[y : y + h, x : x + w] = colour
    return image


@pytest.fixture
def overview(qtbot):
    view = NetworkOverview(max_row_height=240)
    qtbot.addWidget(view)
    view.resize(640, 480)
    with qtbot.waitSignal(view.rows_in_sight, timeout=5000):
        view.set_layers(LAYERS)
        view.show()
        qtbot.waitExposed(view)
    return view


def test_rows_in_sight_follow_the_scroll(overview, qtbot):
    first = overview.visible_paths()
    assert first and first[0] == "features.0" and len(first) < len(LAYERS)
    bar = overview.verticalScrollBar()
    assert bar.maximum() > 0, "the rows are taller than the view"
    with qtbot.waitSignal(overview.rows_in_sight, timeout=5000) as seen:
        bar.setValue(bar.maximum())
    assert seen.args[0] == overview.visible_paths()
    assert seen.args[0][-1] == "prob" and "features.0" not in seen.args[0]
    with qtbot.waitSignal(overview.rows_in_sight, timeout=5000) as seen:
        bar.setValue(0)
    assert seen.args[0] == first


def test_scroll_steps_are_coalesced_into_one_report(overview, qtbot):
    reports = []
    overview.rows_in_sight.connect(reports.append)
    bar = overview.verticalScrollBar()
    with qtbot.waitSignal(overview.rows_in_sight, timeout=5000):
        for value in range(0, bar.maximum() + 1, max(1, bar.maximum() // 20)):
            bar.setValue(value)
        bar.setValue(bar.maximum())
    assert len(reports) == 1 and reports[0][-1] == "prob"


def test_a_resize_reports_what_came_into_sight(overview, qtbot):
    with qtbot.waitSignal(overview.rows_in_sight, timeout=5000) as seen:
        overview.resize(640, 1400)
    assert len(seen.args[0]) > 2 and seen.args[0] == overview.visible_paths()


def test_a_click_on_a_tile_names_its_layer_and_channel(overview, qtbot):
    layout = GridLayout(64, 4, 16, 27, 27)
    overview.set_row("features.2", grid_image(layout, (200, 30, 40)), layout)
    for channel in (0, 17, 63):
        centre = overview.tile_rect("features.2", channel).center()
        with qtbot.waitSignal(overview.channel_clicked, timeout=2000) as clicked:
            qtbot.mouseClick(overview.widget(), Qt.MouseButton.LeftButton, pos=centre.toPoint())
        assert clicked.args == ["features.2", channel]
    # a separator between tiles 0 and 1 is no channel
    gap = overview.tile_rect("features.2", 0)
    between = QPoint(
        round(gap.right() + 0.5 * (overview.tile_rect("features.2", 1).left() - gap.right())), round(gap.center().y())
    )
    with qtbot.assertNotEmitted(overview.channel_clicked, wait=50):
        qtbot.mouseClick(overview.widget(), Qt.MouseButton.LeftButton, pos=between)


def test_a_row_image_is_shown_in_its_place(overview, qtbot):
    layout = default_layout((64, 55, 55))
    red = grid_image(layout, (220, 20, 30))
    overview.set_row("features.0", red, layout)
    assert overview.row_image("features.0") is red
    shot = overview.widget().grab().toImage()
    centre = overview.tile_rect("features.0", 5).center().toPoint()
    pixel = shot.pixelColor(centre)
    assert (pixel.red(), pixel.green(), pixel.blue()) == (220, 20, 30)
    # a row without an image shows the placeholder, not another row's image
    placeholder = shot.pixelColor(overview.row_image_rect("features.1").center())
    assert (placeholder.red(), placeholder.green(), placeholder.blue()) == (48, 48, 48)


def test_only_rows_in_sight_are_drawn(overview, qtbot):
    layouts = {path: default_layout(shape) for path, _, shape in LAYERS}
    for path, layout in layouts.items():
        overview.set_row(path, grid_image(layout, (30, 60, 200)), layout)
    overview.viewport().repaint()
    drawn = {path for path in overview.paths() if overview._by_path[path].qimage is not None}
    assert drawn and drawn <= set(overview.visible_paths())
    assert "prob" not in drawn


def test_a_new_layout_changes_the_row_and_a_wrong_image_is_refused(overview):
    before = overview.row_image_rect("prob")
    strip = GridLayout(1000, 20, 50, 3, 3)
    overview.set_row("prob", grid_image(strip, (255, 255, 255)), strip)
    after = overview.row_image_rect("prob")
    assert after.height() > before.height(), "20 lines of 50 units stand taller than 10 of 100"
    with pytest.raises(ValueError, match="expected a"):
        overview.set_row("prob", np.zeros((5, 5, 3), np.uint8), strip)
    with pytest.raises(KeyError):
        overview.set_row("nowhere", grid_image(strip, (0, 0, 0)), strip)
