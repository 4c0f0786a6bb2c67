"""Adapt to this scan (issue 23, part 2): what fine-tuning FoB on the open volume buys, per
second of budget, on the real-anatomy benchmark's ``tune`` split only.

Data and scoring are the real-anatomy benchmark's (`_real_anatomy_data`, `real_anatomy`): the
ICBM152 template with HCPEx labels, the support = the true mask on the structure's central
slice, the queries = the slices of its true extent (|dz| <= 2, then every ``--stride``-th),
prompt metrics at the 256 grid, the random walker's masks for a 3D Dice per structure. Here
only ``tune`` structures (`STRUCTURES`, refused if any is a test structure) along one axis
(axial), to keep the run within ~15 minutes of a 2-core CPU.

Per structure, one adaptation of the shipped model runs for the longest budget
(`training.adapt.adapt_model`, seed 0, torch on one thread: the machine is shared) and keeps
the weights where each shorter budget would have stopped (``snapshots``: the learning rate is
constant, so those are the shorter runs' results). Every budget's weights then prompt the
same slices with the product's inference (``fob``) and with the network alone
(``fob-paper``, no location prior: where a better network shows first).

Writes ``bench/results/adapt.json`` and the "## Adapt to this scan" section at the end of
``docs/benchmarks.md``.  Run: ``.venv/bin/python bench/adapt.py [--budgets 0,15,30,60,120]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pq_report import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AXIS = 2  # axial
ATLAS = "hcpex"
STRUCTURES = ("Primary_Motor_Cortex_L", "Primary_Visual_Cortex_R", "Area_TG_dorsal_L")
METHODS = ("fob", "fob-paper")
TITLE = "## Adapt to this scan"


def per_structure(rows: list[dict], far: bool) -> dict:
    """The benchmark's per-structure means (`demo_anatomy.structure_row`: 3D Dice pooled over
    the slices, prompt metrics averaged) over a structure's slices, |dz| >= 5 when `far`."""
    from napari_fob.commands.demo_anatomy import structure_row

    return structure_row([r for r in rows if r["dz"] >= 5] if far else rows)


def run(args: argparse.Namespace) -> dict:
    import torch

    from _real_anatomy_data import cases, load_template, plane_of_axis, refuse_test
    from napari_fob.core.intensity import normalise, resolve_window
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters import get_segmenter
    from napari_fob.training.adapt import AdaptResult, AdaptSettings, adapt_model, adapted_generator
    from real_anatomy import evaluated, prompts_and_masks, scored_rows

    refuse_test(args.structures, who="bench/adapt.py (it chooses the default budget)")
    torch.set_num_threads(1)  # two cores shared with other jobs: one thread steps fastest
    t0 = time.perf_counter()
    budgets = sorted({float(b) for b in args.budgets})
    base = {
        "fob": make_generator("fob", checkpoint=args.checkpoint, device="cpu"),
        "fob-paper": make_generator(
            "fob", checkpoint=args.checkpoint, device="cpu", paper_inference=True
        ),  # fmt: skip
    }
    model = base["fob"].predictor.model
    segmenter, _ = get_segmenter("random-walker")
    plane = plane_of_axis(load_template()[3], AXIS)
    results: dict = {"structures": {}}
    for case in cases(AXIS, atlas=ATLAS, names=args.structures):
        if case.split != "tune":
            raise ValueError(f"{case.name}: split {case.split!r}, this bench uses tune only")
        window = resolve_window(case.volume, (0.0, 1.0))
        volume01 = normalise(case.volume, window)
        supports = np.zeros(case.volume.shape, np.int32)
        supports[case.support][case.mask[case.support]] = 1
        zs = evaluated(case.queries, case.support, args.stride)
        longest = max(budgets)
        adaptation = None
        if longest > 0:
            settings = AdaptSettings(seconds=longest, seed=args.seed, **args.settings)
            adaptation = adapt_model(model, volume01, supports, spacing=(1.0, 1.0, 1.0),
                                     settings=settings, snapshots=tuple(budgets))  # fmt: skip
        entry: dict = {"support": case.support, "n_scored": len(zs), "budgets": {}}
        if adaptation is not None:
            entry["adaptation"] = adaptation.record
        for budget in budgets:
            scores = {}
            for method in METHODS:
                gen = base[method]
                if budget > 0:
                    result = AdaptResult(state=adaptation.snapshots[budget])
                    gen = adapted_generator(gen, result)
                out = prompts_and_masks(method, gen, segmenter, window, case, zs)
                rows = scored_rows(method, case, plane, out)
                scores[method] = {"all": per_structure(rows, False),
                                  "far": per_structure(rows, True)}  # fmt: skip
            steps = 0 if budget == 0 else adaptation.record["snapshot_steps"][f"{budget:g}"]
            entry["budgets"][f"{budget:g}"] = {"steps": steps, **scores}
            far = scores["fob"]["far"]
            print(f"{case.name} budget {budget:g} s ({steps} steps): fob Dice {far['dice']:.3f} "
                  f"ring {far['ring_error']:.2f} px", flush=True)  # fmt: skip
        results["structures"][case.name] = entry
    results["summary"] = summarise(results["structures"], budgets)
    results["settings"] = {
        "atlas": ATLAS, "axis": AXIS, "plane": plane, "stride": args.stride,
        "checkpoint": args.checkpoint, "seed": args.seed, "budgets": budgets,
        "torch_threads": 1, "segmenter": segmenter.describe(),
        "adapt_settings": AdaptSettings(seconds=max(budgets) or 1.0, seed=args.seed,
                                        **args.settings).key_fields(),
        "wall_s": round(time.perf_counter() - t0, 1), "machine": machine(),
        "date": datetime.date.today().isoformat(),
    }  # fmt: skip
    return results


