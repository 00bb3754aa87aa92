"""`livevis dream`: its arguments and what it runs."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Adds the subcommand; `set_defaults(handler=run)` makes `livevis.app.cli.main` call `run(args)`."""
