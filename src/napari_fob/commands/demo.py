"""``fob demo``: real anatomy first, then both sample volumes through ``fob segment``, scored.

Real anatomy leads: with the ``bench`` extra installed, a subset of the real-anatomy benchmark
(`demo_anatomy`: four held-out deep grey nuclei on real MRI) compares FoB with the
registration baseline and the re-drawn support ring; without it the demo says how to get it
(``--no-real-anatomy`` skips it).

Then, for ``mni-brain`` and ``abdomen-phantom``, it writes the sample files, runs the segment
pipeline in-process once per prompt generator (FoB when its weights exist, the ``mask-ring``
baseline with the painted support fixed, and ``mask-ring-chain``: the same baseline in chain
mode, each slice's ring re-drawn from the neighbouring slice's committed mask), then prints per
structure and generator: the Dice of the committed labels and the prompt metrics
(docs/geometry.md), bucketed by distance |dz| from the support slice (all, >= 5), the timings,
and whether FoB beats both baselines on ``ring_error`` and ``bg_inside`` at |dz| >= 5. It says
which FoB weights and which segmenter were used. Without a shipped FoB model it falls back to
``mask-ring`` prompts and says so: it never presents baseline output as FoB's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core.prompts import nearest_slice
from napari_fob.segmenters.registry import SEGMENTERS

HELP = "Run the pipeline on the two bundled samples and print Dice, prompt metrics and timings."
SHIPPED_MODEL = "fob-compact.pt"
METRICS = ("bg_inside", "fg_outside", "ring_error", "ring_coverage")
REAL_ANATOMY_NOTE = (
    "\nThese two bundled samples are a smoke test, not the yardstick: the brain's structures "
    "informed inference choices and the phantom comes from the training generator. The "
    "yardstick is the real-anatomy benchmark (held-out deep grey nuclei on real MRI; its "
    "subset is the first table above when the bench extra is installed): docs/benchmarks.md, "
    "'Real anatomy'; run it with `python bench/real_anatomy.py` (needs the bench extra)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="fob-demo", metavar="DIR", help="output folder")
    parser.add_argument("--segmenter", choices=SEGMENTERS, default="auto")
    parser.add_argument("--sam-checkpoint", metavar="PATH")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--no-real-anatomy", action="store_true", help="skip the real-anatomy subset"
    )


def shipped_fob() -> Path:
    from napari_fob.core import paths

    return paths.package_weights_dir() / SHIPPED_MODEL


def nearest_support(z: int, sup_z: list[int]) -> int:
    """The support slice nearest to z (on a tie the lower one, as the generators choose)."""
    return nearest_slice(sup_z, z)


def chain_source(z: int, sup_z: list[int], committed: np.ndarray) -> int | None:
    """The slice chain mode drew slice z's prompts from: the committed slice of `committed`
    (Z,) bool nearest to z on the way from the nearest support (None if there is none)."""
    s = nearest_support(z, sup_z)
    lo, hi = (s, z - 1) if z > s else (z + 1, s)
    inner = [v for v in range(lo, hi + 1) if committed[v]]
    if not inner:
        return None
    return max(inner) if z > s else min(inner)


def prompt_quality(
    generator: Any,
    image: Any,
    truth: np.ndarray,
    support: np.ndarray,
    window: Any,
    label: int,
    committed: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Mean prompt metrics of `generator` on every ground-truth slice of `label`, by |dz|.

    Fixed mode (``committed`` None): prompts come from the painted support slice(s), so FoB and
    the baseline are compared on the same slices. Chain mode: ``committed`` is the (Z, Y, X)
    label volume the chain run committed, and each slice's prompts come from the committed
    mask next to it on the way from the support (`chain_source`), as chain mode drew them; a
    slice the chain never reached (no committed mask on that side) is drawn from the support.
    Returns {"all": {...}, "dz>=5": {...}} with the metric means and "n" (slices).
    """
    from napari_fob.core.intensity import normalise
    from napari_fob.core.metrics import prompt_metrics

    sup_z = [int(z) for z in np.flatnonzero((support == label).any(axis=(1, 2)))]
    zs = [int(z) for z in np.flatnonzero((truth == label).any(axis=(1, 2))) if z not in sup_z]
    rows = []
    if committed is None:
        generator.clear_supports()
        for z in sup_z:
            generator.set_support(normalise(image[z], window), support[z] == label, slice_index=z)
        generator.show([normalise(image[z], window) for z in zs], zs)  # as in a session
        for start in range(0, len(zs), 16):
            batch = zs[start : start + 16]
            images = [normalise(image[z], window) for z in batch]
            for z, p in zip(batch, generator.predict(images, slice_indices=batch, label=label)):
                dz = min(abs(z - s) for s in sup_z)
                rows.append((dz, prompt_metrics(p, truth[z] == label)))
    else:
        mine = committed == label
        has_mask = mine.any(axis=(1, 2))
        for z in zs:
            src = chain_source(z, sup_z, has_mask)
            if src is None or src in sup_z:
                src = nearest_support(z, sup_z) if src is None else src
                src_mask = support[src] == label
            else:
                src_mask = mine[src]
            generator.clear_supports()
            generator.set_support(normalise(image[src], window), src_mask, slice_index=src)
            (p,) = generator.predict([normalise(image[z], window)], slice_indices=[z], label=label)
            dz = min(abs(z - s) for s in sup_z)
            rows.append((dz, prompt_metrics(p, truth[z] == label)))
    out = {}
    for bucket, keep in (("all", lambda dz: True), ("dz>=5", lambda dz: dz >= 5)):
        chosen = [m for dz, m in rows if keep(dz)]
        out[bucket] = {
            k: float(np.nanmean([m[k] for m in chosen])) if chosen else float("nan")
            for k in METRICS
        }
        out[bucket]["n"] = len(chosen)
    return out


