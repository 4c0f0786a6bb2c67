"""The ``fob`` command line tool.

Each subcommand lives in ``napari_fob.commands.<name>`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs (or for ``--help``), so ``fob info`` stays fast and nothing heavy loads at start.

Every command also takes ``--verbose``, ``--quiet`` (errors only, and no progress bars) and
``--debug`` (full tracebacks). `main` is the one error boundary: an expected failure becomes one
paragraph on stderr and an exit status (`EXIT_USAGE`, `EXIT_ENVIRONMENT`, `EXIT_INTERRUPTED`);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback

from napari_fob import __version__

log = logging.getLogger("napari_fob")

# command name -> module under napari_fob.commands
COMMANDS: dict[str, str] = {
    "info": "info",
    "sample": "sample",
    "segment": "segment",
    "demo": "demo",
    "weights": "weights",
    "pseudolabel": "pseudolabel",
    "train": "train",
    "evaluate": "evaluate",
}

EXIT_USAGE = 2  # bad input: an option, a value, the content of an input file
EXIT_ENVIRONMENT = 1  # the machine: a file that is not there or not readable, disk, network
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

# What to check for the commonest environment errors (said after the system's message).
_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check the file's permissions",
    errno.EPERM: "check the file's permissions",
    errno.ENOSPC: "free some disk space",
    errno.EFBIG: "the disk is full or the file-size limit (ulimit -f) is reached",
    errno.EROFS: "write somewhere writable (--out)",
}


class UsageError(Exception):
    """Bad input from the user: printed as one paragraph, exit status 2."""


def add_common_options(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--verbose``, ``--quiet``, ``--debug``. A command that has its own ``--quiet`` ("no
    progress bars") keeps it; the same flag then also lowers the log level. `nested`: for the
    actions under a command (``fob weights download``), whose defaults must not reset a flag
    given before the action (``fob weights --quiet download``)."""
    default = argparse.SUPPRESS if nested else False
    group = parser.add_argument_group("messages")
    group.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="also informational and debug messages",
    )
    try:
        group.add_argument(
            "--quiet",
            action="store_true",
            default=default,
            help="errors only: no warnings, no progress bars",
        )
    except argparse.ArgumentError:
        pass  # the command defines --quiet itself
    group.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the full traceback when something fails",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fob",
        description="napari-fob: FoB prompts + SAM for few-shot 3D annotation.",
        epilog="Exit status: 0 done, 2 bad input, 1 environment (files, permissions, disk, "
        "network), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"fob (napari-fob) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"napari_fob.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        add_common_options(p)
        p.set_defaults(_run=module.run)
    return parser


class _StderrHandler(logging.Handler):
    """Log records on stderr as ``fob CMD: warning: ...``, written around a running tqdm bar
    instead of through it."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            if record.levelno < logging.INFO:
                level += f" [{record.name}]"
            text = f"fob {self.command}: {level}: {record.getMessage()}"
            tqdm = sys.modules.get("tqdm")
            if tqdm is not None:
                tqdm.tqdm.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr)
        except Exception:  # noqa: BLE001 (logging must never raise)
            self.handleError(record)


def log_level(args: argparse.Namespace) -> int:
    """WARNING by default; ``--quiet`` ERROR; ``--verbose`` or ``--debug`` DEBUG."""
    if getattr(args, "verbose", False) or getattr(args, "debug", False):
        return logging.DEBUG
    if getattr(args, "quiet", False):
        return logging.ERROR
    return logging.WARNING


def _start_logging(args: argparse.Namespace) -> logging.Handler:
    handler = _StderrHandler(args.command)
    log.addHandler(handler)
    log.setLevel(log_level(args))
    return handler


def _os_message(err: OSError) -> str:
    """'<what failed>: <file>; <what to check>' from an OSError."""
    if err.strerror and err.filename is not None:
        text = f"{err.strerror}: {err.filename}"
        if err.filename2 is not None:
            text += f" -> {err.filename2}"
    else:  # one paragraph: some libraries put a newline in theirs (nibabel's short read)
        text = " ".join(str(err).split()) or type(err).__name__
    hint = _OS_HINTS.get(err.errno)
    return f"{text}; {hint}" if hint else text


def _fail(args: argparse.Namespace, message: str, status: int, *, hint: bool = True) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    elif hint:
        message += " (run with --debug for the traceback)"
    print(f"fob {args.command}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    level = log.level
    handler = _start_logging(args)
    log.debug("napari-fob %s, python %s: %s", __version__, sys.version.split()[0], sys.argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", EXIT_INTERRUPTED, hint=False)
    except UsageError as err:
        return _fail(args, str(err), EXIT_USAGE, hint=False)
    except ValueError as err:
        return _fail(args, str(err), EXIT_USAGE)
    except OSError as err:  # FileNotFoundError, PermissionError, disk full, URLError
        return _fail(args, _os_message(err), EXIT_ENVIRONMENT)
    except Exception as err:  # the boundary: a bug still ends in one paragraph, not a traceback
        return _fail(args, f"unexpected {type(err).__name__}: {err}", EXIT_ENVIRONMENT)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)  # a library user's (or the next test's) logging stays as it was


if __name__ == "__main__":  # pragma: no cover
    # `python -m napari_fob.cli`: run the imported module's main, so that the UsageError the
    # commands raise (napari_fob.cli.UsageError) is the class caught, not __main__'s copy.
    from napari_fob.cli import main as _main

    sys.exit(_main())
