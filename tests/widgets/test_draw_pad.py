"""DrawPad: a mouse drag writes a round stroke into the canvas and hands the canvas on; right-click clears."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from livevis.widgets.draw_pad import DrawPad, ink_segment

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NO_KEYS = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def pad(qtbot) -> DrawPad:
    pad = DrawPad()
    qtbot.addWidget(pad)
    pad.resize(280, 280)  # one widget pixel per canvas pixel
    pad.show()
    qtbot.waitExposed(pad)
    return pad


def drag(pad: DrawPad, points: list[QPoint]) -> None:
    QTest.mousePress(pad, LEFT, NO_KEYS, points[0])
    for point in points[1:]:
        QTest.mouseMove(pad, point)
    QTest.mouseRelease(pad, LEFT, NO_KEYS, points[-1])


def test_a_drag_draws_white_along_its_path_and_emits_the_canvas(qtbot, pad):
    received: list[np.ndarray] = []
    pad.drawn.connect(received.append)
    drag(pad, [QPoint(40, 140), QPoint(100, 140), QPoint(160, 140), QPoint(240, 140), QPoint(240, 240)])
    assert len(received) == 5, "once per move while drawing, and on release"
    canvas = received[-1]
    assert canvas.shape == (280, 280, 3) and canvas.dtype == np.uint8
    assert all(received[i] is not received[j] for i in range(len(received)) for j in range(i)), "fresh arrays"
    assert (canvas[140, 40:241] == 255).all() and (canvas[140:241, 240] == 255).all(), "white along the path"
    assert canvas[200, 200].max() == 0, "the path's corner is not cut"
    assert (received[0][140, 40:101] == 255).all() and received[0][140, 160].max() == 0, "each step as drawn"
    stroke_rows = np.nonzero(canvas[:, 140, 0] > 127)[0]
    assert 24 <= len(stroke_rows) <= 32, "a brush about a tenth of the canvas wide"
    assert canvas[20, 140].max() == 0 and canvas[140, 10].max() == 0, "black away from the path"
    assert np.array_equal(pad.canvas(), canvas)


def test_right_click_clears_and_emits_the_blank_canvas(qtbot, pad):
    drag(pad, [QPoint(140, 40), QPoint(140, 240)])
    assert not pad.is_blank()
    with qtbot.waitSignal(pad.drawn) as cleared:
        QTest.mouseClick(pad, RIGHT, NO_KEYS, QPoint(10, 10))
    assert pad.is_blank() and not cleared.args[0].any()


def test_backspace_clears(qtbot, pad):
    drag(pad, [QPoint(140, 40), QPoint(140, 240)])
    with qtbot.waitSignal(pad.drawn) as cleared:
        QTest.keyClick(pad, Qt.Key.Key_Backspace)
    assert pad.is_blank() and not cleared.args[0].any()


def test_dark_ink_on_light_recolours_what_is_drawn(qtbot, pad):
    drag(pad, [QPoint(140, 40), QPoint(140, 240)])
    with qtbot.waitSignal(pad.drawn) as recoloured:
        pad.set_ink(True)
    canvas = recoloured.args[0]
    assert canvas[140, 140].max() == 0 and canvas[140, 20].min() == 255, "black ink on white"
    drag(pad, [QPoint(40, 200), QPoint(240, 200)])
    assert pad.canvas()[200, 100].max() == 0
    pad.clear()
    assert pad.canvas().min() == 255, "cleared to white"


def test_a_larger_pad_maps_the_mouse_onto_the_canvas(qtbot, pad):
    pad.resize(600, 400)  # the canvas is the centred 400 x 400 square: 100 px of margin left and right
    drag(pad, [QPoint(100 + 200, 20), QPoint(100 + 200, 380)])
    canvas = pad.canvas()
    assert canvas[10:270, 140].min() == 255 and canvas[140, 20].max() == 0


def test_a_segment_is_round_capped_and_antialiased():
    ink = np.zeros((50, 50), np.uint8)
    ink_segment(ink, (10.0, 25.0), (40.0, 25.0), 10.0)
    assert ink[25, 10:40].min() == 255 and ink[25, 4] == 0 and ink[25, 45] == 0
    assert ink[25, 6] == 255, "the cap is round: full ink within the radius of an end"
    assert ((ink > 0) & (ink < 255)).any(), "soft edges, as a pen stroke scaled down to MNIST has"