def run_sample(
    name: str,
    out: Path,
    generators: dict[str, Any],
    segmenter: Any,
    notices: list[str],
    prompts_name: str,
    progress: bool,
) -> dict[str, Any]:
    """Write one sample, segment it with every generator, score it; returns the summary dict.

    `generators` maps a run name to its generator; a name ending in ``-chain`` runs in chain
    mode. The masks of `prompts_name` (FoB when its weights exist) go to ``OUT/NAME/result``;
    each other run's to ``OUT/NAME/result-<name>``, so FoB's Dice is always shown beside the
    baselines', with the same segmenter.
    """
    from napari_fob.commands.segment_job import segment_volume
    from napari_fob.core.intensity import Window
    from napari_fob.core.io import read_labels, read_nifti
    from napari_fob.core.metrics import dice
    from napari_fob.samples import write_sample

    files = write_sample(name, out / name / "input")
    image = read_nifti(files["image"])
    truth = read_labels(files["labels"], like=image)
    support = read_labels(files["support"], like=image)
    reports, results = {}, {}
    for g in sorted(generators, key=lambda g: g != prompts_name):
        folder = out / name / ("result" if g == prompts_name else f"result-{g}")
        reports[g] = segment_volume(
            files["image"],
            files["support"],
            folder,
            generator=generators[g],
            segmenter=segmenter,
            notices=notices,
            mode="chain" if g.endswith("-chain") else "fixed",
            progress=progress,
            overwrite=True,  # the demo's own folder: a rerun replaces its previous results
        )
        results[g] = read_labels(folder / "labels.nii.gz", like=image)
    report = reports[prompts_name]
    window = Window.from_dict(report["window"])
    structures = {}
    for key, info in report["labels"].items():
        label = int(key)
        structures[key] = {
            "name": info["name"],
            "dice": {g: dice(results[g] == label, truth == label) for g in generators},
            "prompts": {
                g: prompt_quality(
                    gen,
                    image.data,
                    truth,
                    support,
                    window,
                    label,
                    committed=results[g] if g.endswith("-chain") else None,
                )
                for g, gen in generators.items()
            },
        }
    timings = {g: r["timings_s"] for g, r in reports.items()}
    return {"report": report, "structures": structures, "timings_s": timings}


def _fmt(x: float) -> str:
    return "  n/a" if x != x else f"{x:5.2f}"


def print_summary(name: str, summary: dict[str, Any]) -> None:
    report = summary["report"]
    print(
        f"\n== {name}  {tuple(report['shape'])} (Z, Y, X); outputs in "
        f"{Path(report['outputs']['labels']).parent}"
    )
    print(
        f"  {'structure':22s} {'prompts':15s} {'Dice':>5s}  {'|dz|':5s} {'n':>3s} "
        + " ".join(f"{m:>13s}" for m in METRICS)
    )
    for key, s in summary["structures"].items():
        title = f"{key} {s['name'] or ''}"
        for gen, buckets in s["prompts"].items():
            for i, (bucket, vals) in enumerate(buckets.items()):
                lead = f"  {title:22s} {gen:15s} {s['dice'][gen]:5.3f}" if i == 0 else " " * 46
                title = ""
                print(
                    f"{lead}  {bucket.replace('dz', ''):5s} {vals['n']:3d} "
                    + " ".join(f"{_fmt(vals[m]):>13s}" for m in METRICS)
                )
    for gen, t in summary["timings_s"].items():
        print(f"  timings {gen} (s): " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))


def far_comparison(summaries: list[dict[str, Any]]) -> dict[str, dict[str, float]] | None:
    """Slice-weighted means of ring_error and bg_inside at |dz| >= 5 per generator, over every
    structure of the given sample summaries; None when FoB did not run."""
    sums: dict[str, dict[str, float]] = {}
    for summary in summaries:
        for s in summary["structures"].values():
            for gen, buckets in s["prompts"].items():
                far, acc = buckets["dz>=5"], sums.setdefault(gen, {})
                for key in ("ring_error", "bg_inside"):
                    if far["n"] and far[key] == far[key]:
                        acc[key] = acc.get(key, 0.0) + far[key] * far["n"]
                        acc[f"n_{key}"] = acc.get(f"n_{key}", 0) + far["n"]
    if "fob" not in sums:
        return None
    return {
        gen: {k: acc[k] / acc[f"n_{k}"] for k in ("ring_error", "bg_inside") if acc.get(f"n_{k}")}
        for gen, acc in sums.items()
    }


