"""livevis: live deep visualization of PyTorch convolutional networks.

One installed package over the repository's folders: `livevis.models` (PyTorch, no Qt),
`livevis.widgets` (Qt, no torch), `livevis.app` (the command line and the window that wire them)
and `livevis.assets` (sample photos, small trained weights).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("livevis")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
