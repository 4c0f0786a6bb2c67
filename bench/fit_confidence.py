"""Fit the per-slice confidence's calibration (`napari_fob.prompting.confidence`) on the real-
anatomy benchmark's `tune` structures only.

Input: a report of `bench/confidence.py` (its units hold, per prompted slice, the features of
`confidence.slice_features` and, on every third slice of the structure's extent, the random
walker's Dice). Only FoB's units (the product's generator) of the `tune` split are used, the
supports moved off their structure (``--shifted``) included; every structure handed to the fit
goes through `refuse_test` first, so a test structure stops it.

Samples: each scored slice with its Dice as the target, and each prompted slice outside the
structure's extent with target 0 (the structure is not there: any prompt is wrong). Model:
logistic regression with these fractional targets (cross-entropy, a small L2 penalty), on
features standardised by their tune mean and spread. Features are chosen greedily, at most
``--max-features`` of them, by the cross-validated loss with whole structures held out
(left and right of one region together); a feature joins only where it lowers that loss by
more than 0.2 %. Prints the constants to paste into `confidence.py` and writes them with the
fit's numbers to ``bench/results/confidence_fit.json``.

    .venv/bin/python bench/fit_confidence.py [--report bench/results/confidence.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
L2 = 1e-2  # penalty on the standardised weights (not on the intercept), per sample
MIN_GAIN = 0.002  # relative drop of the held-out loss a feature must bring to join
FOLDS = 6
TARGETS = ("presence", "quality")
PRESENCE = ("band_log",)
"""What presence may use: what the image shows under the footprint, not |dz| (where a
structure ends along z is its own, and would not carry over from the tune structures' lengths)
nor the support's own contrast (the same on every slice of a unit)."""


def samples(units: list[dict], features: tuple[str, ...], target: str) -> tuple:
    """(X (n, k), targets (n,), group per sample) from tune units, after `refuse_test`.

    ``target="presence"``: every prompted slice, 1 inside the structure's extent and 0 outside
    it; a support moved off its structure (``kind="shifted"``) gives 0 everywhere, its
    footprint holds no structure. ``target="quality"``: the scored slices of the true
    supports, with their Dice.
    """
    from _real_anatomy_data import refuse_test
    from napari_fob.prompting.confidence import derived

    if target not in TARGETS:
        raise ValueError(f"target {target!r}: expected one of {TARGETS}")
    refuse_test([u["structure"] for u in units], who="bench/fit_confidence.py")
    rows, targets, groups = [], [], []
    for u in units:
        group = u["structure"].rsplit("_", 1)[0]  # left and right of a region together
        shifted = u.get("kind") == "shifted"
        if target == "quality" and shifted:
            continue
        for z, feats in u["features"].items():
            z = int(z)
            if target == "presence":
                value = 0.0 if shifted else float(u["first"] <= z <= u["last"])
            else:
                dice = u["dice"].get(str(z), u["dice"].get(z))
                if dice is None:
                    continue
                value = float(dice)
            feats = {**derived(float(feats["band"])), **feats}  # reports from before band_log
            rows.append([float(feats[f]) for f in features])
            targets.append(value)
            groups.append(group)
    return np.asarray(rows, np.float64), np.asarray(targets), np.asarray(groups)


def _loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    t = w[0] + x @ w[1:]
    p = 1.0 / (1.0 + np.exp(-np.clip(t, -50, 50)))
    eps = 1e-9
    n = len(y)
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    loss += L2 * float(w[1:] @ w[1:]) / 2.0
    grad = np.concatenate([[np.mean(p - y)], x.T @ (p - y) / n + L2 * w[1:]])
    return float(loss), grad


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[intercept, weights...] of the penalised logistic fit of targets `y` in [0, 1]."""
    from scipy.optimize import minimize

    w0 = np.zeros(x.shape[1] + 1)
    done = minimize(_loss, w0, args=(x, y), jac=True, method="L-BFGS-B")
    return done.x


def heldout_loss(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Mean cross-entropy on held-out structures (`FOLDS` folds of whole regions)."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"held-out loss: needs at least 2 tune regions, got {names}")
    total, n = 0.0, 0
    for k in range(FOLDS):
        out = np.isin(groups, names[k::FOLDS])
        if not out.any() or out.all():
            continue
        w = fit_logistic(x[~out], y[~out])
        loss, _ = _loss(np.concatenate([w[:1], w[1:]]), x[out], y[out])
        total += (loss - L2 * float(w[1:] @ w[1:]) / 2.0) * out.sum()
        n += int(out.sum())
    return total / n


def fit(
    units: list[dict],
    candidates: tuple[str, ...],
    max_features: int,
    *,
    target: str = "quality",
    select: bool = True,
) -> dict:
    """One logistic model of `target` (`samples`): greedy forward selection (``select``;
    otherwise every candidate is kept) and the final fit on every tune unit given."""
    x_all, y, groups = samples(units, candidates, target)
    mean, scale = x_all.mean(axis=0), x_all.std(axis=0) + 1e-9
    z_all = (x_all - mean) / scale
    chosen: list[int] = []
    path = []
    best = heldout_loss(z_all[:, :0], y, groups)
    path.append({"features": [], "heldout_loss": best})
    if not select:
        chosen = list(range(len(candidates)))
        best = heldout_loss(z_all, y, groups)
        path.append({"features": list(candidates), "heldout_loss": best})
    while select and len(chosen) < max_features:
        trials = {
            j: heldout_loss(z_all[:, chosen + [j]], y, groups)
            for j in range(len(candidates))
            if j not in chosen
        }
        if not trials:
            break
        j, loss = min(trials.items(), key=lambda kv: kv[1])
        if loss > best * (1.0 - MIN_GAIN):
            break
        chosen.append(j)
        best = loss
        path.append({"features": [candidates[i] for i in chosen], "heldout_loss": loss})
    w = fit_logistic(z_all[:, chosen], y)
    names = [candidates[i] for i in chosen]
    return {
        "target": target,
        "features": names,
        "intercept": float(w[0]),
        "weights": {n: float(c) for n, c in zip(names, w[1:])},
        "mean": {n: float(mean[i]) for n, i in zip(names, chosen)},
        "scale": {n: float(scale[i]) for n, i in zip(names, chosen)},
        "selection": path,
        "n_samples": int(len(y)),
        "n_units": len(units),
        "structures": sorted({u["structure"] for u in units}),
    }


def tune_units(report: dict, method: str = "fob") -> list[dict]:
    """The report's units of `method` on the tune split (the only ones a fit may see)."""
    return [u for u in report["units"] if u["method"] == method and u["split"] == "tune"]


def main(argv: list[str] | None = None) -> int:
    from napari_fob.prompting.confidence import FEATURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default=str(ROOT / "bench" / "results" / "confidence.json"))
    parser.add_argument("--max-features", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "confidence_fit.json"))
    args = parser.parse_args(argv)
    report = json.loads(Path(args.report).read_text())
    units = tune_units(report)
    result = {
        "presence": fit(units, PRESENCE, args.max_features, target="presence", select=False),
        "quality": fit(units, FEATURES, args.max_features, target="quality"),
        "report": os.path.relpath(Path(args.report).resolve(), ROOT),
    }
    from napari_fob.core.atomic import write_text

    write_text(Path(args.out), json.dumps(result, indent=1))
    for name in ("presence", "quality"):
        r = result[name]
        path = [(s["features"], round(s["heldout_loss"], 4)) for s in r["selection"]]
        print(f"{name}: selection {path}")
        model = {k: r[k] for k in ("intercept", "weights", "mean", "scale")}
        print(f"{name.upper()} = {model!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
