"""The livevis application: command line, frame sources, threads and the main window."""

from livevis import __version__

__all__ = ["__version__"]
