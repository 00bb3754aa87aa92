"""Threads that outlive their window: kept until they end, never destroyed while they run.

Qt aborts the whole process when a QThread object is destroyed while its thread still runs ("QThread:
Destroyed while thread is still running"). A thread that did not stop within the window's wait at closing
(a model in the middle of a long forward pass, a camera driver that blocks) is taken from the window, so
that deleting the window does not delete it, and kept here until it ends.
"""

from __future__ import annotations

import time

from PyQt6 import sip
from PyQt6.QtCore import QThread

_kept: set[QThread] = set()


def keep_until_finished(thread: QThread) -> None:
    """Takes `thread` from its parent and keeps it alive until it ends (then Qt may delete it)."""
    if not thread.isRunning():
        return
    thread.setParent(None)
    _kept.add(thread)
    thread.finished.connect(lambda: _kept.discard(thread))


def kept_threads() -> list[QThread]:
    """The threads still kept (for tests and the exit)."""
    return [thread for thread in _kept if thread.isRunning()]


def wait_for_kept_threads(timeout_ms: int) -> bool:
    """At exit: waits up to `timeout_ms` for every kept thread; True when all ended. One that still runs
    after that is left to the process's end (handed to Qt, which then never destroys it), so that the exit
    cannot abort."""
    deadline = time.perf_counter() + timeout_ms / 1000
    for thread in list(_kept):
        if thread.wait(max(1, int((deadline - time.perf_counter()) * 1000))):
            _kept.discard(thread)
    running = kept_threads()
    for thread in running:
        sip.transferto(thread, None)
    return not running
