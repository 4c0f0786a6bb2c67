"""The per-slice confidence: how likely a query slice's prompts are right, from what the pipeline
knows before anything is committed (issue 23, part 4; docs/method.md, "Evidence").

`slice_features` measures a query's footprint (the region the prompts are drawn around: the
support mask, or that mask carried to the query by registration) against the support it came
from and against the slice next to it on the way from the support; `calibrated` maps a few of
those numbers through a logistic function fitted once, on the real-anatomy benchmark's `tune`
structures only, against the per-slice Dice of the committed masks (`bench/fit_confidence.py`;
its coefficients are the constants below). The result, in [0, 1], is an estimate of the Dice
the slice's prompts give; automatic extent stops where it falls below a threshold
(`AUTO_THRESHOLD`, chosen on `tune` too).

What is measured, and what the fit kept: the intensity-band overlap alone (`BAND_FEATURE`, the
earlier evidence) stays high where a structure ends next to tissue of the same intensity, so
`slice_features` also measures the footprint's boundary (inside vs the thin shell just outside,
`edge_*`), how far the query has moved from what was painted (image similarity, footprint area
and position) and |dz|. The fit keeps few of them: presence uses the band overlap alone (the
boundary contrasts do not carry over between modalities), quality |dz|, the intensity level
change and the query's boundary contrast. A support painted off its structure lowers the
confidence but is not flagged by it (docs/benchmarks.md, "Confidence and automatic extent").

Computed at a fixed `GRID` (every input is resized to it), so that the numbers mean the same
for FoB (its model grid) and the mask baselines (slice pixels). Pure numpy / scipy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from napari_fob.core.intensity import band_overlap

GRID = 128
"""Side of the square grid every feature is measured at (the shipped FoB's model grid)."""

SHELL_WIDTH = 3.0
"""Width, in `GRID` pixels, of the shell just outside a footprint that its inside is compared
with (about 2 % of the slice: thin enough to stay on the neighbouring tissue)."""

WINDOW_MARGIN = 6
"""`GRID` pixels added around the footprints' bounding box for the image-similarity window."""

BAND_FEATURE = "band"

FEATURES = (
    "band",  # intensity-band overlap of the footprint (the earlier evidence)
    "edge_q",  # query's inside-vs-shell contrast at the footprint, signed as the support's
    "edge_s",  # support's own inside-vs-shell contrast (does the mask outline a structure?)
    "edge_ratio",  # edge_q / edge_s
    "ncc_s",  # normalised cross-correlation of the footprint's window, query vs support
    "ncc_n",  # the same, query vs the neighbouring slice towards the support
    "area",  # log(footprint area / support area)
    "iou_n",  # IoU of the footprint with the neighbour's footprint
    "shift",  # centroid shift from the support mask, in equivalent radii
    "level",  # |median inside, query - support| / support band width
    "dz",  # log(1 + |z - z_support|)
    "band_log",  # log(band + 0.05): separates "almost none of the footprint" from "some"
)
"""Every feature `slice_features` measures (the calibration uses the few in `COEFFICIENTS`)."""

PRESENCE: dict = {
    "intercept": 0.3261,
    "weights": {"band_log": 0.4828},
    "mean": {"band_log": -0.2921},
    "scale": {"band_log": 0.7402},
}
"""Logistic model of "the structure is under the footprint", on the intensity-band overlap
alone (`band_log`; weights of the standardised feature), fitted by `bench/fit_confidence.py`
on the tune split: every prompted slice, 1 inside the structure's extent, 0 outside it and
for supports moved off their structure (numbers: docs/benchmarks.md, "Confidence and
automatic extent")."""

QUALITY: dict = {
    "intercept": -1.0637,
    "weights": {"dz": -0.5975, "level": -0.6155, "edge_q": 0.2192},
    "mean": {"dz": 2.536, "level": 0.1904, "edge_q": 0.3559},
    "scale": {"dz": 0.6478, "level": 0.2823, "edge_q": 0.5201},
}
"""Logistic model of the slice's Dice where the structure is there (the same fit, on the scored
slices of the true supports; features chosen greedily by held-out loss)."""

AUTO_THRESHOLD = 0.06
"""The confidence below which automatic extent stops: of the thresholds tried, the one with the
smallest mean end error over the real-anatomy tune split and tuning abdomen phantoms (not
the demo's) together, so that the rule holds on MRI and on CT-like organs alike (numbers:
docs/benchmarks.md, "Confidence and automatic extent"). Low, because the confidence estimates
Dice, and Dice on the tune split's thin cortical regions is low."""


def _resized(image: np.ndarray) -> np.ndarray:
    from napari_fob import geometry

    image = np.asarray(image, dtype=np.float32)
    return image if image.shape == (GRID, GRID) else geometry.resize_to_grid(image, GRID)


def _resized_mask(mask: np.ndarray) -> np.ndarray:
    from napari_fob import geometry

    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (GRID, GRID):
        return mask
    out = geometry.resize_mask_to_grid(mask, GRID)
    if not out.any() and mask.any():  # thinner than one grid pixel: keep what it touches
        out = geometry.resize_to_grid(mask.astype(np.float32), GRID) > 0
    return out


def shell(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels outside `mask` within `SHELL_WIDTH` of it."""
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(~mask)
    return (dist > 0) & (dist <= SHELL_WIDTH)


def edge_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """(mean inside - mean of the shell outside) / (their pooled standard deviation) of the
    `GRID` image at the `GRID` mask: large where the mask outlines something the image shows,
    ~0 where inside and just outside look alike; 0 for an empty mask or shell."""
    around = shell(mask)
    inside, outside = image[mask], image[around]
    if inside.size == 0 or outside.size == 0:
        return 0.0
    spread = np.sqrt(0.5 * (inside.var() + outside.var())) + 1e-3
    return float((inside.mean() - outside.mean()) / spread)


def _window(*masks: np.ndarray) -> tuple[slice, slice]:
    union = np.logical_or.reduce([m for m in masks if m is not None])
    rows, cols = np.nonzero(union)
    if rows.size == 0:
        return slice(0, GRID), slice(0, GRID)
    r0, r1 = max(rows.min() - WINDOW_MARGIN, 0), min(rows.max() + WINDOW_MARGIN + 1, GRID)
    c0, c1 = max(cols.min() - WINDOW_MARGIN, 0), min(cols.max() + WINDOW_MARGIN + 1, GRID)
    return slice(r0, r1), slice(c0, c1)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally shaped arrays (0 where either is flat)."""
    a = np.asarray(a, np.float64).ravel() - np.mean(a)
    b = np.asarray(b, np.float64).ravel() - np.mean(b)
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 1e-12 else 0.0


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def slice_features(
    query01: np.ndarray,
    footprint: np.ndarray,
    support01: np.ndarray,
    support_mask: np.ndarray,
    band: tuple[float, float],
    *,
    dz: int | None,
    neighbour01: np.ndarray | None = None,
    neighbour_mask: np.ndarray | None = None,
) -> dict[str, float]:
    """Every feature of `FEATURES` for one query.

    Args:
        query01: the query slice, (H, W) in [0, 1].
        footprint: (H', W') bool, the region the query's prompts are drawn around (any size:
            everything is resized to `GRID`).
        support01, support_mask: the support slice and its mask (the mask the footprint came
            from; a committed support's band is that of a painted one, `band`).
        band: the structure's intensity band (`intensity.reference_band`).
        dz: the query's distance in slices from the support (None: unknown, taken as 1).
        neighbour01, neighbour_mask: the slice next to the query on the way to the support and
            its footprint; the support itself where not known.
    """
    q, s = _resized(query01), _resized(support01)
    f, m = _resized_mask(footprint), _resized_mask(support_mask)
    if neighbour01 is None or neighbour_mask is None:
        n, nm = s, m
    else:
        n, nm = _resized(neighbour01), _resized_mask(neighbour_mask)
    edge_s_signed = edge_contrast(s, m)
    sign = 1.0 if edge_s_signed >= 0 else -1.0
    edge_q = sign * edge_contrast(q, f)
    edge_s = abs(edge_s_signed)
    rows, cols = _window(f, m)
    nrows, ncols = _window(f, nm)
    area_f, area_m = int(f.sum()), int(m.sum())
    union = int((f | nm).sum())
    radius = np.sqrt(max(area_m, 1) / np.pi)
    shift = (
        float(np.linalg.norm(_centroid(f) - _centroid(m)) / radius) if area_f and area_m else 1.0
    )
    width = max(float(band[1] - band[0]), 1e-3)
    level = abs(float(np.median(q[f])) - float(np.median(s[m]))) / width if area_f else 1.0
    return {
        "band": band_overlap(q, f, band),
        "edge_q": edge_q,
        "edge_s": edge_s,
        "edge_ratio": float(np.clip(edge_q / max(edge_s, 0.1), -3.0, 3.0)),
        "ncc_s": ncc(q[rows, cols], s[rows, cols]),
        "ncc_n": ncc(q[nrows, ncols], n[nrows, ncols]),
        "area": float(np.log(max(area_f, 1) / max(area_m, 1))),
        "iou_n": float((f & nm).sum() / union) if union else 0.0,
        "shift": shift,
        "level": float(min(level, 5.0)),
        "dz": float(np.log1p(abs(int(dz)) if dz is not None else 1.0)),
    } | derived(band_overlap(q, f, band))


def derived(band: float) -> dict[str, float]:
    """The features `slice_features` derives from others (so a stored report can be re-scored
    with them): ``band_log``."""
    return {"band_log": float(np.log(band + 0.05))}


def logistic(features: Mapping[str, float], model: Mapping) -> float:
    """The logistic function of `model`'s ``intercept`` plus its ``weights`` times the
    features standardised by its ``mean`` and ``scale``."""
    t = float(model["intercept"]) + sum(
        float(w) * (float(features[k]) - float(model["mean"][k])) / float(model["scale"][k])
        for k, w in model["weights"].items()
    )
    return float(1.0 / (1.0 + np.exp(-np.clip(t, -50.0, 50.0))))


def calibrated(
    features: Mapping[str, float],
    presence: Mapping | None = None,
    quality: Mapping | None = None,
) -> float:
    """The calibrated confidence in [0, 1] of one slice from its `features`: the probability
    that the structure is under the footprint (`PRESENCE`) times the Dice expected where it is
    (`QUALITY`), or the given models."""
    if "band_log" not in features and "band" in features:  # a report from before it existed
        features = {**features, **derived(float(features["band"]))}
    p = logistic(features, PRESENCE if presence is None else presence)
    return p * logistic(features, QUALITY if quality is None else quality)
