"""Exceptions that nothing caught: reported in the window and the log, and the app goes on.

Without a `sys.excepthook`, PyQt6 aborts the process when an exception escapes a slot (SIGABRT): the
window vanishes and the settings changed since the start, saved on close, are lost. These hooks log the
traceback (any stream URL in it with its password masked) and say in the window, in one line, what failed.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback

from PyQt6.QtCore import QObject, pyqtSignal

from livevis.app.live.jobs import describe_failure
from livevis.app.sources.network import mask_urls

log = logging.getLogger("livevis")


class UnexpectedErrors(QObject):
    """Installs itself as `sys.excepthook` and `threading.excepthook`; `reported` carries the one-line
    message to the GUI thread, whichever thread failed."""

    reported = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._previous: tuple | None = None

    def install(self) -> None:
        if self._previous is None:
            self._previous = (sys.excepthook, threading.excepthook)
            sys.excepthook = self._on_exception
            threading.excepthook = self._on_thread_exception

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _on_exception(self, kind, exc, trace) -> None:
        self._report(kind, exc, trace, "")

    def _on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self._report(args.exc_type, args.exc_value, args.exc_traceback, f" on {name}")

    def _report(self, kind, exc, trace, where: str) -> None:
        try:  # a hook that raised would end up where the exception came from
            details = mask_urls("".join(traceback.format_exception(kind, exc, trace))).rstrip()
            log.error("unexpected error%s; the app goes on\n%s", mask_urls(where), details)
            what = describe_failure(exc) if exc is not None else kind.__name__
            first_line = mask_urls(what).splitlines()[0] if what.strip() else kind.__name__
            self.reported.emit(f"{first_line} (the app goes on; the details are in the log)")
        except Exception:
            pass
