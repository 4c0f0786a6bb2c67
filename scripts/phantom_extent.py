"""Automatic extent's end error on abdomen phantoms, per confidence cut (the phantom half of the
choice of `prompting.confidence.AUTO_THRESHOLD`; the tune half is `bench/confidence.py`).

For each phantom seed, generator and organ, one automatic walk with no cut (threshold 0) from
the organ's central slice records every slice's confidence; the stop of each cut is then read
from those confidences (the walk stops at the first slice below it), which is what a walk with
that cut does (in chain mode too: the confidences up to the stop do not depend on the cut).
Mean end error = (|lower end - true| + |upper end - true|) / 2, in slices, over the organs.
Phantoms only (never the real-anatomy test structures); the demo's seed 0 is left out by
default.

    .venv/bin/python scripts/phantom_extent.py [--seeds 1,2,3,4]
        [--methods mask-ring,mask-ring:chain,fob,fob:chain,registration] [--out results.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

CUTS = (0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)


def central_slice(mask: np.ndarray) -> int:
    zs = np.flatnonzero(mask.any(axis=(1, 2)))
    counts = mask.sum(axis=(1, 2))
    zc = int(round((zs * counts[zs]).sum() / counts[zs].sum()))
    return zc if mask[zc].any() else int(zs[np.argmin(abs(zs - zc))])


def walks(seeds: list[int], methods: list[str]) -> list[dict]:
    from napari_fob.core.intensity import resolve_window
    from napari_fob.prompting.generators import make_generator
    from napari_fob.samples.phantom import make_abdomen_phantom
    from napari_fob.segmenters import get_segmenter
    from napari_fob.session import AnnotationSession
    from napari_fob.session.events import run

    segmenter, _ = get_segmenter("random-walker")
    out = []
    for seed in seeds:
        image, labels, names = make_abdomen_phantom(seed=seed)
        window = resolve_window(image, "auto")
        for method in methods:
            name, mode = (method.split(":") + ["fixed"])[:2]
            for label in sorted(names):
                mask = labels == label
                if not mask.any():
                    continue
                zc, zs = central_slice(mask), np.flatnonzero(mask.any(axis=(1, 2)))
                gen = make_generator(name, device="cpu") if name == "fob" else make_generator(name)
                s = AnnotationSession(image, generator=gen, segmenter=segmenter, window=window)
                s.set_support(label, zc, mask[zc])
                run(s.predict(label, "auto", mode=mode, threshold=0.0))
                conf = {z: s.prompts[(lab, z)].evidence for (lab, z) in s.prompts if lab == label}
                out.append({"seed": seed, "method": method, "organ": names[label], "support": zc,
                            "first": int(zs[0]), "last": int(zs[-1]),
                            "confidence": {int(z): float(c) for z, c in conf.items()}})  # fmt: skip
                print(seed, method, names[label], flush=True)
    return out


def stop(conf: dict[int, float], start: int, step: int, cut: float) -> int:
    z = start
    while conf.get(z + step, -1.0) >= cut:
        z += step
    return z


def table(units: list[dict], methods: list[str]) -> str:
    lines = ["| cut | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for cut in CUTS:
        cells = []
        for method in methods:
            errs = [(abs(stop(u["confidence"], u["support"], -1, cut) - u["first"])
                     + abs(stop(u["confidence"], u["support"], 1, cut) - u["last"])) / 2
                    for u in units if u["method"] == method]  # fmt: skip
            cells.append(f"{np.mean(errs):.2f}")
        lines.append(f"| {cut:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4")
    parser.add_argument("--methods", default="mask-ring,mask-ring:chain,fob,fob:chain,registration")
    parser.add_argument("--out", default=None, help="write the walks' confidences as JSON")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    units = walks([int(s) for s in args.seeds.split(",")], methods)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(units, f)
    print(table(units, methods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
