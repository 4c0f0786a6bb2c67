"""Real-anatomy benchmark (issue 15): real T1 MRI with real labels, structures held out.

Data: the ICBM152 2009a 1 mm template with the HCPEx atlas on its grid (`_real_anatomy_data`,
docs/data.md); split by structure: ``test`` = the 12 deep grey nuclei (never used to choose
anything), ``tune`` = 18 cortical regions. For each slicing axis (sagittal, coronal, axial) and
structure: the support is the structure's true mask on its central slice; the queries are the
slices of its true extent. Methods, on the same slices:

- ``fob``: the shipped model with the product's defaults (``make_generator("fob")``);
- ``fob-support-prior``: the same with the location prior around the support's own ring
  (``prior_source="support"``, the product's default before the registration prior);
- ``fob-paper``: the network alone (``paper_inference=True``);
- ``fob-chain``: FoB in chain mode through an `AnnotationSession` (each slice prompted from the
  mask the segmenter committed on the slice before it, as the tool chains unattended);
- ``mask-ring``: the support's ring and foreground points re-drawn (fixed support);
- ``mask-ring-chain-own``: mask-ring in the same session chain mode as ``fob-chain``;
- ``copy``: the support's own points;
- ``registration``: the support mask carried slice to slice by optical flow
  (``--prompts registration``), given every slice of the extent;
- ``oracle``: ring and foreground points drawn from the TRUE mask of each slice, as mask-ring
  draws them from a support: the segmenter's ceiling.

Metrics per slice (`napari_fob.core.metrics`, at the 256 grid with r=15, eps=2 for every
method): bg_inside, fg_outside, ring_error, ring_coverage; and the random walker's mask
(product settings) for a 3D Dice per structure (pooled over its evaluated slices).

Every slice of the extent is scored (``--stride 1``, the default); ``--stride N`` scores
every slice with |dz| <= 2 and then every N-th (|dz| = N, 2N, ...), a cheaper run whose chain
methods then step N slices at a time beyond |dz| 2 (a weaker chain than slice by slice).
FoB's forward pass (~0.1 s a slice on 2 CPU cores) and the registration walks are the cost;
FoB's registration prior and the registration baseline walk the same support through the same
slices, so the second walk is served from the registration memo (`registration.FLOWS`).
Slices are full size (no crop: the ring is drawn at the model grid, so a crop would change it).

Writes ``bench/results/real_anatomy.json`` and the "## Real anatomy" section of
``docs/benchmarks.md`` (the reading in ``bench/real_anatomy_notes.md`` is kept with it).
``--quick``: one axis (axial), one structure per split, results to ``--out`` only; so are
``--methods`` (a comma-separated subset) and ``--split`` (one split), for scoring a candidate
checkpoint (``--checkpoint``) on the ``tune`` split.
Run: ``.venv/bin/python bench/real_anatomy.py [--stride N] [--quick --out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pq_report import machine  # noqa: E402
from _ra_report import markdown, summarise  # noqa: E402
from napari_fob.commands.demo_anatomy import (  # noqa: E402, F401  (scripts/ import them here)
    GRID,
    RING_EPS,
    RING_R,
    evaluated,
    prompts_and_masks,
    scored_rows,
)

ROOT = Path(__file__).resolve().parents[1]
METHODS = (
    "fob",
    "fob-support-prior",
    "fob-paper",
    "fob-chain",
    "mask-ring",
    "mask-ring-chain-own",
    "copy",
    "registration",
    "oracle",
)
FIXED = ("fob", "fob-support-prior", "fob-paper", "mask-ring", "copy")
ATLAS_NAMES = {"hcpex": "HCPEx", "aal3": "AAL3"}
QUICK_NAMES = {"test": "Caudate_L", "tune": "Primary_Motor_Cortex_L"}


def make_methods(checkpoint: str) -> dict:
    from napari_fob.prompting.generators import make_generator

    fob = make_generator("fob", checkpoint=checkpoint, device="cpu")
    return {
        "fob": fob,
        "fob-support-prior": make_generator(
            "fob", checkpoint=checkpoint, device="cpu", prior_source="support"
        ),
        "fob-paper": make_generator(
            "fob", checkpoint=checkpoint, device="cpu", paper_inference=True
        ),
        "fob-chain": fob,
        "mask-ring": make_generator("mask-ring"),
        "mask-ring-chain-own": make_generator("mask-ring"),
        "copy": make_generator("copy"),
        "registration": make_generator("registration"),
        "oracle": make_generator("mask-ring"),
    }


def run(args: argparse.Namespace) -> dict:
    from _real_anatomy_data import cases, load_template, plane_of_axis
    from napari_fob.core.intensity import resolve_window
    from napari_fob.segmenters import get_segmenter

    t0 = time.perf_counter()
    methods = make_methods(args.checkpoint)
    segmenter, _ = get_segmenter("random-walker")
    affine = load_template()[3]
    axes = [2] if args.quick else [0, 1, 2]
    run_methods = tuple(args.methods.split(",")) if args.methods else METHODS
    unknown = sorted(set(run_methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; expected some of {', '.join(METHODS)}")
    rows, timing = [], {m: 0.0 for m in run_methods}
    for axis in axes:
        plane = plane_of_axis(affine, axis)
        names = list(QUICK_NAMES.values()) if args.quick else None
        for case in cases(axis, atlas=args.atlas, names=names):
            if case.split not in ((args.split,) if args.split else ("test", "tune")):
                continue
            window = resolve_window(case.volume, (0.0, 1.0))
            zs = evaluated(case.queries, case.support, args.stride)
            for method in run_methods:
                t = time.perf_counter()
                out = prompts_and_masks(method, methods[method], segmenter, window, case, zs)
                timing[method] += time.perf_counter() - t
                rows += scored_rows(method, case, plane, out)
            print(f"{plane}/{case.name} ({case.split}): {len(zs)} slices", flush=True)
    report = summarise(rows, run_methods)
    report["settings"] = {
        "atlas": args.atlas,
        "checkpoint": args.checkpoint,
        "stride": args.stride,
        "axes": axes,
        "metric_grid": GRID,
        "ring_r": RING_R,
        "ring_eps": RING_EPS,
        "segmenter": segmenter.describe(),
        "fob": methods["fob"].describe(),
        "fob_support_prior": methods["fob-support-prior"].describe(),
        "fob_paper": methods["fob-paper"].describe(),
        "registration": methods["registration"].describe(),
        "method_seconds": timing,
        "wall_s": time.perf_counter() - t0,
        "machine": machine(),
    }
    return report


def scored(stride: int) -> str:
    if stride == 1:
        return "every one scored"
    return f"scored at |dz| <= 2 and every {stride}th |dz| beyond"


def rerun(settings: dict) -> str:
    """The note on rows re-run after a change that touched only them (``settings["rerun"]``,
    merged into the full run's report by hand: the other rows' code did not change)."""
    r = settings.get("rerun")
    if not r:
        return ""
    rows = ", ".join(f"`{m}`" for m in r["methods"])
    return f"; {rows} re-run on {r['date']} after {r['why']} ({r['wall_s'] / 60:.1f} min)"


def chained(stride: int) -> str:
    return "" if stride == 1 else f", so beyond |dz| 2 they step {stride} slices"


def docs_section(report: dict) -> str:
    s = report["settings"]
    body = [
        "Measured by `bench/real_anatomy.py` (`make bench` runs it at `--stride 2`, "
        f"this run: stride {s['stride']}); every number in "
        "`bench/results/real_anatomy.json`. Real T1 MRI (the ICBM152 2009a template, 1 mm) "
        f"with the {ATLAS_NAMES[s['atlas']]} atlas's labels on its grid (docs/data.md); "
        "structures "
        "split as the paper's Setting II: **test** = the 12 deep grey nuclei (thalamus, "
        "caudate, putamen, pallidum, hippocampus, amygdala, left and right), never used to "
        "choose anything; **tune** = 18 cortical regions. Sliced along each axis (sagittal, "
        "coronal, axial: three problems, reported pooled and per plane). Support: the true "
        "mask on the structure's central slice; queries: the slices of its true extent, "
        f"{scored(s['stride'])}; full slices, no crop. Prompt metrics at the "
        f"{s['metric_grid']} grid with r={s['ring_r']}, eps={s['ring_eps']} for every method; "
        "Dice: 3D per structure (pooled over its scored slices) of the product's random "
        "walker, then the mean over structure x plane units with a bootstrap 95 % interval "
        "over them. `fob-chain` and `mask-ring-chain-own` run the session's chain mode over "
        f"the scored slices (each prompted from the nearest committed mask{chained(s['stride'])}); "
        "`registration` walks every slice of the extent; "
        "`oracle` draws ring and points from each slice's true mask (the segmenter's "
        f"ceiling). Wall time {s['wall_s'] / 60:.1f} min{rerun(s)}.",
        "",
        "![Real-anatomy Dice per method, and by distance from the support]"
        "(images/real_anatomy.png)",
        "",
        markdown(report),
    ]
    notes = Path(__file__).with_name("real_anatomy_notes.md")
    if notes.exists():  # hand-written reading of the results, kept with the numbers
        body.append(notes.read_text())
    return "\n".join(body)


def write_first_section(docs: Path, title: str, body: str) -> None:
    """Replace the ``## title`` section of `docs`, or insert it before the first section."""
    from _pq_report import write_section

    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    if f"\n## {title}\n" not in text:
        first = text.find("\n## ")
        head, rest = (text, "") if first < 0 else (text[: first + 1], text[first + 1 :])
        docs.write_text(head.rstrip("\n") + f"\n\n## {title}\n\n" + rest)
    write_section(docs, title, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default", help="FoB checkpoint (default: shipped)")
    parser.add_argument("--atlas", default="hcpex", choices=("hcpex", "aal3"))
    parser.add_argument(
        "--stride", type=int, default=1, help="score every N-th |dz| beyond 2 (1: every slice)"
    )
    parser.add_argument("--quick", action="store_true", help="one axis, two structures")
    parser.add_argument("--methods", default=None, help="comma-separated subset (with --out)")
    parser.add_argument("--split", default=None, choices=("test", "tune"), help="one split")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ untouched")
    parser.add_argument("--from-json", default=None, help="re-render docs from a saved report")
    args = parser.parse_args(argv)
    partial = args.quick or args.methods or args.split
    if partial and args.out is None:
        parser.error(
            "--quick, --methods and --split write only to --out (the committed results are "
            "for full runs)"
        )
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    name = "real_anatomy_quick.json" if partial else "real_anatomy.json"
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        report = run(args)
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(report, indent=1, allow_nan=False))
    print(markdown(report))
    if not (partial or args.no_docs):
        from _ra_plot import plot

        plot(report, ROOT / "docs" / "images" / "real_anatomy.png")
        write_first_section(ROOT / "docs" / "benchmarks.md", "Real anatomy", docs_section(report))
    print(f"written: {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
