"""`livevis` command line: the desktop app by default, and subcommands for scripts and tests.

Errors a user can act on print as one line on stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from livevis.app import __version__
from livevis.app.commands.common import add_model_options, custom_options

EXIT_USAGE = 2

COMMAND_MODULES = tuple(
    f"livevis.app.commands.{name}"
    for name in ("catalog", "render", "figure", "bench", "embed", "mine", "dream", "features")
)
"""The subcommands, each a module with `add_parser(commands)`, which sets the `handler` that runs it."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="livevis",
        description="Live deep visualization of PyTorch convolutional networks. With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"livevis {__version__}")
    parser.add_argument(
        "--source",
        help="camera index (0), an image, video or folder, or a stream URL "
        "(http://PHONE:8080/video, rtsp://user:pass@CAMERA/stream) (default: camera 0, "
        "else the bundled sample photos)",
    )
    add_model_options(parser)
    parser.add_argument("--layer", help="layer to show first (module path or friendly name)")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help="close the app after that long")
    parser.add_argument("--stats-json", metavar="PATH", help="on exit, write frame counts, fps and latency here")
    parser.add_argument("--settings", metavar="PATH", help="settings file (default: the user's livevis settings)")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from livevis.models.errors import LivevisError

    try:
        if args.command is None:
            from livevis.app.gui import AppConfig, run_app

            return run_app(
                AppConfig(
                    source=args.source,
                    model=args.model,
                    weights=args.weights,
                    layer=args.layer,
                    device=args.device,
                    settings=args.settings and Path(args.settings),
                    custom=custom_options(args),
                    quit_after=args.quit_after,
                    stats_json=args.stats_json and Path(args.stats_json),
                )
            )
        return args.handler(args)
    except LivevisError as exc:
        print(f"livevis: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("livevis: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
