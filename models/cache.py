"""Where livevis keeps what it computes once and reuses: embeddings, atlases, optimised images; and how it
reads them back, where an entry that cannot be read is only a miss."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DAMAGED_SUFFIX = ".damaged"
"""What an entry that cannot be read is renamed to: kept for a look, never read again."""


def cache_root() -> Path:
    """`LIVEVIS_CACHE`, else the user's cache folder (XDG_CACHE_HOME or ~/.cache) `/livevis`."""
    own = os.environ.get("LIVEVIS_CACHE")
    if own:
        return Path(own)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livevis"


def cache_folder(kind: str) -> Path:
    """`LIVEVIS_CACHE/kind`, else the user's cache folder (XDG_CACHE_HOME or ~/.cache) `/livevis/kind`."""
    return cache_root() / kind


def read_entry(path: Path, read: Callable[[Path], T], *, cache: Path | None = None) -> T | None:
    """What `read(path)` makes of a cache entry; None where there is none, or where `read` says so itself
    (an entry made for other files). An entry `read` fails on in any way (cut short, emptied, of another
    layout, changed by another program) is a miss too, and is set aside as NAME.damaged with one line in
    the log, so that it is computed and written again instead of failing every time.

    `cache`: the folder the entry belongs to (livevis's own by default); a file outside it is the user's and
    is never renamed."""
    try:
        return read(path)
    except (FileNotFoundError, NotADirectoryError):  # no entry, or no cache folder at all
        return None
    except Exception as exc:  # numpy, zipfile, json and the readers' own checks each fail in their own way
        set_aside(path, " ".join(f"{type(exc).__name__}: {exc}".split()), cache=cache)
        return None


def set_aside(path: Path, reason: str, *, cache: Path | None = None) -> None:
    """Renames a cache entry that cannot be read to NAME.damaged, saying so in one log line."""
    folder = (cache or cache_root()).resolve()
    if not path.resolve().is_relative_to(folder):
        log.warning("%s cannot be read (%s); it is not in the cache %s, so it is left as it is", path, reason, folder)
        return
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    try:
        path.replace(aside)
    except OSError as exc:
        log.warning("cache entry %s cannot be read (%s) nor set aside (%s); it is made again", path, reason, exc)
        return
    log.warning("cache entry %s cannot be read (%s); set aside as %s, it is made again", path, reason, aside.name)


def read_per_version(read: Callable[[str], T], size: int = 4) -> Callable[[str | Path], T]:
    """`read(file)` kept for each version of the file (its path and modification time): what every frame uses
    (stored concepts, learnt features) is read once, and again only after the file changes."""
    from functools import lru_cache

    once = lru_cache(maxsize=size)(lambda file, _modified: read(file))

    def cached(file: str | Path) -> T:
        path = Path(file)
        try:
            modified = path.stat().st_mtime_ns
        except OSError:
            modified = -1
        return once(str(path), modified)

    return cached
