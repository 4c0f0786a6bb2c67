"""``fob weights``: list the known weights, download one (sha256-checked), print a path.

Standard library only at import time (the ``fob`` tool imports every command module for
``--help``); never imports torch, napari or Qt.
"""

from __future__ import annotations

import argparse
import sys

HELP = "List, download (sha256-checked, retried) or locate model weights (SAM checkpoints)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from napari_fob.cli import add_common_options

    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    sub.add_parser("list", help="known weights, where they go, and whether they are found")
    down = sub.add_parser("download", help="download official weights (needs internet)")
    down.add_argument("name", help="sam-vit-b, sam-vit-l or sam-vit-h")
    down.add_argument("--dest", default=None, help="target folder (default: the weights folder)")
    down.add_argument("--no-progress", action="store_true", help="no progress bar (as --quiet)")
    where = sub.add_parser("path", help="print the path of weights that are found")
    where.add_argument("name", help="sam-vit-b, sam-vit-l or sam-vit-h")
    from napari_fob.commands.weights_official import add_convert_parser

    conv = add_convert_parser(sub)
    for action in (sub.choices["list"], down, where, conv):
        add_common_options(action, nested=True)


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.0f} MB"


def _find(name: str):
    from napari_fob.cli import UsageError
    from napari_fob.segmenters import weights

    try:
        info = weights.weights_info(name)
    except ValueError as err:
        raise UsageError(str(err)) from err
    return info, weights.find_sam_checkpoint(info.model_type)


def _list() -> int:
    from napari_fob.segmenters import weights

    print(f"weights folder: {weights.paths.weights_dir()}")
    for name, info in weights.WEIGHTS.items():
        try:
            found = weights.find_sam_checkpoint(info.model_type)
            state = f"found: {found}" if found else "missing"
        except (FileNotFoundError, ValueError) as err:
            state = f"error: {err}"
        print(
            f"  {name:10s} {info.model_type:6s} {_size(info.size):>9s}  {info.filename}  [{state}]"
        )
    print("search order: --sam-checkpoint, $FOB_SAM_CHECKPOINT, sam_checkpoint in the user config")
    print(f"  ({weights.paths.user_config_file()}), then the weights folder")
    return 0


def run(args: argparse.Namespace) -> int:
    from napari_fob.cli import UsageError

    action = getattr(args, "weights_command", None)
    from napari_fob.commands import weights_official

    if action in (None, "list"):
        code = _list()
        weights_official.list_official()
        return code
    if action == "convert":
        return weights_official.run_convert(args)
    if action == "path":
        info, found = _find(args.name)
        if found is None:
            from napari_fob.segmenters.weights import sam_search_locations

            looked = "; ".join(f"{w}: {p}" for w, p in sam_search_locations(info.model_type))
            print(f"{info.name} not found (looked in: {looked}); get it with "
                  f"`fob weights download {info.name}`", file=sys.stderr)  # fmt: skip
            return 1
        print(found)
        return 0
    from napari_fob.segmenters import weights

    try:
        info = weights.weights_info(args.name)
    except ValueError as err:
        raise UsageError(str(err)) from err
    print(f"downloading {info.name} ({_size(info.size)}) from {info.url}", file=sys.stderr)
    try:
        path = weights.download(info, args.dest, progress=not (args.no_progress or args.quiet))
    except weights.DownloadError as err:
        print(f"fob weights: error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0
