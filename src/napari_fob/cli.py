"""The ``fob`` command line tool.

Each subcommand lives in ``napari_fob.commands.<name>`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs (or for ``--help``), so ``fob info`` stays fast and nothing heavy loads at start.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from napari_fob import __version__

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


class UsageError(Exception):
    """Bad input from the user: printed as one paragraph, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fob",
        description="napari-fob: FoB prompts + SAM for few-shot 3D annotation.",
    )
    parser.add_argument("--version", action="version", version=f"fob (napari-fob) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"napari_fob.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UsageError as err:
        print(f"fob {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as err:
        print(f"fob {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
