"""What the capture thread asks of a live frame source, written down: `FrameSource`, and what it does when a
read fails (`OnFailure`)."""

from __future__ import annotations

from enum import Enum
from typing import Protocol

import numpy as np


class OnFailure(Enum):
    """What the capture thread does when a source's read raises."""

    RECONNECT = "reconnect"
    """Keep the last frame on screen and reopen the source with back-off (a camera, a stream)."""
    STOP = "stop"
    """Say why and close the source (a video file that cannot be decoded)."""
    SKIP = "skip"
    """Say why and go on with the next item (an unreadable image of a folder)."""


class FrameSource(Protocol):
    """A live source of frames, read on the capture thread."""

    label: str
    """What the status bar calls it (a stream's URL without its password)."""
    on_failure: OnFailure
    paced_by_consumer: bool
    """A file can wait: the next frame is read only once the worker took the last one (none decoded to be
    dropped). A camera or a stream cannot: its frames come when they come."""

    def read(self) -> np.ndarray | None:
        """The next RGB uint8 frame (or float32 C x H x W tensor), None when there is none yet; raises
        `InputError` saying why it cannot read."""
        ...

    def wait_s(self) -> float:
        """How long to wait before the next read (a video's frame interval; 0 where reading blocks)."""
        ...

    def close(self) -> None: ...


class ReconnectingSource(FrameSource, Protocol):
    """A source that is reopened when it stops (`OnFailure.RECONNECT`)."""

    host: str
    """What a reconnect message calls it ('camera 0', a stream's host)."""

    def reconnect(self) -> None: ...
