"""Training logs of rank 0: CSV files (always), TensorBoard (when installed), progress lines.

``OUT/train_log.csv``: one row per logging interval (step, lr, loss terms, grad norm, alpha,
skipped episodes, seconds per step). ``OUT/val_log.csv``: one row per validation. Both are
appended to on resume. TensorBoard event files go to ``OUT/tensorboard``. No torch import here
besides TensorBoard's writer. `emit` prints the machine-readable stdout lines of
docs/training.md (``PROGRESS``, ``VALIDATION``, ``CHECKPOINT``, ``DONE``).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRAIN_COLUMNS = (
    "step",
    "lr",
    "total",
    "rac",
    "heat",
    "coor",
    "fore",
    "grad_norm",
    "alpha",
    "skipped",
    "sec_per_step",
)


class RunLog:
    """Appends scalars to CSV and TensorBoard under `out`."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is the optional `train` extra
            SummaryWriter = None
            log.warning(
                "TensorBoard is not installed, so no event files are written (the CSV logs in "
                "%s still are); install it with `pip install tensorboard` or the `train` extra",
                self.out,
            )
        if SummaryWriter is not None:
            self.writer = SummaryWriter(log_dir=str(self.out / "tensorboard"))

    def _append(self, name: str, columns: tuple[str, ...], row: dict[str, Any]) -> None:
        path = self.out / name
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in columns})

    def scalars(self, step: int, lr: float, values: dict[str, float]) -> None:
        """One training row: `values` holds the loss terms and diagnostics."""
        self._append("train_log.csv", TRAIN_COLUMNS, {"step": step, "lr": lr, **values})
        if self.writer is not None:
            self.writer.add_scalar("train/lr", lr, step)
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    def validation(self, step: int, results: dict[str, Any]) -> None:
        """One validation row: the float entries of `results`."""
        scalars = {k: v for k, v in results.items() if isinstance(v, float)}
        self._append("val_log.csv", ("step", *sorted(scalars)), {"step": step, **scalars})
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(f"val/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def emit(event: str, /, **fields: Any) -> None:
    """Print one machine-readable line (``EVENT key=value ...``; a ``path`` field goes last)."""
    path = fields.pop("path", None)
    parts = [event]
    for key, value in fields.items():
        parts.append(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}")
    if path is not None:
        parts.append(f"path={path}")
    print(" ".join(parts), flush=True)
