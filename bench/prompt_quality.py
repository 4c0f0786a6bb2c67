"""Prompt-quality benchmark: FoB (the shipped default model) against mask-ring and copy.

Protocol (the annotation protocol of docs/training.md): per volume and structure, the support
is the ground truth on the structure's central slice; every other slice showing the structure
is a query (``--max-slices`` spread evenly). Methods:

- ``fob``: the checkpoint (``default`` = ``src/napari_fob/weights/fob-compact.pt``), support
  fixed, with the predictor's in-volume additions (as the product runs it; docs/method.md);
- ``fob-noprior``: the same network without them (what the network alone does);
- ``fob-fine``: ``fob`` with the predictor's fine ring for the painted support too
  (``FobPredictor(fine_ring=True)``; the product draws it for committed supports only);
- ``mask-ring``: ring and points re-drawn from the support mask (fixed support);
- ``mask-ring-chain``: re-drawn from the previous slice's *ground truth* on the way from the
  support (every slice committed perfectly: the chain baseline at its best);
- ``mask-ring-chain-own``: re-drawn from the mask the segmenter committed on the previous slice
  (chain mode as the tool runs it unattended; needs a segmenter);
- ``copy``: the support's own points, unchanged (with one fixed support it gives the same
  points as ``mask-ring``: both are the support mask's ring; they differ only when chaining);
- ``fob-chain``: FoB with the same perfect chain of supports as ``mask-ring-chain``, each
  marked committed as the product's chain mode does (so with its fine ring);
- ``fob-chain-own``: FoB chained on the segmenter's own commits, as ``mask-ring-chain-own``
  (the product's chain mode with FoB, unattended).

Per query slice: prompt metrics (``bg_inside``, ``fg_outside``, ``ring_error``,
``ring_coverage``; DESIGN.md section 5) at the 256 grid with r=15, eps=2 for every method, the
2D Dice of the random walker (``dice``; its masks are also the commits the ``-chain-own``
methods chain on) and, when a SAM checkpoint is found (``--sam-checkpoint``, or the search
order of ``fob weights``), SAM's Dice of the same prompts (``dice_sam``; on a CPU this costs one
~9 s image embedding per query slice, cached across methods). Volumes: the bundled MNI T1 (real
MRI) and abdomen phantoms 0-4 (never trained on).

Writes ``bench/results/prompt_quality.json`` (one object per method), the "## Prompt quality"
section of ``docs/benchmarks.md`` and ``docs/images/prompt_quality.png``. ``--quick``: one small
phantom crop, results to ``--out`` only (smoke test). Run:
``.venv/bin/python bench/prompt_quality.py [--checkpoint PATH] [--quick --out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pq_cases import METHODS, central_slice, label_slices, load_cases, make_methods, predict  # noqa: E402
from _pq_report import machine, markdown, plot, summarise, target, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GRID, RING_R, RING_EPS = 256, 15, 2  # metrics at the paper's grid and ring for every method


def run(args: argparse.Namespace, sam: object | None = None) -> dict:
    """The benchmark; `sam`: a SAM segmenter to use for ``dice_sam`` instead of looking for a
    checkpoint (the smoke test passes a tiny random one)."""
    import numpy as np

    from _pq_cases import query_slices
    from napari_fob.core.metrics import dice, prompt_metrics
    from napari_fob.segmenters import get_segmenter

    t0 = time.perf_counter()
    cases = load_cases(quick=args.quick)
    methods = make_methods(args.checkpoint)
    segmenter, notice = (None, None)
    if args.segmenter != "none":
        segmenter, _ = get_segmenter("random-walker")
    if args.segmenter == "auto" and sam is None:
        found, notice = get_segmenter(
            "auto", sam_model=args.sam_model, sam_checkpoint=args.sam_checkpoint, device="cpu"
        )
        sam = found if found.describe()["kind"] == "sam" else None
    run_methods = [m for m in METHODS if segmenter is not None or not m.endswith("-chain-own")]
    rows, timing = [], {m: 0.0 for m in run_methods}
    for case in cases:
        for label, structure in sorted(case.names.items()):
            zs = label_slices(case.labels, label)
            if len(zs) < 2:
                continue
            zc = central_slice(case.labels, label)
            queries = query_slices(zs, zc, args.max_slices)
            for method in run_methods:
                t = time.perf_counter()
                prompts = predict(method, methods[method], case, label, zc, queries, zs, segmenter)
                timing[method] += time.perf_counter() - t
                for z, ps in zip(queries, prompts):
                    truth = case.labels[z] == label
                    row = prompt_metrics(ps, truth, scale_to_grid=GRID, r=RING_R, eps=RING_EPS)
                    if segmenter is not None:
                        mask = segmenter.segment(case.image[z], ps, window=case.window)
                        row["dice"] = dice(np.asarray(mask, bool), truth)
                    if sam is not None:
                        mask = sam.segment(case.image[z], ps, window=case.window)
                        row["dice_sam"] = dice(np.asarray(mask, bool), truth)
                    rows.append(
                        {
                            "method": method,
                            "dataset": case.dataset,
                            "case": case.name,
                            "structure": structure,
                            "z": int(z),
                            "dz": int(abs(int(z) - zc)),
                            **row,
                        }
                    )
            print(f"{case.name}/{structure}: {len(queries)} query slices", flush=True)
    report = {"methods": summarise(rows)}
    scopes = [None] + sorted({c.dataset for c in cases})
    fixed = ("mask-ring", "copy")
    # The target: FoB from one fixed support against the baselines a user can run
    # from that support: fixed, and chained on the segmenter's own commits.
    runnable = fixed + (("mask-ring-chain-own",) if "mask-ring-chain-own" in run_methods else ())
    report["target"] = [target(report["methods"], scope=s, baselines=runnable) for s in scopes]
    report["target"] += [
        target(report["methods"], scope=None, model=m, baselines=fixed)
        for m in ("fob-noprior", "fob-fine")
    ]
    # Against the chain baseline fed the ground truth of every previous slice (its best case).
    report["target"] += [
        target(report["methods"], scope=None, model="fob", baselines=("mask-ring-chain",))
    ]
    # The like-for-like pairings: both chained on perfect commits, one slice ahead; both
    # chained on their own commits (chain mode unattended).
    report["target"] += [
        target(report["methods"], scope=s, model=m, baselines=("mask-ring-chain",))
        for m in ("fob-chain",)
        for s in scopes
    ]
    if "fob-chain-own" in run_methods:
        own = ("mask-ring-chain-own",)
        report["target"] += [
            target(report["methods"], scope=s, model="fob-chain-own", baselines=own) for s in scopes
        ]
    fob = methods["fob"].describe()
    report["settings"] = {
        "checkpoint": args.checkpoint,
        "fob": fob,
        "cases": [c.name for c in cases],
        "max_slices": args.max_slices,
        "metric_grid": GRID,
        "ring_r": RING_R,
        "ring_eps": RING_EPS,
        "segmenter": None if segmenter is None else segmenter.describe(),
        "sam": None if sam is None else sam.describe(),
        "segmenter_notice": notice,
        "prompt_seconds": timing,
        "wall_s": time.perf_counter() - t0,
        "machine": machine(),
    }
    return report


def docs_section(report: dict) -> str:
    s = report["settings"]
    seg = "none" if s["segmenter"] is None else s["segmenter"]["kind"]
    sam = s.get("sam")
    seg += (
        f"; `dice_sam`: SAM `{sam.get('model_id')}` on the same prompts"
        if sam
        else " (no SAM checkpoint on this machine, so no `dice_sam`)"
    )
    body = [
        "Measured by `bench/prompt_quality.py` (`make bench`); all numbers in "
        "`bench/results/prompt_quality.json`. Support: the ground truth on each structure's "
        "central slice; queries: every other slice showing it"
        + (f" (at most {s['max_slices']} per structure, spread evenly)" if s["max_slices"] else "")
        + f". Cases: {', '.join(s['cases'])}. Prompt metrics at the {s['metric_grid']} grid "
        f"with r={s['ring_r']}, eps={s['ring_eps']} for every method; Dice: 2D, {seg}. "
        "`mask-ring-chain` takes the previous slice's ground truth as its committed mask (the "
        "chain baseline with perfect commits, its best case); `mask-ring-chain-own` and "
        "`fob-chain-own` take the mask the segmenter committed on the previous slice (chain "
        "mode unattended); `fob` and `mask-ring` keep the central support. `fob` runs with "
        "the predictor's location prior "
        f"{s['fob'].get('location_prior')} (pixels of a 256 grid, `a + b |dz|`) and inward "
        f"penalty {s['fob'].get('inward_prior')}, band exclusion "
        f"{s['fob'].get('band_exclusion')}, fine ring {s['fob'].get('fine_ring')} and "
        f"foreground from the support's core {s['fob'].get('fg_core')}, as the product does; "
        "`fob-noprior` is the same network without them. "
        # JSON for the config: the same text whether rendered live or --from-json
        f"FoB checkpoint: `{s['checkpoint']}` (`{json.dumps(s['fob'].get('config'))}`).",
        "",
        markdown(report),
        "![ring_error against |dz|](images/prompt_quality.png)",
        "",
    ]
    notes = Path(__file__).with_name("prompt_quality_notes.md")
    if notes.exists():  # hand-written reading of the results, kept with the numbers
        body.append(notes.read_text())
    return "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default", help="FoB checkpoint (default: shipped)")
    parser.add_argument("--max-slices", type=int, default=16, help="queries per structure (0: all)")
    parser.add_argument(
        "--segmenter",
        default="auto",
        choices=["auto", "random-walker", "none"],
        help="auto: random-walker Dice, and SAM's too when a checkpoint is found; "
        "random-walker: without SAM; none: prompt metrics only",
    )
    parser.add_argument("--sam-model", default="vit_b", help="SAM model type (auto)")
    parser.add_argument("--sam-checkpoint", default=None, help="SAM checkpoint path (auto)")
    parser.add_argument("--quick", action="store_true", help="small crop, no docs (smoke test)")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ untouched")
    parser.add_argument("--from-json", default=None, help="re-render docs from a saved report")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick writes only to --out (the committed results are for full runs)")
    if args.quick and args.max_slices == 16:
        args.max_slices = 6
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    name = "prompt_quality_quick.json" if args.quick else "prompt_quality.json"
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        report = run(args)
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(report, indent=1, allow_nan=False))
    print(markdown(report))
    if not (args.quick or args.no_docs):
        plot(report, ROOT / "docs" / "images" / "prompt_quality.png")
        write_section(ROOT / "docs" / "benchmarks.md", "Prompt quality", docs_section(report))
    print(f"written: {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
