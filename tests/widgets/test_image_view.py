"""ImageView: images rendered to fit a view are drawn 1:1 in device pixels, also on dense screens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from livevis.widgets.image_view import ImageView

ROOT = Path(__file__).resolve().parents[2]

DENSE_SCREEN = """
import numpy as np
from PyQt6.QtWidgets import QApplication
app = QApplication([])
from livevis.widgets.image_view import ImageView
view = ImageView()
view.resize(300, 200)
view.show()
width, height = view.render_size()
view.set_image(np.zeros((height, height, 3), np.uint8), (640, 640))  # a square frame rendered to fit
rect = view.image_rect()
shot = view.grab()
print(view.devicePixelRatioF(), width, height, rect.width(), rect.height(), shot.width(), shot.height())
view.set_image(np.zeros((28, 28, 3), np.uint8), (28, 28))  # a digit: enlarged to the view's 400 device pixels
print(view.image_rect().width(), view.magnification(), view.is_crisp())
"""


def test_an_image_rendered_to_fit_is_blitted_centred(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    assert view.render_size() == (300, 200)
    view.set_image(np.zeros((200, 200, 3), np.uint8), (640, 640))
    rect = view.image_rect()
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (50, 0, 200, 200)
    assert view.to_image(rect.center()) == (320, 320), "clicks map to the frame's own pixels"


def test_on_a_dense_screen_views_are_rendered_at_device_pixels():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2"}
    run = subprocess.run(
        [sys.executable, "-c", DENSE_SCREEN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.splitlines()
    ratio, width, height, rect_w, rect_h, shot_w, shot_h = map(float, first.split())
    assert ratio == 2 and (width, height) == (600, 400), "render at twice the view's logical size"
    assert (rect_w, rect_h) == (200, 200), "a 400 px image covers 200 logical pixels: drawn 1:1, not enlarged"
    digit_w, magnification, crisp = second.split()
    assert float(digit_w) == 200 and abs(float(magnification) - 400 / 28) < 1e-6 and crisp == "True"


def test_a_digit_is_enlarged_to_fill_the_view_with_crisp_pixels(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 550)
    view.set_image(np.zeros((28, 28, 3), np.uint8), (28, 28))  # the renderer never enlarges: it arrives small
    rect = view.image_rect()
    assert (rect.width(), rect.height()) == (300, 300), "the digit fills the view's width"
    assert (rect.x(), rect.y()) == (0, 125)
    assert abs(view.magnification() - 300 / 28) < 1e-9 and view.is_crisp(), "its 28 pixels stay sharp squares"
    assert view.to_image(rect.center()) == (14, 14)


def test_a_small_frame_is_enlarged_smoothly(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 550)
    view.set_image(np.zeros((150, 200, 3), np.uint8), (200, 150))
    rect = view.image_rect()
    assert (rect.width(), rect.height()) == (300, 225)
    assert view.magnification() == 1.5 and not view.is_crisp()


def test_a_frame_rendered_to_fit_within_rounding_is_not_enlarged(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.set_image(np.zeros((199, 199, 3), np.uint8), (640, 640))  # int() rounding left it a pixel short
    rect = view.image_rect()
    assert (rect.width(), rect.height()) == (199, 199) and view.magnification() == 1.0


def test_the_crop_rectangle_is_enlarged_with_the_frame(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 550)
    frame = np.zeros((28, 28, 3), np.uint8)
    view.set_image(frame, (28, 28))
    view.set_rect((4, 4, 20, 20))
    scale = 300 / 28
    top_left, bottom_right = view.to_widget(4, 4), view.to_widget(24, 24)
    assert abs(top_left.x() - 4 * scale) < 1e-6 and abs(top_left.y() - (125 + 4 * scale)) < 1e-6
    assert abs(bottom_right.x() - 24 * scale) < 1e-6 and abs(bottom_right.y() - (125 + 24 * scale)) < 1e-6
    # painted: the digit's white pixel covers a whole 10-11 px cell, the dashed rectangle lies on the scaled image
    frame[0, 0] = 255
    view.set_image(frame, (28, 28))
    view.show()
    shot = view.grab().toImage()
    assert shot.pixelColor(5, 130).red() == 255, "the top-left pixel fills its enlarged cell, no blur"
    assert shot.pixelColor(12, 137).red() < 30, "the next cell is black: nearest neighbour"
    on_dash = [
        shot.pixelColor(round(4 * scale) + dx, round(125 + 4 * scale) + dy).name()
        for dx in range(0, 12)
        for dy in (-1, 0)
    ]
    assert "#ffd700" in on_dash, "the dashed crop sits on the enlarged frame's pixel 4, 4"
