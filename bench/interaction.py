"""Simulated annotator (issue 18, part 1): Dice against the number of user gestures.

Input: a folder in the layout ``fob sample`` writes (``image.nii.gz``, ``labels.nii.gz``,
``support.nii.gz``, ``labels.json``); ``--export-real-anatomy DIR`` writes real-anatomy cases
(`_interaction_data`) in it first. Per structure (``--labels``) and method (``--methods``):

- start: the support is the structure's slice in ``support.nii.gz``; the range is the
  structure's true slice extent (first to last slice holding it in ``labels.nii.gz``); the
  method predicts the range and its masks are committed (Dice after 0 actions);
- one action (`_interaction_actions`): on the slice with the most wrong voxels, a foreground
  point at the deepest voxel of the largest missed component when missed voxels dominate, else
  the background point nearest to the largest false-positive component moved onto the true
  ring (or one added there); the slice is re-segmented and recommitted and the method's
  propagation rule applied (`_interaction_methods`);
- 3D Dice over the range after each action, ``--max-actions`` N actions.

Per structure: ``curve`` (Dice after 0..N actions, N + 1 entries), ``auc`` = the curve's mean,
``actions`` = the first action count whose Dice reaches ``--target`` (N + 1 when none does),
``final_dice`` = curve[N]. Per method the means over structures (``mean_actions``, ``auc``,
``final_dice``, ``curve``). Output JSON: ``{"methods": {name: {"mean_actions", "auc",
"final_dice", "per_label": {label: {...}}, "curve"}}, "settings": {...}}``.

Run: ``.venv/bin/python bench/interaction.py --data DIR --labels 1,3 --target 0.85
--max-actions 6 --segmenter random-walker --out result.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

METHODS = ("fob", "mask-ring", "micro-sam-style", "registration", "per-slice")
#: Not run unless asked: the product's loop with FoB and its propagation turned off (an
#: ablation), and an experiment that carries a moved ring point to the neighbours instead.
EXTRA = ("fob-no-propagation", "fob-carry-gesture")


def load_data(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
    """(volume, labels, support) as (Z, Y, X) arrays and {label: name} from a sample folder."""
    from napari_fob.core.io import read_labels, read_nifti

    missing = [n for n in ("image.nii.gz", "labels.nii.gz", "support.nii.gz", "labels.json")
               if not (folder / n).is_file()]  # fmt: skip
    if missing:
        raise SystemExit(f"--data {folder}: missing {', '.join(missing)} (the fob sample layout)")
    volume = read_nifti(folder / "image.nii.gz")
    labels = read_labels(folder / "labels.nii.gz", like=volume)
    support = read_labels(folder / "support.nii.gz", like=volume)
    names = {int(k): str(v) for k, v in json.loads((folder / "labels.json").read_text()).items()}
    return np.asarray(volume.data, np.float32), np.asarray(labels), np.asarray(support), names


def structure_setup(labels: np.ndarray, support: np.ndarray, label: int) -> tuple[int, list[int]]:
    """(support slice, the true extent as a slice list) of `label`."""
    held = np.flatnonzero((labels == label).any(axis=(1, 2)))
    painted = np.flatnonzero((support == label).any(axis=(1, 2)))
    if held.size == 0 or painted.size == 0:
        raise SystemExit(f"--labels {label}: not in labels.nii.gz and support.nii.gz both")
    zc = int(painted[np.argmin(np.abs(painted - np.median(held)))])  # one support: the central
    return zc, list(range(int(held[0]), int(held[-1]) + 1))


def dice3d(masks: dict[int, np.ndarray], truth: np.ndarray) -> float:
    inter = sum(int(np.count_nonzero(m & truth[z])) for z, m in masks.items())
    total = sum(int(m.sum()) + int(truth[z].sum()) for z, m in masks.items())
    return 1.0 if total == 0 else 2.0 * inter / total


def simulate(method, truth: np.ndarray, n: int, *, finish: int = 0, target: float = 1.0):
    """Dice after 0..n actions of the simulated annotator on `method` (n + 1 values).

    `finish` 0 (the issue's rule): every gesture is followed by the slice's recommit and the
    method's propagation. `finish` K > 0: the annotator stays on the slice it picked, and
    recommits (and propagates) only once that slice's Dice reaches `target` or after K
    gestures on it; the Dice in between counts the edited slice as *Commit range* would.
    """
    from _interaction_actions import choose, worst_slice

    curve = [dice3d(method.masks(), truth)]
    current, gestures = None, 0
    for _ in range(n):
        masks = method.masks()
        z = worst_slice(masks, truth) if current is None else current
        if z is not None:
            method.edit(choose(z, masks[z], truth[z], method.bg(z)))
            gestures += 1
            right = dice3d({z: method.masks()[z]}, truth) >= target
            if finish == 0 or right or gestures >= finish:
                method.commit(z)
                current, gestures = None, 0
            else:
                current = z
        curve.append(dice3d(method.masks(), truth))
    return curve


def summary(curve: list[float], target: float) -> dict:
    reached = [k for k, d in enumerate(curve) if d >= target]
    return {
        "actions": reached[0] if reached else len(curve),  # N + 1 when never reached
        "auc": float(np.mean(curve)),
        "final_dice": curve[-1],
        "curve": curve,
    }


def build(name: str, gens: dict, segmenter, volume, window, truth, zc, zs):
    from _interaction_methods import CarryGesture, MicroSamStyle, PerSlice, SessionLoop

    if name == "micro-sam-style":
        return MicroSamStyle(segmenter, volume, window, truth, zc, zs)
    if name == "per-slice":
        return PerSlice(segmenter, volume, window, truth, zc, zs)
    if name == "fob-carry-gesture":
        return CarryGesture(gens["fob"], segmenter, volume, window, truth, zc, zs)
    if name == "fob-no-propagation":
        return SessionLoop(gens["fob"], segmenter, volume, window, truth, zc, zs, propagate=False)
    return SessionLoop(gens[name], segmenter, volume, window, truth, zc, zs)


def run(args: argparse.Namespace) -> dict:
    from _pq_report import machine
    from napari_fob.core.intensity import resolve_window
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters import get_segmenter

    t0 = time.perf_counter()
    volume, labels, support, names = load_data(args.data)
    chosen = sorted(names) if args.labels is None else args.labels
    segmenter, _ = get_segmenter(args.segmenter)
    window = resolve_window(volume, args.window)
    gens = {}
    for m in args.methods:
        g = "fob" if m.startswith("fob") else m
        if g in ("fob", "mask-ring", "registration") and g not in gens:
            options = {"checkpoint": args.checkpoint, "device": "cpu"} if g == "fob" else {}
            gens[g] = make_generator(g, **options)
    out: dict = {"methods": {}}
    seconds = dict.fromkeys(args.methods, 0.0)
    for m in args.methods:
        per_label = {}
        for label in chosen:
            truth = labels == label
            zc, zs = structure_setup(labels, support, label)
            t = time.perf_counter()
            method = build(m, gens, segmenter, volume, window, truth, zc, zs)
            curve = simulate(method, truth, args.max_actions, finish=args.finish_slice,
                             target=args.target)  # fmt: skip
            row = summary(curve, args.target)
            seconds[m] += time.perf_counter() - t
            per_label[str(label)] = {"name": names.get(label, str(label)), **row}
            print(f"{m} {names.get(label, label)}: auc {row['auc']:.3f} actions "
                  f"{row['actions']} final {row['final_dice']:.3f}", flush=True)  # fmt: skip
        rows = list(per_label.values())
        out["methods"][m] = {
            "mean_actions": float(np.mean([r["actions"] for r in rows])),
            "auc": float(np.mean([r["auc"] for r in rows])),
            "final_dice": float(np.mean([r["final_dice"] for r in rows])),
            "per_label": per_label,
            "curve": [float(v) for v in np.mean([r["curve"] for r in rows], axis=0)],
        }
        out["settings"] = {
            "data": str(args.data), "labels": chosen, "target": args.target,
            "max_actions": args.max_actions, "finish_slice": args.finish_slice,
            "segmenter": segmenter.describe(),
            "window": [window.low, window.high], "checkpoint": args.checkpoint,
            "method_seconds": seconds, "wall_s": time.perf_counter() - t0, "machine": machine(),
        }  # fmt: skip
        save(args.out, out)  # after every method: a long run keeps what it finished
    return out


def save(path: Path, report: dict) -> None:
    from napari_fob.core import atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(report, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="a folder in the `fob sample` layout")
    p.add_argument("--labels", type=lambda s: [int(v) for v in s.split(",")], default=None,
                   help="label values, e.g. 1,3 (default: every label in labels.json)")  # fmt: skip
    p.add_argument("--target", type=float, default=0.85, help="Dice that counts as done")
    p.add_argument("--max-actions", type=int, default=8, help="N: actions per structure")
    p.add_argument("--segmenter", default="random-walker", help="segmenter registry name")
    p.add_argument("--finish-slice", type=int, default=0, metavar="K",
                   help="0: recommit after every gesture (default); K: stay on a slice until "
                   "its Dice reaches --target or K gestures, then recommit")  # fmt: skip
    p.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS),
                   help=f"comma-separated, from {', '.join(METHODS + EXTRA)}")  # fmt: skip
    p.add_argument("--window", default="auto", help="'auto', a preset or LOW,HIGH")
    p.add_argument("--checkpoint", default="default", help="FoB checkpoint ('default': shipped)")
    p.add_argument("--out", type=Path, help="JSON result file")
    p.add_argument("--export-real-anatomy", type=Path, metavar="DIR",
                   help="write the --structures of real anatomy into DIR, then stop")  # fmt: skip
    p.add_argument("--structures", default="Caudate_L,Putamen_L,Thalamus_L,Hippocampus_L")
    p.add_argument(
        "--report",
        type=Path,
        metavar="PNG",
        help="print the tables of the --from results, plot their curves to PNG",
    )
    p.add_argument("--from", dest="results", nargs="+", default=[], metavar="NAME=JSON")
    p.add_argument("--atlas", default="hcpex")
    args = p.parse_args(argv)
    if "," in str(args.window):
        args.window = tuple(float(v) for v in args.window.split(","))
    bad = [m for m in args.methods if m not in METHODS + EXTRA]
    if bad:
        p.error(f"--methods {','.join(bad)}: expected names from {', '.join(METHODS + EXTRA)}")
    if args.max_actions < 0 or args.finish_slice < 0 or not 0 < args.target <= 1:
        p.error("--max-actions and --finish-slice must be >= 0 and --target in (0, 1]")
    other = args.export_real_anatomy is not None or args.report is not None
    if not other and (args.data is None or args.out is None):
        p.error("--data and --out are required (or --export-real-anatomy DIR, or --report)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.export_real_anatomy is not None:
        from _interaction_data import export_real_anatomy

        names = export_real_anatomy(args.export_real_anatomy, args.structures.split(","),
                                    atlas=args.atlas)  # fmt: skip
        print(f"wrote {args.export_real_anatomy}: {names}")
        return 0
    if args.report is not None:
        from _interaction_report import load, markdown, plot

        reports = load(args.results)
        for title, report in reports:
            print(markdown(title, report) + "\n")
        plot(reports, args.report)
        return 0
    run(args)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
