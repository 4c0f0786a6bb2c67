"""Summaries of the prompt-quality benchmark: per-slice rows -> JSON, Markdown table and plot.

Pure numpy + matplotlib (Agg); never napari, Qt or torch.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

KEYS = ("bg_inside", "fg_outside", "ring_error", "ring_coverage", "dice", "dice_sam")
LOWER_IS_BETTER = {"bg_inside": True, "fg_outside": True, "ring_error": True}
BINS = (("1-2", 1, 2), ("3-4", 3, 4), ("5-9", 5, 9), ("10+", 10, None), (">=5", 5, None))


def _in_bin(dz: int, lo: int, hi: int | None) -> bool:
    return dz >= lo and (hi is None or dz <= hi)


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else None


def _stats(rows: list[dict]) -> dict:
    out = {key: _mean(rows, key) for key in KEYS if any(key in r for r in rows)}
    out["n_slices"] = len(rows)
    return out


def summarise(rows: list[dict]) -> dict:
    """Per-slice rows (method, dataset, case, structure, dz, metrics) -> one object per method.

    Each method: ``overall``, ``by_dz`` (bins 1-2, 3-4, 5-9, 10+ and >=5), ``by_dataset`` (each
    with its own ``by_dz``), ``per_structure`` (``case/structure`` -> overall and >=5).
    """
    methods: dict[str, dict] = {}
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_method[r["method"]].append(r)
    for method, mrows in by_method.items():
        entry = {"overall": _stats(mrows), "by_dz": _by_dz(mrows), "by_dataset": {}}
        for dataset in sorted({r["dataset"] for r in mrows}):
            drows = [r for r in mrows if r["dataset"] == dataset]
            entry["by_dataset"][dataset] = {"overall": _stats(drows), "by_dz": _by_dz(drows)}
        per_structure = {}
        for key in sorted({f"{r['case']}/{r['structure']}" for r in mrows}):
            srows = [r for r in mrows if f"{r['case']}/{r['structure']}" == key]
            far = [r for r in srows if r["dz"] >= 5]
            per_structure[key] = {"overall": _stats(srows), "dz>=5": _stats(far)}
        entry["per_structure"] = per_structure
        entry["ring_error_by_dz"] = {
            str(dz): _mean([r for r in mrows if r["dz"] == dz], "ring_error")
            for dz in sorted({r["dz"] for r in mrows})
        }
        methods[method] = entry
    return methods


def _by_dz(rows: list[dict]) -> dict:
    return {name: _stats([r for r in rows if _in_bin(r["dz"], lo, hi)]) for name, lo, hi in BINS}


def target(
    methods: dict,
    *,
    scope: str | None = None,
    model: str = "fob",
    baselines: tuple[str, ...] = ("mask-ring", "mask-ring-chain", "copy"),
) -> dict:
    """Does `model` beat every baseline on ring_error and bg_inside for |dz| >= 5?

    Beating means a lower mean; a tie at exactly 0 (no ring point inside for either) counts.
    """

    def far(method: str) -> dict:
        m = methods[method]
        return (m["by_dataset"][scope] if scope else m)["by_dz"][">=5"]

    fob = far(model)
    out = {"scope": scope or "all", "model": model, "baselines": list(baselines)}
    out[model] = {k: fob.get(k) for k in ("ring_error", "bg_inside")}
    verdicts = []
    for base in baselines:
        for key in ("ring_error", "bg_inside"):
            b, f = far(base).get(key), fob.get(key)
            ok = f is not None and b is not None and (f < b or f == b == 0)
            out[f"{base}/{key}"] = {"baseline": b, "gap": None if b is None or f is None else f - b}
            verdicts.append(ok)
    out["met"] = bool(verdicts) and all(verdicts)
    return out


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if key == "ring_error" else f"{value:.3f}"


def markdown(report: dict) -> str:
    """Tables: |dz| >= 5 per dataset, all bins over every case, and the target verdict."""
    methods = report["methods"]
    keys = [k for k in KEYS if k in methods["fob"]["overall"]]
    head = "| method | " + " | ".join(keys) + " | slices |"
    rule = "|---" * (len(keys) + 2) + "|"
    lines = []
    for scope in [None, *sorted(methods["fob"]["by_dataset"])]:
        title = "all cases" if scope is None else scope
        lines += [f"**|dz| >= 5, {title}**", "", head, rule]
        for name, m in methods.items():
            s = (m["by_dataset"][scope] if scope else m)["by_dz"][">=5"]
            vals = " | ".join(_fmt(s.get(k), k) for k in keys)
            lines.append(f"| {name} | {vals} | {s['n_slices']} |")
        lines.append("")
    lines += ["**ring_error by |dz| bin, all cases**", ""]
    bins = [b[0] for b in BINS]
    lines += ["| method | " + " | ".join(bins) + " |", "|---" * (len(bins) + 1) + "|"]
    for name, m in methods.items():
        vals = " | ".join(_fmt(m["by_dz"][b].get("ring_error"), "ring_error") for b in bins)
        lines.append(f"| {name} | {vals} |")
    lines.append("")
    for t in report["target"]:
        verdict = "met" if t["met"] else "NOT met"
        gaps = ", ".join(
            f"{k}: {v['gap']:+.3g}"
            for k, v in t.items()
            if isinstance(v, dict) and "gap" in v and v["gap"] is not None
        )
        lines.append(
            f"- {t['model']} vs {', '.join(t['baselines'])} on {t['scope']} ({t['model']} minus "
            "baseline, negative is better): "
            f"**{verdict}** ({gaps})."
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path:
    """ring_error (grid px, 256 grid) against |dz| per method, all cases pooled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, m in report["methods"].items():
        pts = [(int(dz), v) for dz, v in m["ring_error_by_dz"].items() if v is not None]
        pts = [p for p in pts if p[0] <= 20]
        style = "--" if name == "copy" else "-"  # copy == fixed mask-ring: keep both visible
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", ms=3, label=name)
    ax.set_xlabel("|dz| from the support slice")
    ax.set_ylabel("ring_error (px at the 256 grid)")
    ax.set_title("Background-ring error against distance from the support")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_section(docs: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of a Markdown file, keeping the others."""
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.rstrip()}\n"
    start = text.find(f"\n## {title}\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + ("" if end < 0 else text[end:])
    docs.write_text(text)


def machine() -> dict:
    """The machine a benchmark ran on, recorded beside its numbers (cores, platform, the load
    average when it ended: other jobs on a small CPU change every wall time)."""
    import os
    import platform

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_end": os.getloadavg(),
    }
