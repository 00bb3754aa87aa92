"""A digit written on the draw pad with the mouse, framed as MNIST's were, is read by the bundled LeNet."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from livevis.models.data.mnist import mnist_style
from livevis.widgets.draw_pad import DrawPad

LEFT, NO_KEYS = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def write(qtbot, strokes: list[list[tuple[int, int]]]) -> np.ndarray:
    """Draws the strokes on a fresh 280 x 280 pad as a hand would (press, small moves, release); the last
    canvas it handed on."""
    pad = DrawPad()
    qtbot.addWidget(pad)
    pad.resize(280, 280)
    pad.show()
    qtbot.waitExposed(pad)
    received: list[np.ndarray] = []
    pad.drawn.connect(received.append)
    for stroke in strokes:
        points = [QPoint(x, y) for x, y in stroke]
        QTest.mousePress(pad, LEFT, NO_KEYS, points[0])
        for start, end in zip(points, points[1:], strict=False):
            for step in range(1, 9):  # a mouse reports many small moves
                QTest.mouseMove(pad, start + (end - start) * step / 8)
        QTest.mouseRelease(pad, LEFT, NO_KEYS, points[-1])
    return received[-1]


@pytest.mark.parametrize(
    ("digit", "strokes"),
    [
        (1, [[(145, 40), (135, 240)]]),
        (7, [[(70, 60), (210, 60), (120, 240)]]),
        (0, [[(140, 40), (200, 80), (210, 160), (170, 235), (110, 235), (70, 160), (80, 80), (140, 40)]]),
    ],
)
def test_a_digit_written_on_the_pad_is_read_by_lenet(qtbot, lenet, digit, strokes):
    frame = mnist_style(write(qtbot, strokes))
    assert lenet.top_k(lenet.run(frame, []).logits[0].numpy())[0].index == digit
