"""The tuning table behind FoB's registration prior (docs/method.md, "The registration prior").

Runs on the real-anatomy benchmark's **tune** split only (18 cortical regions of real T1 MRI,
`bench/_real_anatomy_data.py`; `refuse_test` guards every structure it is handed), sliced along
each axis as the benchmark does: support on the structure's central slice, queries at
|dz| <= 2 and every ``--stride``-th |dz| beyond. Rows: the registration baseline, FoB with the
support's footprint as its prior (the product before), and FoB with the footprint carried by
registration (``prior_source="registration"``) for each location prior (a, b) and inward factor
k of ``--priors``. Prints ring_error, bg_inside, fg_outside and the random-walker Dice (3D per
structure, mean over structure x plane units) at |dz| >= 5 and per |dz| bin. Nothing is
written. Run: ``.venv/bin/python scripts/tune_real_prior.py [--priors "1,0.25,1;1,0.75,1"]
[--axes 0,1,2] [--stride 6] [--names A,B]`` (~2 min per row on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _ra_report import summarise  # noqa: E402
from _real_anatomy_data import (  # noqa: E402
    cases,
    load_template,
    plane_of_axis,
    refuse_test,
    structures,
)
from real_anatomy import evaluated, prompts_and_masks, scored_rows  # noqa: E402


def parse_priors(text: str) -> list[tuple[float, float, float | None, bool]]:
    """ "a,b,k;a,b,k,fine" -> [(a, b, k, fine)]; k "none" turns the inward penalty off; a
    fourth field "fine" draws every ring on the fine ring (``fine_ring=True``)."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        a, b, k, *rest = item.split(",")
        fine = [r.strip() for r in rest] == ["fine"]
        k_value = None if k.strip().lower() == "none" else float(k)
        out.append((float(a), float(b), k_value, fine))
    return out


def variants(checkpoint: str, priors: list[tuple[float, float, float | None, bool]]) -> dict:
    """Row name -> prompt generator."""
    from napari_fob.prompting.generators import FobGenerator, make_generator
    from napari_fob.prompting.predictor import FobPredictor, load_predictor

    model = load_predictor(checkpoint, device="cpu").model
    rows = {
        "registration": make_generator("registration"),
        "fob (support prior)": FobGenerator(
            predictor=FobPredictor(model, device="cpu", prior_source="support")
        ),
    }
    for a, b, k, fine in priors:
        predictor = FobPredictor(
            model,
            device="cpu",
            prior_source="registration",
            location_prior=(a, b),
            inward_prior=k,
            fine_ring=True if fine else "committed",  # the rows before the fine-ring one
        )
        name = f"fob reg prior ({a:g}, {b:g}) k={k}" + (", fine ring" if fine else "")
        rows[name] = FobGenerator(predictor=predictor)
    return rows


def run(args: argparse.Namespace) -> dict:

    from napari_fob.core.intensity import resolve_window
    from napari_fob.segmenters import get_segmenter

    names = args.names.split(",") if args.names else structures(args.atlas, "tune")
    refuse_test(names, who="scripts/tune_real_prior.py")
    methods = variants(args.checkpoint, parse_priors(args.priors))
    segmenter, _ = get_segmenter("random-walker")
    rows, seconds = [], {m: 0.0 for m in methods}
    affine = load_template()[3]
    for axis in (int(a) for a in args.axes.split(",")):
        plane = plane_of_axis(affine, axis)
        for case in cases(axis, atlas=args.atlas, names=names):
            window = resolve_window(case.volume, (0.0, 1.0))
            zs = evaluated(case.queries, case.support, args.stride)
            for method, generator in methods.items():
                t = time.perf_counter()
                out = prompts_and_masks(method, generator, segmenter, window, case, zs)
                rows += scored_rows(method, case, plane, out)
                seconds[method] += time.perf_counter() - t
            print(f"axis {axis} {case.name}: {len(zs)} slices", flush=True)
    return {"report": summarise(rows, tuple(methods)), "seconds": seconds}


def table(result: dict) -> str:
    tune = result["report"]["tune"]
    lines = [
        "| row | dice | ring_error | bg_inside | fg_outside | dice / ring 1-2 | 5-9 | 10+ | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in tune.items():
        pooled, bins = entry, entry["by_dz"]

        def cell(b: str, bins: dict = bins) -> str:
            e = bins.get(b) or {}
            if e.get("dice") is None:
                return "–"
            return f"{e['dice']:.3f} / {e['ring_error']:.2f}"

        lines.append(
            f"| {method} | {pooled['dice']:.3f} | {pooled['ring_error']:.2f} | "
            f"{pooled['bg_inside']:.3f} | {pooled['fg_outside']:.3f} | {cell('1-2')} | "
            f"{cell('5-9')} | {cell('10+')} | {result['seconds'][method]:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--atlas", default="hcpex", choices=("hcpex", "aal3"))
    parser.add_argument("--priors", default="1,0.25,1;1,0.5,1;1,0.75,1;2,0.25,1;1,0.25,none")
    parser.add_argument("--axes", default="0,1,2")
    parser.add_argument("--stride", type=int, default=6)
    parser.add_argument("--names", default=None, help="tune structures (default: all of them)")
    args = parser.parse_args(argv)
    print(table(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
