"""One progress protocol for every long job (downloads, embeddings, mining, optimisation).

A job calls `progress(what, done, total)` as it goes; the callback returns False (or raises
`Cancelled`) to stop it. `report` turns a False into `Cancelled`, so a job needs no checks of its own.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], "bool | None"]
"""(what is being done, units done, units in all; 0 when unknown) -> False to cancel."""


class Cancelled(Exception):
    """The user stopped the job. Not an error: nothing is reported, nothing is half-written."""


def report(progress: Progress | None, what: str, done: int, total: int) -> None:
    """Tell `progress` how far the job is; raises `Cancelled` when it answers False."""
    if progress is not None and progress(what, done, total) is False:
        raise Cancelled(what)
