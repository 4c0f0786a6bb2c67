"""``fob train``: fine-tune FoB on a manifest of volumes (single process or torchrun DDP).

Prints machine-readable lines on stdout (``PROGRESS``, ``VALIDATION``, ``CHECKPOINT``, ``DONE``;
format in docs/training.md); the progress bar and messages go to stderr. Torch is imported only
when the command runs.
"""

from __future__ import annotations

import argparse

HELP = "Train or fine-tune the FoB prompt generator (supports torchrun for DDP)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="training YAML (defaults: the packaged train_default)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.lr=3e-4 --set episodes.max_dz=2 (repeatable)",
    )
    parser.add_argument("--manifest", help="volumes to train on (same as --set manifest=...)")
    parser.add_argument("--out", help="output folder for checkpoints and logs")
    parser.add_argument("--device", help="auto, cpu, cuda, mps (overrides the config)")
    parser.add_argument("--iterations", type=int, help="total optimiser steps")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/latest.pt (same step, lr, RNG)"
    )


def resolve(args: argparse.Namespace) -> dict:
    """The resolved run config: defaults <- --config <- --set <- the explicit flags."""
    from pathlib import Path

    from napari_fob.training.config import load_run_config

    overrides = list(args.overrides)
    if args.resume and not args.config and args.out and (Path(args.out) / "config.yaml").is_file():
        config_path = Path(args.out) / "config.yaml"  # resume with the run's own settings
    else:
        config_path = args.config
    for key, value in (
        ("manifest", args.manifest),
        ("out", args.out),
        ("device", args.device),
        ("train.iterations", args.iterations),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    return load_run_config(config_path, overrides)


def run(args: argparse.Namespace) -> int:
    from napari_fob.cli import UsageError
    from napari_fob.training import ddp

    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {args.iterations}")
    config = resolve(args)
    from napari_fob.training.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume)
        trainer.fit(progress=not args.quiet)
    finally:
        ddp.cleanup()
    return 0
