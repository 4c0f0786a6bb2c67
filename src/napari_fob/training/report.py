"""Evaluation reports: the results dict as JSON and as a Markdown table. No torch here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from napari_fob.core import atomic

COLUMNS = ("dice", "bg_inside", "fg_outside", "ring_error", "ring_coverage", "n_slices")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(results: dict[str, Any], names: dict[int, str] | None = None) -> str:
    """Per-structure rows (and per |dz| bin rows when present) as GitHub Markdown."""
    names = names or {}
    per_label = results.get("per_label", {})
    cols = [c for c in COLUMNS if any(c in row for row in per_label.values())]
    lines = ["| structure | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, row in per_label.items():
        name = names.get(int(label), str(label))
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
    lines.append("| **mean** | " + " | ".join(_fmt(results.get(c, "")) for c in cols) + " |")
    if results.get("by_dz"):
        dz_cols = [c for c in COLUMNS if any(c in row for row in results["by_dz"].values())]
        lines += [
            "",
            "| abs(dz) | " + " | ".join(dz_cols) + " |",
            "|---" * (len(dz_cols) + 1) + "|",
        ]
        for name, row in results["by_dz"].items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, "")) for c in dz_cols) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    results: dict[str, Any], out_dir: str | Path, *, names: dict[int, str] | None = None
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into `out_dir`; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "results.md"

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        if isinstance(obj, float) and math.isnan(obj):
            return None
        return obj

    atomic.write_json(json_path, clean(results), indent=2)
    header = results.get("title", "Evaluation")
    atomic.write_text(md_path, f"# {header}\n\n" + markdown_table(results, names))
    return json_path, md_path
