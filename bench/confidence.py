"""Confidence and automatic extent on real anatomy: does a slice's confidence say where its
prompts go wrong, and where the structure ends?

Data and split as `real_anatomy.py` (ICBM152 T1 with the HCPEx atlas; ``test`` = the 12 deep
grey nuclei, only reported; ``tune`` = 18 cortical regions, where the threshold is chosen).
Per structure and slicing axis, the support is the true mask on the central slice and every
slice from ``--margin`` slices before the structure's first to ``--margin`` after its last is
prompted (the product's generator, shown every slice, as the session's walk sees them);
every ``--dice-stride``-th slice inside the extent is also segmented (random walker).

Reported, per method, on each split:

- Spearman's rank correlation between the per-slice confidence (``PromptSet.evidence``, the
  calibrated confidence of `napari_fob.prompting.confidence`) and the per-slice Dice, pooled
  over the segmented slices of the split, its mean over structure x plane units, and per
  structure;
- automatic extent: walking outward from the support as the session does (fixed mode), the walk
  stops at the first slice whose confidence is below the threshold; the extent's error is how
  many slices each end lands from the structure's true end (0: exact). The threshold is the one
  of ``THRESHOLDS`` with the smallest mean error on the tune split; the test split is scored with
  it: mean error and the fraction of structure x plane units with both ends within 2 slices.

- with ``--shifted``, FoB also from a support moved off its structure by its own diameter
  (axial planes): is that flagged?

Every unit keeps each prompted slice's confidence features and each scored slice's Dice, which
`bench/fit_confidence.py` fits the calibration on (tune units only), and which ``--from-json``
re-scores with the package's current calibration without prompting again.

Writes ``bench/results/confidence.json`` and the "## Confidence and automatic extent" section of
``docs/benchmarks.md``. Run: ``.venv/bin/python bench/confidence.py --shifted [--quick --out
DIR]`` (``--quick``: axial only, one structure per split).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
# 0.02 .. 0.18 in steps of 0.02, then 0.2 .. 0.9 in steps of 0.05 (the calibrated confidence
# estimates Dice, which is low on the thin cortical regions of the tune split)
THRESHOLDS = tuple(round(0.02 * k, 2) for k in range(1, 10)) + tuple(
    round(0.05 * k, 2) for k in range(4, 19)
)
QUICK_NAMES = {"test": "Caudate_L", "tune": "Primary_Motor_Cortex_L"}
TITLE = "Confidence and automatic extent"


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho (average ranks for ties); None with fewer than 3 pairs or no spread."""
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def extent_end(evidence: dict[int, float], start: int, step: int, threshold: float) -> int:
    """The last slice the walk from `start` (exclusive) in direction `step` keeps: it stops at
    the first slice with evidence below `threshold`, or at the last slice prompted."""
    z, last = start + step, start
    while z in evidence:
        if evidence[z] < threshold:
            break
        last, z = z, z + step
    return last


def unit_errors(unit: dict, threshold: float) -> tuple[int, int]:
    """(|error| of the lower end, of the upper end) in slices, for one structure x plane."""
    ev = {int(z): e for z, e in unit["evidence"].items()}
    lo = extent_end(ev, unit["support"], -1, threshold)
    hi = extent_end(ev, unit["support"], +1, threshold)
    return abs(lo - unit["first"]), abs(hi - unit["last"])


METHODS = ("fob", "registration", "mask-ring")


def make_methods(checkpoint: str, names: list[str] | None = None) -> dict:
    from napari_fob.prompting.generators import make_generator

    names = list(METHODS) if names is None else names
    options = {"fob": {"checkpoint": checkpoint, "device": "cpu"}}
    return {name: make_generator(name, **options.get(name, {})) for name in names}


def rescore(units: list[dict]) -> list[dict]:
    """The units with their confidence recomputed from the stored features by the package's
    current calibration (`confidence.calibrated`): the features do not depend on it, so a new
    fit is scored on the same predictions without prompting again."""
    from napari_fob.prompting.confidence import calibrated

    out = []
    for u in units:
        if "features" not in u:
            out.append(u)
            continue
        ev = {int(z): calibrated(f) for z, f in u["features"].items()}
        pairs = [(ev[int(z)], d) for z, d in u["dice"].items()]
        out.append({**u, "evidence": ev, "pairs": pairs})
    return out


