"""``fob segment --adapt SECONDS``: adapt FoB to each volume before its prompts are predicted.

Per volume, the FoB model is fine-tuned for the budget on the volume's own self-supervised
episodes (`napari_fob.training.adapt`), from the loaded weights every time (one volume's
adaptation never carries over to the next), and the volume is then prompted with the adapted
copy. The adapted weights are cached by the scan, the base weights, the support and the budget
(`training.adapt_cache`), so running the same command again reuses them. The adaptation's
record (budget, steps, seconds, cache hit, base weights' identity) is part of the generator's
``describe()``, so it is written as ``prompts.adaptation`` in ``report.json`` and
``generator.adaptation`` in the sidecar. Nothing heavy is imported at module import.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

from napari_fob.cli import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapt",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fine-tune FoB on this volume's own self-supervised episodes for SECONDS before "
        "predicting (0: off; cached, docs/training.md 'Adapt to this scan'); FoB prompts only",
    )


def check(args: argparse.Namespace, jobs: list[Any]) -> None:
    """Refuse a bad ``--adapt`` before any model is loaded (UsageError: exit status 2)."""
    seconds = getattr(args, "adapt", 0.0) or 0.0
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"--adapt {seconds:g}: expected a number of seconds >= 0 (0: off)")
    if seconds and args.prompts != "fob":
        raise UsageError(
            f"--adapt adapts the FoB model; --prompts {args.prompts} has no model to adapt. "
            "Use --prompts fob, or leave --adapt out."
        )
    if seconds and any(job.reference for job in jobs):
        raise UsageError(
            "--adapt needs a support painted on the volume itself; it cannot be used with "
            "supports taken from a reference scan"
        )


def for_job(generator: Any, job: Any, args: argparse.Namespace, labels: Any, window: Any) -> Any:
    """The generator to prompt `job`'s volume with: `generator` itself without ``--adapt``,
    else a copy over weights adapted to the volume (`training.adapt.adapted_generator`)."""
    if not getattr(args, "adapt", 0.0):
        return generator
    import numpy as np
    from tqdm import tqdm

    from napari_fob.commands.segment_job import choose_labels, read_inputs
    from napari_fob.core.intensity import normalise, resolve_window
    from napari_fob.training.adapt import AdaptSettings, adapt_cached, adapted_generator

    predictor = getattr(generator, "predictor", None)
    if getattr(getattr(predictor, "model", None), "config", None) is None or (
        predictor.model.config.inference != "product"
    ):
        raise UsageError(
            f"--adapt: the FoB checkpoint {args.fob_checkpoint!r} (the authors' weights) runs "
            "their own inference and cannot be adapted; use a napari-fob checkpoint"
        )
    image, support = read_inputs(job.image, job.support, series=getattr(args, "series", None))
    chosen = choose_labels(support, labels, job.support)
    supports = np.where(np.isin(support, chosen), support, 0).astype(np.int32)
    volume01 = normalise(image.data, resolve_window(image.data, window))
    quiet = True if args.quiet else None  # None: a bar on a terminal only
    with tqdm(total=round(args.adapt), desc="adapt", unit="s", disable=quiet, leave=False) as bar:

        def progress(elapsed: float, budget: float, steps: int, loss: float | None) -> None:
            bar.n = min(round(elapsed), bar.total)
            bar.set_postfix(steps=steps, refresh=True)

        result = adapt_cached(
            predictor.model, volume01, supports, spacing=tuple(image.spacing),
            settings=AdaptSettings(seconds=float(args.adapt)), progress=progress,
            device=predictor.device,
        )  # fmt: skip
    record = result.record
    log.info(
        "%s: FoB adapted to this volume, %d steps in %.1f s%s (loss %s -> %s)",
        job.image, record["steps"], record["seconds"],
        " (cached)" if record["cache_hit"] else "", record["loss_first"], record["loss_last"],
    )  # fmt: skip
    return adapted_generator(generator, result)
