"""``fob weights``: list the known weights, download one (sha256-checked), print a path.

Standard library only at import time (the ``fob`` tool imports every command module for
``--help``); never imports torch, napari or Qt.
"""

from __future__ import annotations

import argparse
import sys

HELP = (
    "List, download (sha256-checked where a sum is published, retried) or locate model "
    "weights (SAM and SAM 2.1 checkpoints)."
)

NAME_HELP = "a name from `fob weights list`, e.g. sam-vit-b or sam2.1-hiera-t"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from napari_fob.cli import add_common_options

    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    sub.add_parser("list", help="known weights, where they go, and whether they are found")
    down = sub.add_parser("download", help="download official weights (needs internet)")
    down.add_argument("name", help=NAME_HELP)
    down.add_argument("--dest", default=None, help="target folder (default: the weights folder)")
    down.add_argument("--no-progress", action="store_true", help="no progress bar (as --quiet)")
    where = sub.add_parser("path", help="print the path of weights that are found")
    where.add_argument(
        "name", help="a name from `fob weights list`, e.g. sam-vit-b, sam2.1-hiera-t"
    )
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
    return info, weights.find_checkpoint(info)


def _list() -> int:
    from napari_fob.segmenters import weights

    print(f"weights folder: {weights.paths.weights_dir()}")
    for name, info in weights.WEIGHTS.items():
        try:
            found = weights.find_checkpoint(info)
            state = f"found: {found}" if found else "missing"
        except (FileNotFoundError, ValueError) as err:
            state = f"error: {err}"
        sha = "sha256 " + info.sha256[:12] if info.sha256 else "sha256 unknown"
        print(
            f"  {name:16s} {info.model_type:8s} {_size(info.size):>9s}  {sha:19s}  "
            f"{info.filename}  [{state}]"
        )
        print(f"  {'':16s} {info.url}")
    print("search order: --sam-checkpoint, $FOB_SAM_CHECKPOINT, sam_checkpoint in the user config")
    print(f"  ({weights.paths.user_config_file()}), then the weights folder; SAM 2.1 the same")
    print("  with --sam2-checkpoint, $FOB_SAM2_CHECKPOINT and sam2_checkpoint (MedSAM2: give its")
    print("  file there, with --sam2-model hiera_t --sam2-input-size 512)")
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
            from napari_fob.segmenters.weights import search_locations

            looked = "; ".join(f"{w}: {p}" for w, p in search_locations(info))
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