def shifted_support(mask: np.ndarray) -> np.ndarray:
    """A support painted off its structure: the true mask moved sideways (along the slice's
    columns) by its own equivalent diameter, towards the side with room for it."""
    from scipy import ndimage as ndi

    d = int(round(2.0 * np.sqrt(mask.sum() / np.pi)))
    cols = np.nonzero(mask.any(axis=0))[0]
    d = d if cols.max() + d < mask.shape[1] else -d
    return ndi.shift(mask.astype(np.uint8), (0, d), order=0, mode="constant") > 0


def prompt_unit(generator, vol, support_mask, zc, zs, truth, scored, segmenter) -> dict:
    """Prompt slices `zs` of `vol` from `support_mask` on slice `zc`; per slice: the confidence
    and its features; on the `scored` slices also the random walker's Dice against `truth`."""
    from napari_fob.core.intensity import resolve_window

    window = resolve_window(vol, (0.0, 1.0))
    generator.clear_supports()
    generator.set_support(vol[zc], support_mask, slice_index=zc)
    prompts = generator.predict([vol[z] for z in zs], slice_indices=zs)
    pairs, dice = [], {}
    for z, ps in zip(zs, prompts):
        if z in scored:
            mask = np.asarray(segmenter.segment(vol[z], ps, window=window), bool)
            inter, total = int((mask & truth[z]).sum()), int(mask.sum() + truth[z].sum())
            dice[int(z)] = round(2.0 * inter / total if total else 1.0, 4)
            pairs.append((float(ps.evidence), dice[int(z)]))
    return {
        "evidence": {int(z): float(p.evidence) for z, p in zip(zs, prompts)},
        "pairs": pairs,
        "dice": dice,
        "features": {  # 4 decimals: the report stays a few MB
            int(z): {k: round(v, 4) for k, v in p.meta["confidence_features"].items()}
            for z, p in zip(zs, prompts)
        },
    }


def measure(args: argparse.Namespace) -> list[dict]:
    """One record per method x structure x plane: evidence per prompted slice, Dice pairs."""
    from _real_anatomy_data import cases, load_template, plane_of_axis
    from napari_fob.segmenters import get_segmenter

    methods = make_methods(args.checkpoint, args.methods)
    segmenter, _ = get_segmenter("random-walker")
    affine = load_template()[3]
    units = []
    for axis in [2] if args.quick else [0, 1, 2]:
        plane = plane_of_axis(affine, axis)
        names = list(QUICK_NAMES.values()) if args.quick else None
        for case in cases(axis, atlas=args.atlas, names=names):
            if case.split not in ("test", "tune"):
                continue
            vol, truth, zc = case.volume, case.mask, case.support
            first, last = min(case.queries + [zc]), max(case.queries + [zc])
            zs = [
                z
                for z in range(
                    max(first - args.margin, 0), min(last + args.margin, len(vol) - 1) + 1
                )
                if z != zc
            ]
            scored = {z for z in zs if first <= z <= last and (z - zc) % args.dice_stride == 0}
            meta = {
                "split": case.split,
                "plane": plane,
                "structure": case.name,
                "support": int(zc),
                "first": int(first),
                "last": int(last),
            }
            for name, generator in methods.items():
                unit = prompt_unit(generator, vol, truth[zc], zc, zs, truth, scored, segmenter)
                units.append({"method": name, **meta, **unit})
            if args.shifted and axis == 2 and "fob" in methods:
                inside = [z for z in zs if first <= z <= last]
                wrong = shifted_support(truth[zc])
                unit = prompt_unit(methods["fob"], vol, wrong, zc, inside, truth, scored, segmenter)
                units.append({"method": "fob", **meta, **unit, "kind": "shifted"})
            print(f"{plane}/{case.name} ({case.split}): {len(zs)} slices", flush=True)
    return units


