"""Starting and stopping the desktop app: `livevis` with no subcommand."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path


def _no_display() -> bool:
    import os

    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def run_app(args) -> int:
    if _no_display():
        from livevis.models.errors import LivevisError

        raise LivevisError(
            "no display to open a window on (DISPLAY is not set). Run it on a desktop, under a virtual "
            "screen (xvfb-run livevis), or use the command line: livevis render, livevis bench"
        )
    from PyQt6.QtCore import QSettings, QTimer
    from PyQt6.QtWidgets import QApplication

    from livevis.app.cli import custom_options
    from livevis.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("livevis")
    app.setOrganizationName("livevis")
    settings = QSettings(str(args.settings), QSettings.Format.IniFormat) if args.settings else None
    window = MainWindow(
        source=args.source,
        model=args.model,
        weights=args.weights,
        layer=args.layer,
        device=args.device,
        settings=settings,
        custom=custom_options(args),
    )
    window.show()
    if args.quit_after:
        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    # Ctrl+C in the terminal closes the window cleanly; the timer lets Python see the signal.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.start(200)
    wake.timeout.connect(lambda: None)
    code = app.exec()
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(window.stats_dict(), indent=1))
    return code
