"""The drawing pad as a source: each stroke flows through the model as a frame.

For a 28 x 28 one-channel model (LeNet) a drawing gets MNIST's own preprocessing (its ink's box scaled into
20 x 20, centred by its centre of mass in 28 x 28); any other model gets the canvas as it is (white with
black ink for RGB models).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from livevis.app.live.slot import CapturedFrame, LatestFrameSlot
from livevis.models.data.mnist import mnist_style

if TYPE_CHECKING:
    from livevis.app.live.model_loader import ModelInfo
    from livevis.app.panes.base import Pane

DRAW = "draw"
"""The source spec of the drawing pad (`--source draw`)."""
MNIST_SIDE = 28


class DrawSource:
    """Feeds the pad's drawings into the frame slot while it is the source; `close_source` makes the
    capture thread let go of its camera or files meanwhile."""

    def __init__(self, input_pane: Pane, slot: LatestFrameSlot, close_source: Callable[[str], None]):
        self.input_pane, self.slot, self.close_source = input_pane, slot, close_source
        self.pad = input_pane.pad
        self.active = False
        self.input_shape: tuple[int, ...] | None = None
        """The running model's input (C, H, W); None until a model is loaded."""
        # numbers of their own, far from the capture thread's, so each stroke is a frame of its own
        self._sequence = itertools.count(1_000_000_000)
        self.pad.drawn.connect(self.on_drawn)

    def start(self) -> None:
        self.active = True
        self.close_source("drawing pad")
        self.input_pane.show_pad(True)
        self.pad.set_ink(dark_on_light=self.input_shape is not None and self.input_shape[0] == 3)
        self.on_drawn(self.pad.canvas())

    def stop(self) -> None:
        self.active = False
        self.input_pane.show_pad(False)

    def fit_model(self, info: ModelInfo) -> None:
        """Ink as the model expects it: white on black for a gray digit model, else black on white."""
        self.input_shape = tuple(info.layers[0].shape)
        self.pad.set_ink(dark_on_light=self.input_shape[0] == 3)

    def mnist_like(self) -> bool:
        return self.input_shape == (1, MNIST_SIDE, MNIST_SIDE)

    def on_drawn(self, canvas: np.ndarray) -> None:
        if not self.active:
            return
        frame = mnist_style(canvas) if self.mnist_like() else canvas
        self.slot.put(CapturedFrame(frame, time.perf_counter(), next(self._sequence), DRAW, True))
