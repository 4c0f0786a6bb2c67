"""The tuning table behind FoB's foreground points on real MRI (docs/method.md, "Foreground
from the support's core"): the floor on the map C and the core depth, and where the product's
Dice comes from (its ring or its points).

Tune splits only (`refuse_test` guards every structure): the real-anatomy template with the
HCPEx or AAL3 tune structures, sliced along each axis, support on the central slice, queries
at |dz| <= 2 and every ``--stride``-th |dz| beyond, random walker. Rows: the registration
baseline, then one per ``--rows`` entry ``NAME=CHECKPOINT:fg_core=V,floor=V`` (any other
numeric `FobPredictor` keyword too; ``none`` turns an addition off); ``--swap`` adds, per FoB
row, the row with registration's foreground points on FoB's ring and the reverse. Prints Dice,
ring_error, bg_inside, fg_outside at |dz| >= 5 and Dice / ring at |dz| 5-9 and 10+. Nothing is
written. Run: ``.venv/bin/python scripts/tune_real_fg.py --atlas aal3 --rows
"floor0=default:fg_core=0.75,floor=0;floor05=default:fg_core=0.75,floor=0.5" [--swap]``
(~10 s per structure and plane for a handful of rows on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _ra_report import summarise  # noqa: E402
from _real_anatomy_data import cases, load_template, plane_of_axis, refuse_test, structures  # noqa: E402
from real_anatomy import evaluated, scored_rows  # noqa: E402


def parse_rows(text: str) -> dict[str, tuple[str, dict, float]]:
    """ "NAME=CKPT:k=v,k=v;..." -> {NAME: (checkpoint, FobPredictor kwargs, floor on C)}."""
    rows = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, rest = item.split("=", 1)
        checkpoint, _, pairs = rest.partition(":")
        kwargs: dict = {}
        for pair in filter(None, pairs.split(",")):
            key, value = pair.split("=")
            kwargs[key] = None if value == "none" else float(value)
        floor = kwargs.pop("floor", None)
        rows[name] = (checkpoint, kwargs, floor)
    return rows


def run(args: argparse.Namespace) -> dict:
    import napari_fob.prompting.in_volume as in_volume
    from napari_fob.core.intensity import resolve_window
    from napari_fob.prompting.generators import FobGenerator, make_generator
    from napari_fob.prompting.predictor import load_predictor
    from napari_fob.segmenters import get_segmenter

    names = args.names.split(",") if args.names else structures(args.atlas, "tune")
    refuse_test(names, who="scripts/tune_real_fg.py")
    spec = parse_rows(args.rows)
    generators = {"registration": make_generator("registration")}
    floors = {}
    for name, (checkpoint, kwargs, floor) in spec.items():
        generators[name] = FobGenerator(
            predictor=load_predictor(checkpoint, device="cpu", **kwargs)
        )
        floors[name] = in_volume.FG_CORE_FLOOR if floor is None else floor
    methods = list(generators)
    if args.swap:
        methods += [f"{n} ring, registration points" for n in spec]
        methods += [f"registration ring, {n} points" for n in spec]
    default_floor = in_volume.FG_CORE_FLOOR
    segmenter, _ = get_segmenter("random-walker")
    rows: list = []
    affine = load_template()[3]
    for axis in (int(a) for a in args.axes.split(",")):
        plane = plane_of_axis(affine, axis)
        for case in cases(axis, atlas=args.atlas, names=names):
            t = time.perf_counter()
            window = resolve_window(case.volume, (0.0, 1.0))
            zs = evaluated(case.queries, case.support, args.stride)
            vol, truth, zc = case.volume, case.mask, case.support
            prompts = {}
            try:
                for name, generator in generators.items():
                    in_volume.FG_CORE_FLOOR = floors.get(name, default_floor)
                    generator.clear_supports()
                    generator.set_support(vol[zc], truth[zc], slice_index=zc)
                    generator.show([vol[z] for z in case.queries], case.queries)
                    prompts[name] = generator.predict([vol[z] for z in zs], slice_indices=zs)
            finally:  # the module's floor is put back whatever happens
                in_volume.FG_CORE_FLOOR = default_floor
            for name in spec if args.swap else ():  # one's ring, the other's points
                reg = prompts["registration"]
                prompts[f"{name} ring, registration points"] = [
                    replace(a, fg=b.fg, fg_scores=b.fg_scores) for a, b in zip(prompts[name], reg)
                ]
                prompts[f"registration ring, {name} points"] = [
                    replace(b, fg=a.fg, fg_scores=a.fg_scores) for a, b in zip(prompts[name], reg)
                ]
            for method in methods:
                out = {
                    z: (p, np.asarray(segmenter.segment(vol[z], p, window=window), bool))
                    for z, p in zip(zs, prompts[method])
                }
                rows += scored_rows(method, case, plane, out)
            print(f"{plane}/{case.name}: {len(zs)} slices, {time.perf_counter() - t:.0f} s",
                  flush=True)  # fmt: skip
    return summarise(rows, tuple(methods))["tune"]


def table(report: dict) -> str:
    lines = ["| row | dice | ring_error | bg_inside | fg_outside | 5-9 | 10+ |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, entry in report.items():
        bins = entry["by_dz"]

        def cell(b: str, bins: dict = bins) -> str:
            e = bins.get(b) or {}
            return "–" if e.get("dice") is None else f"{e['dice']:.3f} / {e['ring_error']:.2f}"

        lines.append(
            f"| {method} | {entry['dice']:.3f} | {entry['ring_error']:.2f} | "
            f"{entry['bg_inside']:.3f} | {entry['fg_outside']:.3f} | "
            f"{cell('5-9')} | {cell('10+')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas", default="hcpex", choices=("hcpex", "aal3"))
    parser.add_argument("--rows", default="floor0=default:floor=0;floor0.5=default:floor=0.5")
    parser.add_argument("--swap", action="store_true", help="also swap rings and points")
    parser.add_argument("--axes", default="0,1,2")
    parser.add_argument("--stride", type=int, default=6)
    parser.add_argument("--names", default=None, help="tune structures (default: all of them)")
    args = parser.parse_args(argv)
    print(table(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
