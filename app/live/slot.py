"""The hand-over between the thread that reads frames and the one that processes them (no Qt): one
latest-frame slot, so a slow consumer drops frames instead of queueing them."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    captured_at: float
    """time.perf_counter() when the frame was read."""
    sequence: int
    source: str
    still: bool = False
    """A still image (a file of a folder, a drawing): no frame rate to speak of."""


class LatestFrameSlot:
    """One slot between a producer and a consumer thread; putting replaces, taking waits."""

    def __init__(self):
        self._condition = threading.Condition()
        self._frame: CapturedFrame | None = None
        self.captured = 0
        self.dropped = 0
        self._waiting = 0

    def put(self, frame: CapturedFrame) -> None:
        with self._condition:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.captured += 1
            self._condition.notify_all()

    def take(self, timeout: float | None = None) -> CapturedFrame | None:
        with self._condition:
            if self._frame is None:
                self._waiting += 1
                try:
                    self._condition.wait(timeout)
                finally:
                    self._waiting -= 1
            frame, self._frame = self._frame, None
            if frame is not None:
                self._condition.notify_all()
            return frame

    def wants_frame(self) -> bool:
        """Empty, and the consumer waits for a frame: one decoded now is processed at once, not after the frame
        in hand (a stream decodes only such frames, so the frame shown is as new as it can be)."""
        with self._condition:
            return self._frame is None and self._waiting > 0

    def frame_skipped(self) -> None:
        """A frame a stream grabbed and never decoded, because a newer one would replace it: dropped."""
        with self._condition:
            self.captured += 1
            self.dropped += 1

    def wait_until_taken(self, timeout: float) -> bool:
        """True once the slot is empty (the consumer took the frame), False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self._frame is None, timeout)

    def wake(self) -> None:
        """Wake a waiting consumer without a frame (something else needs its attention)."""
        with self._condition:
            self._condition.notify_all()
