"""One way to run long work off the GUI thread: model loads, downloads, embeddings, mining, optimisation.

A job is a function called as `fn(*args, progress=progress, **kwargs)` on superqt's thread pool. It
reports through the one progress protocol (`models.progress`); `Job.cancel()` makes the next report
raise `Cancelled`. Whatever it raises ends as one signal on the GUI thread: `cancelled` for a cancel
(not an error), `failed` with a message for anything else, so no exception ever escapes a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PyQt6.QtCore import QObject, QThreadPool, QTimer, pyqtSignal
from superqt.utils import create_worker

from livevis.models.errors import LivevisError
from livevis.models.progress import Cancelled

log = logging.getLogger("livevis")


def describe_failure(exc: BaseException) -> str:
    """A user's message for a failure: a LivevisError says what to do; anything else is named as a bug."""
    if isinstance(exc, LivevisError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


class Job(QObject):
    """One piece of background work; its signals arrive on the GUI thread."""

    progressed = pyqtSignal(str, int, int)  # what, done, total (0: unknown)
    partial = pyqtSignal(object)  # a result on the way (a preview), for jobs submitted with partial=True
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    ended = pyqtSignal()  # after any of the three above

    def __init__(
        self,
        title: str,
        fn: Callable,
        args: tuple,
        kwargs: dict,
        parent: QObject | None = None,
        *,
        partial: bool = False,
    ):
        super().__init__(parent)
        if partial:
            kwargs = {**kwargs, "partial": self.partial.emit}
        self.title = title
        self._cancel = threading.Event()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.done = False
        self.running = False
        """On the pool (a job waits for the event loop's next turn, so that its caller can connect first)."""
        self.worker = create_worker(self._call, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)

    def _call(self):
        return self._fn(*self._args, progress=self._report, **self._kwargs)

    def _report(self, what: str, done: int, total: int) -> bool:
        """The progress callback handed to the job: False (a cancel) stops it at its next report."""
        if self._cancel.is_set():
            return False
        self.progressed.emit(what, int(done), int(total))
        return True

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _on_returned(self, value) -> None:
        if self._cancel.is_set():
            self._end(self.cancelled.emit)
        else:
            self._end(lambda: self.succeeded.emit(value))

    def _on_errored(self, exc: Exception) -> None:
        if isinstance(exc, Cancelled):
            self._end(self.cancelled.emit)
            return
        if not isinstance(exc, LivevisError):
            log.error("%s failed", self.title, exc_info=(type(exc), exc, exc.__traceback__))
        message = describe_failure(exc)
        self._end(lambda: self.failed.emit(message))

    def _end(self, emit: Callable[[], None]) -> None:
        self.done = True
        emit()
        self.ended.emit()


class JobRunner(QObject):
    """Starts jobs, keeps them until they end, and cancels and waits for them on shutdown."""

    job_started = pyqtSignal(object)  # Job

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._latest: dict[str, Job] = {}
        """The last job submitted under each `supersede` key."""
        self.closed = False

    def submit(
        self, title: str, fn: Callable, *args, partial: bool = False, supersede: str | None = None, **kwargs
    ) -> Job:
        """Runs `fn(*args, progress=..., **kwargs)` in the background from the event loop's next turn, so
        that the caller's connections to the job's signals (progress, previews) miss nothing. With
        `partial`, `fn` also gets `partial=callable` to hand results on the way (previews) to `Job.partial`.
        A job submitted under a `supersede` key cancels the one submitted under it before, if that has not
        ended: a look-up for the unit selected a key press ago is of no use any more."""
        if self.closed:
            raise RuntimeError(f"{title}: the job runner was shut down")
        job = Job(title, fn, args, kwargs, self, partial=partial)
        if supersede is not None:
            previous = self._latest.get(supersede)
            if previous is not None and not previous.done:
                previous.cancel()
            self._latest[supersede] = job
        self._jobs.append(job)
        job.ended.connect(lambda: self._forget(job))
        QTimer.singleShot(0, lambda: self._start(job))
        self.job_started.emit(job)
        return job

    def _start(self, job: Job) -> None:
        if job.done:  # ended before it started: cancelled by a shutdown
            return
        if job.cancel_requested:  # superseded before it started: it ends here, without a thread
            job._end(job.cancelled.emit)
            return
        job.running = True
        QThreadPool.globalInstance().start(job.worker)

    def _forget(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        for key in [key for key, latest in self._latest.items() if latest is job]:
            del self._latest[key]
        job.deleteLater()

    def running(self) -> list[Job]:
        return list(self._jobs)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel every job and wait for the threads; True when all ended in time. No job starts after."""
        self.closed = True
        for job in list(self._jobs):
            job.cancel()
            if not job.running:  # never started: it ends here, without a thread
                job._end(job.cancelled.emit)
        return QThreadPool.globalInstance().waitForDone(timeout_ms)
