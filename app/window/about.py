"""The About box's text: what livevis is, and the versions it runs on."""

from __future__ import annotations

from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

from livevis import __version__
from livevis.app.live.model_loader import ModelInfo


def about_text(info: ModelInfo | None) -> str:
    model = f"{info.name} [{info.weights}] on {info.device}<br>PyTorch {info.torch_version}, " if info else ""
    return (
        f"<b>livevis {__version__}</b><p>Live deep visualization of PyTorch convolutional networks, in "
        "the spirit of Yosinski et al.'s Deep Visualization Toolbox (2015).</p>"
        f"<p>{model}PyQt {PYQT_VERSION_STR}, Qt {QT_VERSION_STR}</p>"
        "<p>Press H for the keyboard shortcuts.</p>"
    )
