"""The livevis application: command line, frame sources, threads and the main window."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("livevis")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
