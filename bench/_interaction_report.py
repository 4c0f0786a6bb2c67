"""Tables and the Dice-vs-actions plot of `bench/interaction.py` results (issue 18).

``python bench/interaction.py --report PNG --from NAME=result.json ...`` prints the Markdown
tables (per method, then per structure) of each result and draws every method's mean curve,
one panel per result. matplotlib is imported only here.
"""

from __future__ import annotations

import json
from pathlib import Path


def load(named: list[str]) -> list[tuple[str, dict]]:
    """[(title, report)] from NAME=path arguments."""
    out = []
    for item in named:
        title, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--from {item!r}: expected NAME=result.json")
        out.append((title, json.loads(Path(path).read_text())))
    return out


# Lower Dice levels read off the same curves: with a random walker no method reaches the 0.85
# target in N actions, so mean_actions ties at N + 1; these show which loop gets there first
# at the levels the segmenter can reach (supplementary, never in place of the target).
LOWER_TARGETS = (0.6, 0.7)


def mean_actions_at(row: dict, target: float) -> float:
    """A method's mean over structures of the first action count whose Dice >= `target`
    (N + 1 when none), from its per-structure curves."""
    counts = []
    for r in row["per_label"].values():
        curve = r["curve"]
        counts.append(next((i for i, d in enumerate(curve) if d >= target), len(curve)))
    return sum(counts) / len(counts)


def markdown(title: str, report: dict) -> str:
    s = report["settings"]
    lines = [
        f"**{title}** (target Dice {s['target']}, N = {s['max_actions']} actions, "
        f"{s['segmenter']['kind']})",
        "",
        "| method | auc | mean_actions | final_dice | Dice after 0..N actions |",
        "|---|---|---|---|---|",
    ]
    for name, row in report["methods"].items():
        curve = " ".join(f"{d:.3f}" for d in row["curve"])
        lines.append(
            f"| {name} | {row['auc']:.3f} | {row['mean_actions']:.2f} | "
            f"{row['final_dice']:.3f} | {curve} |"
        )
    labels = list(next(iter(report["methods"].values()))["per_label"])
    names = [next(iter(report["methods"].values()))["per_label"][k]["name"] for k in labels]
    lines += ["", "| structure | " + " | ".join(report["methods"]) + " |",
              "|---|" + "---|" * len(report["methods"])]  # fmt: skip
    for key, name in zip(labels, names):
        cells = []
        for row in report["methods"].values():
            r = row["per_label"][key]
            cells.append(f"{r['auc']:.3f} / {r['actions']} / {r['final_dice']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Per structure: auc / actions to the target (N + 1: not reached) / final Dice.")
    lines += ["", "| mean_actions at a lower Dice (same curves) | "
              + " | ".join(report["methods"]) + " |",
              "|---|" + "---|" * len(report["methods"])]  # fmt: skip
    for level in LOWER_TARGETS:
        cells = [f"{mean_actions_at(row, level):.2f}" for row in report["methods"].values()]
        lines.append(f"| Dice {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(reports: list[tuple[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(5.2 * len(reports), 3.8), squeeze=False)
    for ax, (title, report) in zip(axes[0], reports):
        for name, row in report["methods"].items():
            ax.plot(range(len(row["curve"])), row["curve"], marker="o", label=name)
        ax.axhline(report["settings"]["target"], color="grey", lw=0.8, ls="--")
        ax.set(title=title, xlabel="actions", ylabel="3D Dice (mean over structures)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
