"""Summaries of the real-anatomy benchmark: per-slice rows -> per-structure rows -> means with
bootstrap intervals over structures, by split, plane and |dz| bin; the Markdown table.

Pure numpy; never napari, Qt or torch.
"""

from __future__ import annotations

import numpy as np

from napari_fob.commands.demo_anatomy import structure_row

KEYS = ("dice", "ring_error", "bg_inside", "fg_outside", "ring_coverage")
BINS = (("1-2", 1, 2), ("3-4", 3, 4), ("5-9", 5, 9), ("10+", 10, None), (">=5", 5, None))
PLANES = ("sagittal", "coronal", "axial")


def _in_bin(dz: int, lo: int, hi: int | None) -> bool:
    return dz >= lo and (hi is None or dz <= hi)


def _bootstrap(values: np.ndarray, n: int = 2000, seed: int = 0) -> list[float] | None:
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def aggregate(units: list[dict], *, ci: bool = True) -> dict:
    """Per-structure rows -> the mean over structures of each key (+ bootstrap 95 % CI)."""
    out: dict = {"n_structures": len(units), "n_slices": int(sum(u["n_slices"] for u in units))}
    cis = {}
    for key in KEYS:
        vals = np.array([u[key] for u in units if u.get(key) is not None], dtype=float)
        out[key] = float(vals.mean()) if len(vals) else None
        if ci:
            cis[key] = _bootstrap(vals)
    if ci:
        out["ci95"] = cis
    return out


def summarise(rows: list[dict], methods: tuple[str, ...]) -> dict:
    """Per split, per method: |dz| >= 5 means over structures (pooled over the three planes,
    a structure seen along each axis counting once per axis) with bootstrap intervals, the same
    per plane, every |dz| bin, and the per-structure rows."""
    report: dict = {}
    for split in ("test", "tune"):
        srows = [r for r in rows if r["split"] == split]
        if not srows:
            continue
        report[split] = {}
        for method in methods:
            mrows = [r for r in srows if r["method"] == method]
            if not mrows:
                continue
            units = sorted({(r["plane"], r["structure"]) for r in mrows})
            per_unit = {u: [r for r in mrows if (r["plane"], r["structure"]) == u] for u in units}

            def unit_rows(lo, hi, plane=None, per_unit=per_unit):
                out = []
                for (p, s), ur in per_unit.items():
                    sel = [r for r in ur if _in_bin(r["dz"], lo, hi)]
                    if sel and (plane is None or p == plane):
                        out.append({"plane": p, "structure": s, **structure_row(sel)})
                return out

            far = unit_rows(5, None)
            entry = aggregate(far)
            entry["by_plane"] = {
                plane: aggregate(unit_rows(5, None, plane))
                for plane in PLANES
                if any(p == plane for p, _ in units)
            }
            entry["by_dz"] = {name: aggregate(unit_rows(lo, hi), ci=False) for name, lo, hi in BINS}
            entry["per_structure"] = far
            entry["per_structure_all"] = unit_rows(1, None)
            report[split][method] = entry
    return report


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if key == "ring_error" else f"{value:.3f}"


def _cell(entry: dict, key: str) -> str:
    text = _fmt(entry.get(key), key)
    ci = (entry.get("ci95") or {}).get(key)
    if ci is not None:
        text += f" [{_fmt(ci[0], key)}, {_fmt(ci[1], key)}]"
    return text


def _dice_ring_table(title: str, methods: dict, group: str, columns: list[str]) -> list[str]:
    """A table of "Dice / ring_error" cells: one row per method, one column per key of
    ``entry[group]`` (planes or |dz| bins)."""
    lines = [
        title,
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, m in methods.items():
        cells = " | ".join(
            f"{_fmt(m[group][c].get('dice'), 'dice')} / "
            f"{_fmt(m[group][c].get('ring_error'), 'ring_error')}"
            for c in columns
        )
        lines.append(f"| {name} | {cells} |")
    return [*lines, ""]


def markdown(report: dict) -> str:
    """Tables, test split first: |dz| >= 5 pooled (with 95 % intervals), Dice per plane, and
    Dice and ring error by |dz| bin."""
    lines: list[str] = []
    for split in ("test", "tune"):
        methods = report.get(split)
        if not methods:
            continue
        any_entry = next(iter(methods.values()))
        n = any_entry["n_structures"]
        lines += [
            f"**{split} split, |dz| >= 5, pooled over the three planes** ({n} structure x "
            "plane units; mean over them, bootstrap 95 % interval)",
            "",
            "| method | dice | ring_error | bg_inside | fg_outside | ring_coverage | slices |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in methods.items():
            cells = " | ".join(_cell(m, k) for k in KEYS)
            lines.append(f"| {name} | {cells} | {m['n_slices']} |")
        lines.append("")
        planes = [p for p in PLANES if p in any_entry["by_plane"]]
        lines += _dice_ring_table(
            f"**{split} split, |dz| >= 5, Dice / ring_error per plane**",
            methods,
            "by_plane",
            planes,
        )
        bins = [b[0] for b in BINS[:-1]]
        lines += _dice_ring_table(
            f"**{split} split, Dice / ring_error by |dz| bin, pooled**", methods, "by_dz", bins
        )
    return "\n".join(lines)


def headline_table(report: dict, split: str = "test") -> str:
    """The |dz| >= 5 pooled table of one split alone (what run_all refreshes)."""
    text = markdown({split: report[split]})
    return text.split("\n\n")[1] if "\n\n" in text else text
