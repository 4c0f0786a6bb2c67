"""``fob weights convert`` and the authors' FoB checkpoints in ``fob weights list``.

Standard library only at import time; torch is imported by the conversion itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_convert_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``convert`` action (on `sub`, an argparse sub-parsers object): the authors' ``.pth``
    -> a napari-fob checkpoint."""
    conv = sub.add_parser(
        "convert",
        help="convert the FoB authors' checkpoint (.pth from their model hub) for napari-fob",
    )
    conv.add_argument("source", metavar="OFFICIAL.pth", help="their checkpoint file")
    conv.add_argument(
        "--out", required=True, metavar="FILE.pt",
        help="the converted checkpoint (e.g. fob-abd-ct.pt; in the weights folder it is found "
        "by its name: --fob-checkpoint fob-abd-ct)",
    )  # fmt: skip
    conv.add_argument("--overwrite", action="store_true", help="replace an existing FILE.pt")
    return conv


def run_convert(args: argparse.Namespace) -> int:
    """Convert; bad files are ValueErrors (exit 2), a missing one a FileNotFoundError."""
    from pathlib import Path

    from napari_fob.model.convert import convert_official

    out = Path(args.out).expanduser()
    if out.exists() and out.resolve() == Path(args.source).expanduser().resolve():
        raise ValueError(f"--out {out}: is the checkpoint being converted; choose another file")
    if out.exists() and not args.overwrite:
        raise ValueError(f"--out {out}: exists; pass --overwrite to replace it")
    path = convert_official(args.source, out, name=out.stem)
    print(path)
    return 0


def list_official() -> None:
    """Print the authors' checkpoints: name, data, paper Dice, and whether converted."""
    from napari_fob.model.official_weights import (
        CODE_URL,
        HUB_URL,
        LICENCE,
        OFFICIAL_CHECKPOINTS,
        converted_path,
    )

    print(f"FoB authors' checkpoints ({LICENCE}, code {CODE_URL}, weights {HUB_URL}):")
    for name, info in OFFICIAL_CHECKPOINTS.items():
        path = converted_path(name)
        state = f"found: {path}" if path.is_file() else "missing"
        print(f"  {name:16s} {info.trained_on}; paper Dice with SAM ViT-H {info.paper_dice}")
        print(f"  {'':16s} {path.name}  [{state}]")
    print("  get one: download its .pth from the hub while online, then")
    print("  `fob weights convert FILE.pth --out <weights folder>/fob-abd-ct.pt`", file=sys.stdout)