def print_target(title: str, comparison: dict[str, dict[str, float]] | None) -> bool | None:
    """Print FoB against both baselines at |dz| >= 5; returns whether FoB beats both."""
    if comparison is None:
        return None
    fob, verdicts = comparison["fob"], []
    parts = []
    for key in ("ring_error", "bg_inside"):
        vals = ", ".join(f"{g} {v.get(key, float('nan')):.3f}" for g, v in comparison.items())
        parts.append(f"{key}: {vals}")
        for base in ("mask-ring", "mask-ring-chain"):
            f, b = fob.get(key), comparison.get(base, {}).get(key)
            verdicts.append(f is not None and b is not None and (f < b or f == b == 0))
    met = all(verdicts)
    print(f"  {title}, |dz| >= 5 — " + "; ".join(parts))
    verdict = "yes" if met else "NO"
    print(f"  {title}: FoB beats both baselines on ring_error and bg_inside: {verdict}")
    return met


def real_anatomy(generators: dict[str, Any], segmenter: Any) -> dict[str, Any] | None:
    """The real-anatomy subset (`demo_anatomy`) with FoB (when its weights exist), the
    registration baseline and mask-ring, printed; None (and how to get it) without the
    packages that ship the template and the atlases."""
    from napari_fob.commands import demo_anatomy
    from napari_fob.prompting.generators import make_generator
    from napari_fob.samples.real_anatomy import available

    if not available():
        print(f"\n== real anatomy: skipped. {demo_anatomy.HOW}")
        return None
    chosen = {k: generators[k] for k in ("fob",) if k in generators}
    chosen["registration"] = make_generator("registration")
    chosen["mask-ring"] = generators["mask-ring"]
    try:
        result = demo_anatomy.run_subset(chosen, segmenter)
    except (OSError, ValueError, RuntimeError) as err:  # damaged package data: say so, go on
        print(f"\n== real anatomy: skipped, the template or atlas could not be read: {err}")
        return None
    demo_anatomy.print_subset(result)
    return result


def run(args: argparse.Namespace) -> int:
    from napari_fob.cli import UsageError
    from napari_fob.core import atomic
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters import get_segmenter

    out = Path(args.out)
    notices: list[str] = []
    weights = shipped_fob()
    generators: dict[str, Any] = {
        "mask-ring": make_generator("mask-ring"),
        "mask-ring-chain": make_generator("mask-ring"),
    }
    if weights.exists():
        generators = {
            "fob": make_generator("fob", checkpoint=str(weights), device=args.device),
            **generators,
        }
        prompts_name, fob_line = "fob", f"FoB weights: {weights}"
    else:
        prompts_name, fob_line = "mask-ring", "FoB weights: none"
        notices.append(
            f"No shipped FoB model found ({weights}); this demo uses the mask-ring baseline "
            "prompts instead — these are NOT FoB predictions. Train a model with `fob train` "
            "and run `fob segment --fob-checkpoint PATH` to use FoB."
        )
    try:
        segmenter, notice = get_segmenter(
            args.segmenter, sam_checkpoint=args.sam_checkpoint, device=args.device
        )
    except FileNotFoundError as err:
        raise UsageError(f"missing weights: {err}") from None
    if notice:
        notices.append(notice)
    print(
        f"{fob_line}\nprompts used for the masks: {prompts_name}\n"
        f"segmenter: {json.dumps(segmenter.describe())}"
    )
    for n in notices:
        print(f"NOTICE: {n}")
    anatomy = None if args.no_real_anatomy else real_anatomy(generators, segmenter)
    summaries = {}
    from napari_fob.samples import SAMPLE_NAMES

    for name in SAMPLE_NAMES:
        summaries[name] = run_sample(
            name, out, generators, segmenter, notices, prompts_name, not args.quiet
        )
        print_summary(name, summaries[name])
        print_target(name, far_comparison([summaries[name]]))
    print("\n== both samples")
    met = print_target("all structures", far_comparison(list(summaries.values())))
    atomic.write_text(
        out / "demo.json",
        json.dumps(
            {
                "fob_weights": str(weights) if weights.exists() else None,
                "prompts": prompts_name,
                "segmenter": segmenter.describe(),
                "notices": notices,
                "far_dz5": far_comparison(list(summaries.values())),
                "fob_beats_both_baselines_dz5": met,
                "real_anatomy": anatomy,
                "samples": {
                    k: {"structures": v["structures"], "timings_s": v["timings_s"]}
                    for k, v in summaries.items()
                },
            },
            indent=1,
        ),
    )
    print(f"\nsummary written to {out / 'demo.json'}")
    print(REAL_ANATOMY_NOTE)
    return 0
