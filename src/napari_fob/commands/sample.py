"""``fob sample NAME --out DIR``: write a sample volume, its ground truth and support masks."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Write a sample volume with ground truth, a one-slice support mask and label names."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from napari_fob.samples import SAMPLE_NAMES

    parser.add_argument("name", metavar="NAME", help=f"one of: {', '.join(SAMPLE_NAMES)}")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--seed", type=int, default=None, help="phantom seed (abdomen-phantom only; default 0)"
    )


def run(args: argparse.Namespace) -> int:
    from napari_fob.cli import UsageError
    from napari_fob.samples import SAMPLE_NAMES, load_sample, save_sample, support_slices

    if args.name not in SAMPLE_NAMES:
        raise UsageError(
            f"unknown sample {args.name!r}; available samples: {', '.join(SAMPLE_NAMES)}"
        )
    if args.seed is not None and args.name != "abdomen-phantom":
        raise UsageError(f"--seed applies to abdomen-phantom only, not to {args.name!r}")
    sample = load_sample(args.name, seed=args.seed)
    paths = save_sample(sample, args.out)
    print(f"{args.name}: {sample.description}")
    print(f"  shape (Z, Y, X) {sample.image.data.shape}, spacing {sample.image.spacing} mm")
    slices = support_slices(sample.labels)
    for value, name in sorted(sample.names.items()):
        print(f"  label {value}: {name} (support on slice {slices.get(value, '-')})")
    for key, path in paths.items():
        print(f"wrote {key:8s} {path}")
    return 0
