"""Starting and stopping the desktop app: `livevis` with no subcommand."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from livevis.models.errors import LivevisError

KEPT_THREADS_WAIT_MS = 30_000
"""How long the exit waits for a thread that was still running when the window closed (a long forward pass)."""


@dataclass(frozen=True)
class AppConfig:
    """What the command line asks of the window, as plain data (no argparse here)."""

    source: str | None = None
    model: str | None = None
    weights: str = "default"
    layer: str | None = None
    device: str = "auto"
    settings: Path | None = None
    custom: dict = field(default_factory=dict)
    """input_size, mean, std, labels of a user's own model."""
    quit_after: float | None = None
    stats_json: Path | None = None


def _no_display() -> bool:
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def _check_source(source: str | None) -> None:
    """A stream URL that does not parse is refused before any window opens (one line, exit 2)."""
    from livevis.app.sources.network import check_stream_url, is_stream_url

    if source is not None and is_stream_url(source):
        check_stream_url(source)


def run_app(config: AppConfig) -> int:
    _check_source(config.source)
    if _no_display():
        raise LivevisError(
            "no display to open a window on (DISPLAY is not set). Run it on a desktop, under a virtual "
            "screen (xvfb-run livevis), or use the command line: livevis render, livevis bench"
        )
    from PyQt6.QtWidgets import QApplication

    from livevis.app.live.threads import wait_for_kept_threads
    from livevis.app.window.settings import SettingsStore
    from livevis.app.window.unexpected_errors import UnexpectedErrors

    settings = SettingsStore(config.settings)  # a foreign file is refused before any window opens
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("livevis")
    app.setOrganizationName("livevis")
    # an exception escaping a slot or a thread is reported in the window and the log; without a hook,
    # PyQt6 would abort the app, and the settings changed since it started (saved on close) would be lost
    errors = UnexpectedErrors()
    errors.install()
    try:
        return _run_window(app, config, settings, errors)
    finally:
        errors.uninstall()
        # a thread the window could not stop in time ends here; the process never destroys a running one
        wait_for_kept_threads(KEPT_THREADS_WAIT_MS)


def _run_window(app, config: AppConfig, settings, errors) -> int:
    from PyQt6.QtCore import QTimer

    from livevis.app.window.main_window import MainWindow

    window = MainWindow(
        source=config.source,
        model=config.model,
        weights=config.weights,
        layer=config.layer,
        device=config.device,
        settings=settings,
        custom=config.custom,
    )
    errors.reported.connect(window.show_notice)
    window.show()
    if config.quit_after:
        QTimer.singleShot(int(config.quit_after * 1000), window.close)
    # Ctrl+C in the terminal and a desktop logout's SIGTERM close the window as its close button does
    # (threads joined, settings saved, stats written); the timer lets Python see the signal.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: window.close())
    wake = QTimer()
    wake.start(200)
    wake.timeout.connect(lambda: None)
    code = app.exec()
    if config.stats_json:
        Path(config.stats_json).write_text(json.dumps(window.stats_dict(), indent=1))
    # The interpreter's last garbage collection walks every object torch, timm and Qt made (it took
    # 0.7-1.6 s after the window closed); frozen, they are left to the process's exit instead.
    gc.freeze()
    return code
