"""The drawing pad as a source: each stroke flows through the model as a frame.

For a 28 x 28 one-channel model (LeNet) a drawing gets MNIST's own preprocessing (its ink's box scaled into
20 x 20, centred by its centre of mass in 28 x 28); any other model gets the canvas as it is (white with
black ink for RGB models).
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

import numpy as np

from livevis.app.capture import CapturedFrame
from livevis.models.mnist_preprocess import mnist_style

if TYPE_CHECKING:
    from livevis.app.main_window import MainWindow

DRAW = "draw"
"""The source spec of the drawing pad (`--source draw`)."""
MNIST_SIDE = 28


class DrawSource:
    def __init__(self, window: MainWindow):
        self.window = window
        self.pad = window.live.input.pad
        self.active = False
        # numbers of their own, far from the capture thread's, so each stroke is a frame of its own
        self._sequence = itertools.count(1_000_000_000)
        self.pad.drawn.connect(self.on_drawn)

    def start(self) -> None:
        self.active = True
        self.window.capture.close_source("drawing pad")
        self.window.live.input.show_pad(True)
        self.fit_model()
        self.on_drawn(self.pad.canvas())

    def stop(self) -> None:
        self.active = False
        self.window.live.input.show_pad(False)

    def fit_model(self) -> None:
        """Ink as the running model expects it: white on black for a gray digit model, else black on white."""
        info = self.window.model
        self.pad.set_ink(dark_on_light=info is not None and info.layers[0][2][0] == 3)

    def mnist_like(self) -> bool:
        info = self.window.model
        return info is not None and info.layers[0][2] == (1, MNIST_SIDE, MNIST_SIDE)

    def on_drawn(self, canvas: np.ndarray) -> None:
        if not self.active:
            return
        frame = mnist_style(canvas) if self.mnist_like() else canvas
        self.window.slot.put(CapturedFrame(frame, time.perf_counter(), next(self._sequence), DRAW, True))
