"""The concepts' legend: one row per concept, a tile click gives its channel, a colour click its concept."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, Qt

from livevis.widgets.concept_legend import ConceptLegend, LegendRow


def _rows() -> list[LegendRow]:
    tile = np.zeros((13, 13, 3), np.uint8)
    crops = np.full((20, 62, 3), 90, np.uint8)
    return [
        LegendRow((230, 25, 75), 0.6, [(12, 0.1, tile), (40, 0.05, tile + 80)], "tabby 0.61"),
        LegendRow((60, 180, 75), 0.4, [(7, 0.2, tile + 200)], "channels 7", crops=crops),
    ]


def test_a_tile_click_gives_its_channel_and_a_colour_click_its_concept(qtbot):
    legend = ConceptLegend()
    qtbot.addWidget(legend)
    legend.resize(420, 200)
    legend.set_rows(_rows(), chosen=1)
    legend.show()
    qtbot.waitExposed(legend)
    assert legend.height() == 2 * legend.ROW and len(legend.rows()) == 2
    centre = legend.tile_rect(0, 1).center()
    with qtbot.waitSignal(legend.channel_clicked) as clicked:
        qtbot.mouseClick(legend, Qt.MouseButton.LeftButton, pos=QPoint(round(centre.x()), round(centre.y())))
    assert clicked.args == [40]
    with qtbot.waitSignal(legend.concept_clicked) as picked:
        qtbot.mouseClick(legend, Qt.MouseButton.LeftButton, pos=QPoint(15, legend.ROW + legend.ROW // 2))
    assert picked.args == [1]
    assert legend.hit(5, 5 * legend.ROW) is None, "below the last row: nothing"
    picture = legend.grab().toImage()
    swatch = picture.pixelColor(15, legend.ROW + 8)
    assert (swatch.red(), swatch.green(), swatch.blue()) == (60, 180, 75), "each row painted in its concept's colour"
