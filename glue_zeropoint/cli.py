"""The ``glue-zeropoint`` command.

``main(argv=None)`` parses the arguments and calls plain functions, so tests call
``main([...])`` directly. Each sub-command lives in :mod:`glue_zeropoint.commands` as a module
with ``add_parser(subparsers)``; the parser sets ``func(args) -> int``.

Exit codes (one policy for every command, applied here):

- 0: success;
- 2: the input cannot give a result: bad files or options, no stars, no match, a catalog
  without the band, no astrometric solution, offline with nothing cached
  (:class:`~glue_zeropoint.exceptions.InputError` and every other
  :class:`~glue_zeropoint.exceptions.ZeropointError`), with a one-line reason;
- 1: a step failed: a catalog service down or slow with nothing cached
  (:class:`~glue_zeropoint.exceptions.CatalogServiceError`), a result that could not be
  written, e.g. a full disk (:class:`~glue_zeropoint.exceptions.OutputError`; the file is
  named, nothing half-written is left), or an internal error (one line; the traceback with
  ``-v``);
- 3: ``archive`` only: some night failed or some frame was lost, the rest is stored (the
  summary names them; run again to complete);
- 130: interrupted or cancelled.
"""

import argparse
import importlib
import logging
import sys
import traceback
import warnings

from . import __version__
from .exceptions import Cancelled, CatalogServiceError, OutputError, ZeropointError

COMMANDS = ["demo", "calibrate", "measure", "catalog", "solve", "night", "archive"]

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
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
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
    name = f"glue-zeropoint {args.command}"
    try:
        return int(args.func(args) or 0)
    except (KeyboardInterrupt, Cancelled):
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (CatalogServiceError, OutputError) as err:
        print(f"{name}: failed: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # a write outside atomic_path: still name the file
        filename = getattr(err, "filename", None)
        where = f"{filename}: " if filename else ""
        print(f"{name}: failed: {where}{err.strerror or err}; check the disk and the folder "
              "(free space, permissions) and run again", file=sys.stderr)
        return 1
    except ZeropointError as err:
        print(f"{name}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug or an unforeseen failure: one line, traceback on -v
        logging.getLogger(__name__).debug("traceback", exc_info=True)
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(f"{name}: internal error: {type(err).__name__}: {_one_line(err)}{hint}",
              file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 1


def _one_line(err):
    return " ".join(str(err).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
