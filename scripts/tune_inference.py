"""The tuning table behind FoB's in-volume inference choices (docs/method.md).

Runs the predictor with each addition switched on in turn on *tuning* phantoms (seeds 200-219
by default: neither the training volumes, 90 and 100-131, nor the benchmark's, 0-4 and the MNI
brain), with the mask-ring baseline beside it, and prints one row per variant: ring_error,
bg_inside (and the number of background points inside), fg_outside and the random-walker Dice
over query slices with |dz| >= 5 (support: each structure's central slice, as in
`bench/prompt_quality.py`). Nothing is written; not part of ``make bench`` (tuning volumes
are not benchmark volumes; ~8 min on 2 cores). Run:
``.venv/bin/python scripts/tune_inference.py [--seeds 200,201] [--band-exclusion 2,5,20]
[--priors "1,0.5,2;1,1,0.75"] [--fg-cores 0.5,0.75]`` (``--priors``: the band exclusion row with
other location priors (a, b) and inward penalties k; ``--fg-cores``: foreground from the
support's core at these depth fractions; one row each).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from _pq_cases import Case, _ct, central_slice, label_slices  # noqa: E402


def variants(
    checkpoint: str,
    exclusions: list[float],
    priors: list[tuple[float, float, float]],
    cores: list[float],
) -> dict[str, object]:
    """Variant name -> prompt generator; the product's settings are the last FoB row."""
    from napari_fob.prompting.generators import FobGenerator, MaskRingGenerator
    from napari_fob.prompting.in_volume import (
        DEFAULT_BAND_EXCLUSION,
        DEFAULT_FG_CORE,
        DEFAULT_INWARD_PRIOR,
        DEFAULT_LOCATION_PRIOR,
    )
    from napari_fob.prompting.predictor import FobPredictor, load_predictor

    model = load_predictor(checkpoint, device="cpu").model
    off = {
        "location_prior": None,
        "inward_prior": None,
        "band_exclusion": None,
        "fine_ring": False,
        "fg_core": None,
    }

    def fob(**options: object) -> FobGenerator:
        return FobGenerator(predictor=FobPredictor(model, device="cpu", **{**off, **options}))

    prior = DEFAULT_LOCATION_PRIOR
    out: dict[str, object] = {
        "mask-ring (baseline)": MaskRingGenerator(),
        "network alone": fob(),
        "+ location prior": fob(location_prior=prior),
        "+ inward penalty": fob(location_prior=prior, inward_prior=DEFAULT_INWARD_PRIOR),
    }
    for w in exclusions:
        out[f"+ band exclusion {w:g}"] = fob(
            location_prior=prior, inward_prior=DEFAULT_INWARD_PRIOR, band_exclusion=w
        )
    for a, b, k in priors:
        out[f"band exclusion with location prior ({a:g}, {b:g}), inward penalty {k:g}"] = fob(
            location_prior=(a, b), inward_prior=k, band_exclusion=DEFAULT_BAND_EXCLUSION
        )
    ring = {
        "location_prior": prior,
        "inward_prior": DEFAULT_INWARD_PRIOR,
        "band_exclusion": DEFAULT_BAND_EXCLUSION,
    }
    for c in cores:
        product = " (the product)" if c == DEFAULT_FG_CORE else ""
        out[f"+ foreground from the support's core {c:g}{product}"] = fob(**ring, fg_core=c)
    out["the product + fine ring from the painted support too"] = fob(
        **ring, fg_core=DEFAULT_FG_CORE, fine_ring=True
    )
    return out


def evaluate(generator: object, cases: list[Case], segmenter: object) -> dict[str, float]:
    import numpy as np

    from napari_fob.core.metrics import dice, prompt_metrics

    rows = []
    for case in cases:
        for lab in sorted(case.names):
            z0 = central_slice(case.labels, lab)
            queries = [int(z) for z in label_slices(case.labels, lab) if abs(int(z) - z0) >= 5]
            generator.clear_supports()
            generator.set_support(case.image01[z0], case.labels[z0] == lab, slice_index=z0)
            prompts = generator.predict([case.image01[z] for z in queries], slice_indices=queries)
            for z, ps in zip(queries, prompts):
                truth = case.labels[z] == lab
                m = prompt_metrics(ps, truth)
                mask = np.asarray(segmenter.segment(case.image[z], ps, window=case.window), bool)
                n_in = int(round(m["bg_inside"] * len(ps.bg)))
                rows.append(
                    (
                        m["ring_error"],
                        m["bg_inside"],
                        n_in,
                        len(ps.bg),
                        m["fg_outside"],
                        dice(mask, truth),
                    )
                )
    a = np.array(rows, dtype=float)
    return {
        "slices": len(rows),
        "ring_error": float(np.nanmean(a[:, 0])),
        "bg_inside": float(np.nanmean(a[:, 1])),
        "n_inside": int(a[:, 2].sum()),
        "n_points": int(a[:, 3].sum()),
        "fg_outside": float(np.nanmean(a[:, 4])),
        "dice": float(np.nanmean(a[:, 5])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--seeds", default=",".join(str(s) for s in range(200, 220)))
    parser.add_argument(
        "--band-exclusion", default="5,20", help="penalties to try, comma-separated"
    )
    parser.add_argument(
        "--priors",
        default="1,0.5,2",
        help="'a,b,k;...': the product with these location priors and inward penalties "
        "(default: the settings before the prior was widened)",
    )
    parser.add_argument(
        "--fg-cores", default="0.75", help="support-core fractions to try, comma-separated"
    )
    args = parser.parse_args(argv)

    import torch

    from napari_fob.samples.phantom import make_abdomen_phantom
    from napari_fob.segmenters import get_segmenter

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if set(seeds) & ({0, 1, 2, 3, 4, 90} | set(range(100, 132))):
        parser.error("--seeds: tuning seeds must not be benchmark (0-4) or training (90, 100-131)")
    exclusions = [float(w) for w in args.band_exclusion.split(",") if w.strip()]
    cores = [float(c) for c in args.fg_cores.split(",") if c.strip()]
    priors = []
    for item in (p for p in args.priors.split(";") if p.strip()):
        values = [float(v) for v in item.split(",")]
        if len(values) != 3:
            parser.error(f"--priors: expected 'a,b,k' items separated by ';', got {item!r}")
        priors.append((values[0], values[1], values[2]))
    cases = []
    for seed in seeds:
        image, labels, names = make_abdomen_phantom(seed=seed)
        cases.append(Case("phantom", f"phantom-{seed}", image, _ct(image), labels, names))
    segmenter, _ = get_segmenter("random-walker", device="cpu")
    print(f"tuning phantoms {seeds}, |dz| >= 5, random-walker Dice, checkpoint {args.checkpoint}")
    print("| variant | ring_error px | bg_inside | inside / points | fg_outside | Dice | s |")
    print("|---|---|---|---|---|---|---|")
    for name, generator in variants(args.checkpoint, exclusions, priors, cores).items():
        t0 = time.perf_counter()
        r = evaluate(generator, cases, segmenter)
        print(
            f"| {name} | {r['ring_error']:.2f} | {r['bg_inside']:.4f} | "
            f"{r['n_inside']} / {r['n_points']} | {r['fg_outside']:.3f} | {r['dice']:.3f} | "
            f"{time.perf_counter() - t0:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
