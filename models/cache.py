"""Where livevis keeps what it computes once and reuses: embeddings, atlases, optimised images."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder(kind: str) -> Path:
    """`LIVEVIS_CACHE/kind`, else the user's cache folder (XDG_CACHE_HOME or ~/.cache) `/livevis/kind`."""
    own = os.environ.get("LIVEVIS_CACHE")
    if own:
        return Path(own) / kind
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livevis" / kind