def summarise(per: dict, budgets: list[float]) -> dict:
    """Per budget and method, the mean over structures (|dz| >= 5 and all slices) and the
    gain over budget 0."""
    out: dict = {}
    for budget in budgets:
        key = f"{budget:g}"
        row: dict = {"steps": float(np.mean([s["budgets"][key]["steps"] for s in per.values()]))}
        for method in METHODS:
            for part in ("far", "all"):
                for metric in ("dice", "ring_error", "bg_inside"):
                    vals = [s["budgets"][key][method][part][metric] for s in per.values()]
                    vals = [v for v in vals if v is not None]
                    base = [s["budgets"]["0"][method][part][metric] for s in per.values()]
                    base = [v for v in base if v is not None]
                    name = f"{method}_{part}_{metric}"
                    row[name] = float(np.mean(vals)) if vals else None
                    if vals and base and "0" in {f"{b:g}" for b in budgets}:
                        row[name + "_gain"] = float(np.mean(vals) - np.mean(base))
        out[key] = row
    return out


def docs_section(report: dict) -> str:
    s, summary = report["settings"], report["summary"]
    names = ", ".join(report["structures"])
    lines = [
        TITLE,
        "",
        f"Measured by `bench/adapt.py` on {s['date']}; every number in `bench/results/adapt.json`. "
        "`fob segment --adapt SECONDS` / the annotator's *Adapt to this scan* fine-tune the "
        "shipped FoB on the open volume's own self-supervised episodes (its supervoxels; the "
        "painted support against its neighbours, docs/training.md) before predicting. Data: "
        f"the real-anatomy benchmark's **tune** split only ({names}; HCPEx on the ICBM152 "
        f"template, {s['plane']} slices, support on the central slice, queries scored at "
        f"|dz| <= 2 and every {s['stride']}th |dz| beyond), the random walker as segmenter, "
        "prompt metrics at the 256 grid. One adaptation per structure for the longest budget, "
        "the weights kept where each shorter budget would have stopped (seed 0, torch on one "
        f"thread). Machine: {s['machine']['cpu_count']}-core CPU, no GPU, shared with other "
        f"jobs (load average at the end {s['machine']['load_average_at_end'][0]:.1f}); "
        f"wall time {s['wall_s'] / 60:.1f} min. Means over the {len(report['structures'])} "
        "structures, |dz| >= 5 (gain: minus budget 0):",
        "",
        "| budget (s) | steps | FoB Dice | gain | FoB ring error (px) | gain | FoB bg_inside | "
        "network alone Dice | gain | network alone ring error (px) | gain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in summary.items():
        cells = [key, f"{row['steps']:.0f}"]
        for name in ("fob_far_dice", "fob_far_ring_error"):
            cells += [f"{row[name]:.3f}", f"{row.get(name + '_gain', 0.0):+.3f}"]
        cells.insert(6, f"{row['fob_far_bg_inside']:.3f}")
        for name in ("fob-paper_far_dice", "fob-paper_far_ring_error"):
            cells += [f"{row[name]:.3f}", f"{row.get(name + '_gain', 0.0):+.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per structure, FoB (product) Dice at |dz| >= 5 by budget:", ""]
    keys = list(summary)
    lines += ["| structure | " + " | ".join(f"{k} s" for k in keys) + " |",
              "|---|" + "---|" * len(keys)]  # fmt: skip
    for name, entry in report["structures"].items():
        cells = [f"{entry['budgets'][k]['fob']['far']['dice']:.3f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if report.get("reading"):
        lines += ["", report["reading"]]
    return "\n".join(lines) + "\n"


def write_last_section(docs: Path, body: str) -> None:
    """Replace the section `TITLE` of `docs` (from its heading to the next ``## ``), or append
    it at the end."""
    from napari_fob.core.atomic import write_text

    text = docs.read_text()
    start = text.find(f"\n{TITLE}\n")
    if start >= 0:
        end = text.find("\n## ", start + len(TITLE) + 2)
        text = text[: start + 1] + body + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    write_text(docs, text)


def _value(text: str):
    """A ``--set`` value: YAML, with ``1e-5`` (text to YAML 1.1) read as a number."""
    import yaml

    value = yaml.safe_load(text)
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def main(argv: list[str] | None = None) -> int:
    from napari_fob.core.atomic import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="0,15,30,60,120", help="seconds, comma-separated")
    parser.add_argument("--structures", default=",".join(STRUCTURES), help="tune structures")
    parser.add_argument("--stride", type=int, default=6, help="score every Nth |dz| beyond 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="an AdaptSettings field, e.g. lr=3e-5 (tune split only)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ untouched")
    parser.add_argument("--reading", default=None, help="a file whose text follows the tables")
    parser.add_argument("--from-json", default=None, help="re-render the docs from a report")
    args = parser.parse_args(argv)
    args.budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    args.structures = [n.strip() for n in args.structures.split(",") if n.strip()]
    args.settings = {k: _value(v) for k, _, v in (s.partition("=") for s in args.set)}
    if isinstance(args.settings.get("trainable"), list):
        args.settings["trainable"] = tuple(args.settings["trainable"])
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        report = run(args)
    if args.reading:
        report["reading"] = Path(args.reading).read_text().strip()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.from_json:
        write_json(out / "adapt.json", report, indent=1)
    if not args.no_docs:
        write_last_section(ROOT / "docs" / "benchmarks.md", docs_section(report))
    print(docs_section(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