def shifted_summary(units: list[dict], threshold: float) -> dict:
    """Per split, FoB from supports moved off their structure (`shifted_support`) against the
    same structures' true supports: mean Dice and confidence over the scored slices, and the
    fraction of units the walk would stop at once (median confidence below `threshold`)."""
    out = {}
    for split in ("test", "tune"):
        wrong = [u for u in units if u.get("kind") == "shifted" and u["split"] == split]
        if not wrong:
            continue
        keys = {(u["plane"], u["structure"]) for u in wrong}
        right = [
            u for u in units if u["method"] == "fob" and u.get("kind") is None
            and (u["plane"], u["structure"]) in keys
        ]  # fmt: skip
        entry = {"n_units": len(wrong)}
        for name, sel in (("shifted", wrong), ("true", right)):
            pairs = [p for u in sel for p in u["pairs"]]
            entry[f"{name}_dice"] = float(np.mean([d for _, d in pairs])) if pairs else None
            entry[f"{name}_confidence"] = float(np.mean([c for c, _ in pairs])) if pairs else None
            medians = [np.median([c for c, _ in u["pairs"]]) for u in sel if u["pairs"]]
            entry[f"{name}_flagged"] = float(np.mean([m < threshold for m in medians]))
        out[split] = entry
    return out


def summarise(units: list[dict]) -> dict:
    out: dict = {"thresholds": list(THRESHOLDS)}
    shifted = [u for u in units if u.get("kind") == "shifted"]
    units = [u for u in units if u.get("kind") is None]
    methods = sorted({u["method"] for u in units}, key=METHODS.index)
    for method in methods:
        entry: dict = {}
        tune = [u for u in units if u["method"] == method and u["split"] == "tune"]
        by_t = {t: float(np.mean([sum(unit_errors(u, t)) / 2 for u in tune])) for t in THRESHOLDS}
        chosen = min(THRESHOLDS, key=lambda t: (by_t[t], t)) if tune else THRESHOLDS[3]
        entry["tune_extent_error_by_threshold"] = by_t
        entry["threshold"] = chosen
        for split in ("test", "tune"):
            sel = [u for u in units if u["method"] == method and u["split"] == split]
            if not sel:
                continue
            pairs = [p for u in sel for p in u["pairs"]]
            per_unit = [spearman(*zip(*u["pairs"])) if len(u["pairs"]) >= 3 else None for u in sel]
            per_unit = [r for r in per_unit if r is not None]
            errors = [unit_errors(u, chosen) for u in sel]
            by_structure = {}
            for name in sorted({u["structure"] for u in sel}):
                mine = [p for u in sel if u["structure"] == name for p in u["pairs"]]
                by_structure[name] = {
                    "spearman": spearman(*zip(*mine)) if len(mine) >= 3 else None,
                    "within_2_both_ends": float(
                        np.mean(
                            [max(e) <= 2 for u, e in zip(sel, errors) if u["structure"] == name]
                        )
                    ),
                }
            entry[split] = {
                "n_units": len(sel),
                "n_slices": len(pairs),
                "spearman_pooled": spearman(*zip(*pairs)) if pairs else None,
                "spearman_mean_per_structure": float(np.mean(per_unit)) if per_unit else None,
                "extent_error_mean": float(np.mean([sum(e) / 2 for e in errors])),
                "within_2_both_ends": float(np.mean([max(e) <= 2 for e in errors])),
                "per_structure": by_structure,
            }
        out[method] = entry
    if shifted and "fob" in out:
        out["fob"]["shifted"] = shifted_summary(units + shifted, out["fob"]["threshold"])
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict) -> str:
    lines = [
        "| method | split | Spearman (pooled) | Spearman (mean per structure) | threshold (tune) "
        "| extent error, slices | both ends within 2 | units |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in summary.items():
        if method == "thresholds":
            continue
        for split in ("test", "tune"):
            e = entry.get(split)
            if e is None:
                continue
            lines.append(
                f"| {method} | {split} | {_f(e['spearman_pooled'])} | "
                f"{_f(e['spearman_mean_per_structure'])} | {entry['threshold']:.2f} | "
                f"{_f(e['extent_error_mean'], 1)} | {_f(e['within_2_both_ends'])} | "
                f"{e['n_units']} |"
            )
    methods = [m for m in METHODS if m in summary and "test" in summary[m]]
    if methods:
        lines += [
            "",
            "Test split, per structure (three planes pooled): Spearman / fraction of planes "
            "with both ends within 2 slices.",
            "",
            "| structure | " + " | ".join(methods) + " |",
            "|---|" + "---|" * len(methods),
        ]
        for name in summary[methods[0]]["test"]["per_structure"]:
            cells = []
            for m in methods:
                s = summary[m]["test"]["per_structure"].get(name, {})
                cells.append(f"{_f(s.get('spearman'))} / {_f(s.get('within_2_both_ends'))}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    shifted = summary.get("fob", {}).get("shifted")
    if shifted:
        lines += [
            "",
            "FoB from a support moved off its structure by its own diameter (axial planes), "
            "against the true support: mean Dice and confidence over the scored slices, and the "
            "fraction of structures whose median confidence is below the threshold (flagged).",
            "",
            "| split | units | Dice, true / moved | confidence, true / moved "
            "| flagged, true / moved |",
            "|---|---|---|---|---|",
        ]
        for split, e in shifted.items():
            lines.append(
                f"| {split} | {e['n_units']} | {_f(e['true_dice'])} / {_f(e['shifted_dice'])} | "
                f"{_f(e['true_confidence'])} / {_f(e['shifted_confidence'])} | "
                f"{_f(e['true_flagged'])} / {_f(e['shifted_flagged'])} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--atlas", default="hcpex", choices=("hcpex", "aal3"))
    parser.add_argument("--margin", type=int, default=8, help="slices prompted beyond each end")
    parser.add_argument("--dice-stride", type=int, default=3, help="segment every N-th slice")
    parser.add_argument("--quick", action="store_true", help="axial only, two structures")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument(
        "--shifted", action="store_true",
        help="also prompt FoB from a support moved off its structure (axial planes)",
    )  # fmt: skip
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--from-json", default=None,
        help="re-score a saved report with the current calibration and re-render the docs",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick writes only to --out (the committed results are for full runs)")
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    name = "confidence_quick.json" if args.quick else "confidence.json"
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        report["units"] = rescore(report["units"])
        report["summary"] = summarise(report["units"])
        report["settings"]["rescored"] = True
        (out / name).write_text(json.dumps(report, separators=(",", ":"), allow_nan=False))
    else:
        t0 = time.perf_counter()
        units = measure(args)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.partial").write_text(json.dumps({"units": units}))  # if summary fails
        report = {
            "summary": summarise(units),
            "settings": {
                "margin": args.margin,
                "dice_stride": args.dice_stride,
                "atlas": args.atlas,
                "checkpoint": args.checkpoint,
                "shifted": args.shifted,
                "wall_s": time.perf_counter() - t0,
            },
            "units": units,
        }
        (out / name).write_text(json.dumps(report, separators=(",", ":"), allow_nan=False))
        (out / f"{name}.partial").unlink()
    table = markdown(report["summary"])
    print(table)
    if not args.quick:
        from _pq_report import write_section

        s = report["settings"]
        body = (
            "Measured by `bench/confidence.py`; numbers in `bench/results/confidence.json`. "
            "Real anatomy as in the first section (support: the true mask on the central slice; "
            f"every slice from {s['margin']} before the structure's first to {s['margin']} after "
            f"its last prompted, every {s['dice_stride']}rd slice of the extent segmented by the "
            "random walker). Confidence: each generator's `evidence`, the calibrated "
            "confidence of `napari_fob.prompting.confidence` (presence x quality, fitted on "
            "FoB's tune units by `bench/fit_confidence.py`; the notes below). Automatic extent: "
            "the session's fixed-mode walk, stopping at the first slice below the threshold; "
            "the threshold is chosen per method on the tune split (smallest mean end error) "
            "and the test split scored with it. 2-core CPU shared with other jobs, "
            f"{time.strftime('%Y-%m-%d')}; wall time of the prompting run "
            f"{s['wall_s'] / 60:.1f} min.\n\n" + table + "\n"
        )
        notes = Path(__file__).with_name("confidence_notes.md")
        if notes.exists():
            body += "\n" + notes.read_text()
        write_section(ROOT / "docs" / "benchmarks.md", TITLE, body)
    print(f"written: {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
