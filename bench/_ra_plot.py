"""The real-anatomy benchmark's figure (docs/images/real_anatomy.png), drawn from its report.

Left: 3D Dice at |dz| >= 5 per method with the bootstrap 95 % interval over structures, test
and tune split side by side (test first: it is the held-out one). Right: Dice of the main
methods by distance from the support (|dz| bins), test split. matplotlib with the Agg backend,
so it runs headless.
"""

from __future__ import annotations

from pathlib import Path

MAIN = ("fob", "registration", "mask-ring", "fob-paper", "oracle")
BINS = ("1-2", "3-4", "5-9", "10+")


def plot(report: dict, path: Path) -> Path:
    """Draw the figure of `report` (bench/results/real_anatomy.json's content) into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(report["test"])
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(1.3, 1))
    y = np.arange(len(methods))
    for offset, split, colour in ((-0.18, "test", "#1f77b4"), (0.18, "tune", "#aaaaaa")):
        rows = [report[split][m] for m in methods]
        dice = np.array([r["dice"] for r in rows])
        lo = dice - np.array([r["ci95"]["dice"][0] for r in rows])
        hi = np.array([r["ci95"]["dice"][1] for r in rows]) - dice
        bars.barh(y + offset, dice, height=0.34, color=colour, xerr=(lo, hi), capsize=2,
                  label=f"{split} split")  # fmt: skip
    bars.set_yticks(y, methods)
    bars.invert_yaxis()
    bars.set_xlabel("3D Dice, slices |dz| >= 5 (95 % interval over structures)")
    bars.set_xlim(0, 1)
    bars.legend(loc="lower right")
    bars.set_title("Real T1 MRI: held-out (test) and tune structures")
    def scored(b: str) -> bool:  # the stride may leave a bin without slices (e.g. 3-4)
        value = report["test"]["fob"]["by_dz"].get(b, {}).get("dice")
        return value is not None and np.isfinite(value)

    shown = [b for b in BINS if scored(b)]
    for method in [m for m in MAIN if m in report["test"]]:
        by = report["test"][method]["by_dz"]
        lines.plot(shown, [by[b]["dice"] for b in shown], marker="o", label=method)
    lines.set_xlabel("|dz| from the painted support (slices)")
    lines.set_ylabel("3D Dice (test split)")
    lines.set_ylim(0, 1)
    lines.legend()
    lines.set_title("By distance from the support")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
