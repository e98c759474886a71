"""The ``glue-zeropoint`` command.

``main(argv=None)`` parses the arguments and calls plain functions, so tests call
``main([...])`` directly. Each sub-command lives in :mod:`glue_zeropoint.commands` as a module
with ``add_parser(subparsers)``; the parser sets ``func(args) -> int``.

Exit codes: 0 success, 2 bad input (one-line reason on stderr), 1 any other failure of a step
(one-line reason), 130 interrupted.
"""

import argparse
import importlib
import logging
import sys
import warnings

from . import __version__
from .exceptions import InputError, ZeropointError

COMMANDS = ["demo", "calibrate", "measure", "catalog", "solve"]

__all__ = ["main", "build_parser"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="glue-zeropoint",
        description="Raw CCD frames to a calibrated, catalog-tied photometric zero point.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith(__package__):
                continue  # command not written yet
            raise
        module.add_parser(sub)
    return parser


def _setup_logging(verbosity):
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = showwarning


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"glue-zeropoint {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ZeropointError as err:
        print(f"glue-zeropoint {args.command}: failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"glue-zeropoint {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
