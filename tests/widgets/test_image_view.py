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
    run = subprocess.run([sys.executable, "-c", DENSE_SCREEN], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    ratio, width, height, rect_w, rect_h, shot_w, shot_h = map(float, run.stdout.split())
    assert ratio == 2 and (width, height) == (600, 400), "render at twice the view's logical size"
    assert (rect_w, rect_h) == (200, 200), "a 400 px image covers 200 logical pixels: drawn 1:1, not enlarged"
