"""The drawing pad as a source in the window: LeNet reads what is written with the mouse."""

from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from tests.app.conftest import wait_result


def _stroke(pad, points) -> None:
    """A mouse stroke through canvas points (0..280), mapped to the pad's widget coordinates."""
    side = pad.width() / 280, pad.height() / 280
    widget = [QPoint(round(x * side[0]), round(y * side[1])) for x, y in points]
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, pos=widget[0])
    for point in widget[1:]:
        QTest.mouseMove(pad, point)
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=widget[-1])


def test_a_drawn_one_and_zero_are_read_by_lenet_with_mnists_preprocessing(qtbot, make_window):
    window = make_window("draw", model="lenet", weights="default")
    wait_result(qtbot, window)
    pad = window.live.panes["input"].pad
    assert pad.isVisible() and window.live.panes["input"].network_input.isVisible()
    _stroke(pad, [(140, 40 + 10 * i) for i in range(21)])  # a vertical bar
    result = wait_result(qtbot, window, lambda r: r.views.values["top5"] and r.views.values["top5"][0].index == 1)
    assert result.views.frame.shape == (28, 28, 3), "the network input: MNIST's 28 x 28 field"
    assert result.still and "still image" in window.status.rate.text(), "no stale frame rate for a drawing"
    QTest.mouseClick(pad, Qt.MouseButton.RightButton)
    import math

    _stroke(
        pad, [(140 + 60 * math.sin(a / 20 * 2 * math.pi), 140 - 90 * math.cos(a / 20 * 2 * math.pi)) for a in range(21)]
    )
    wait_result(qtbot, window, lambda r: r.views.values["top5"] and r.views.values["top5"][0].index == 0)
    shown = window.live.panes["input"].network_input.image_array()
    assert shown is not None and shown.shape == (28, 28, 3)
    window.open_source(None)  # back to files or the camera: the pad gives way to the frame
    qtbot.waitUntil(lambda: not pad.isVisible())
