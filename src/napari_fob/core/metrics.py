"""Prompt quality against ground truth (docs/geometry.md, "Metrics") and Dice.

Pure numpy / scipy; must not import torch, napari, Qt or magicgui. Points are ``(N, 2)`` float
arrays of ``(row, col)`` slice pixels, rounded to the nearest pixel wherever a pixel is needed;
a point outside the image is outside every mask.

Undefined values are NaN, never a silent number: an empty point set gives NaN for its metric,
and an empty true mask gives NaN for `ring_error` and `ring_coverage` (there is no ring to
measure against). See docs/geometry.md.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_fob import geometry
from napari_fob.core.prompts import PromptSet

#: The one scale every method's prompts are scored at (validation, ``fob evaluate``, the
#: benchmarks): the paper's 256 x 256 grid with its ring r = 15, eps = 2 (grid pixels). A model
#: trained at another grid (the shipped one: 128, r = 8) is scored here too, so its numbers are
#: comparable with every other method's. The ring is the product's `geometry.RING_DEFINITION`.
METRIC_GRID, METRIC_R, METRIC_EPS = 256, geometry.RING_R, geometry.RING_EPS


def _mask2d(mask: np.ndarray, name: str = "true_mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name}: expected a 2D (H, W) mask, got shape {m.shape}")
    return m.astype(bool, copy=False)


def _pixels(points: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rounded (N, 2) int pixels and an (N,) bool flag: inside the image."""
    p = geometry.as_points(points)
    rc = np.rint(p).astype(np.int64)
    ok = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    return rc, ok


def _inside(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rc, ok = _pixels(points, mask.shape)
    hit = np.zeros(len(rc), dtype=bool)
    hit[ok] = mask[rc[ok, 0], rc[ok, 1]]
    return hit


def bg_inside(bg: np.ndarray, true_mask: np.ndarray) -> float:
    """Fraction of (N, 2) background points inside the (H, W) true mask; NaN if N == 0."""
    hit = _inside(bg, _mask2d(true_mask))
    return float(hit.mean()) if len(hit) else float("nan")


def fg_outside(fg: np.ndarray, true_mask: np.ndarray) -> float:
    """Fraction of (N, 2) foreground points outside the (H, W) true mask; NaN if N == 0."""
    hit = _inside(fg, _mask2d(true_mask))
    return float(1.0 - hit.mean()) if len(hit) else float("nan")


def ring_error(
    bg: np.ndarray, true_mask: np.ndarray, *, r: float = 15, eps: float = 2, kernel: str = "disk"
) -> float:
    """Mean distance in pixels from each (N, 2) background point to the true ring band.

    The band is `geometry.ring_band(true_mask, r=r, eps=eps, kernel=kernel)`. A point whose
    pixel is in the band scores 0; any other point scores the Euclidean distance from the point
    to the band pixel nearest its pixel (clipped into the image for points outside it).

    Returns:
        float, NaN when N == 0, the mask is empty, or the band has no pixel inside the image.
    """
    m = _mask2d(true_mask)
    p = geometry.as_points(bg, "bg")
    if len(p) == 0 or not m.any():
        return float("nan")
    band = geometry.ring_band(m, r=r, eps=eps, kernel=kernel)
    if not band.any():
        return float("nan")
    dist, idx = ndi.distance_transform_edt(~band, return_indices=True)
    rc, ok = _pixels(p, m.shape)
    rc[:, 0] = np.clip(rc[:, 0], 0, m.shape[0] - 1)
    rc[:, 1] = np.clip(rc[:, 1], 0, m.shape[1] - 1)
    nearest = np.stack([idx[0][rc[:, 0], rc[:, 1]], idx[1][rc[:, 0], rc[:, 1]]], axis=1)
    err = np.linalg.norm(p - nearest, axis=1)
    err[ok & (dist[rc[:, 0], rc[:, 1]] == 0)] = 0.0  # the point's own pixel is in the band
    return float(err.mean())


def ring_coverage(
    bg: np.ndarray, true_mask: np.ndarray, n_sectors: int | None = None, *, start_angle: float = 0.0
) -> float:
    """Fraction of `n_sectors` equal angular sectors around the true mask's centroid that hold
    at least one (N, 2) background point.

    Sector k spans angles [k, k + 1) * 2 pi / n_sectors of `geometry.point_angles` (from "up",
    clockwise), the same sectors `geometry.ring_points` aims one point at each.

    Returns:
        float in [0, 1]; NaN when N == 0 or the mask is empty. n_sectors defaults to N.
    """
    m = _mask2d(true_mask)
    p = geometry.as_points(bg, "bg")
    if len(p) == 0 or not m.any():
        return float("nan")
    n = len(p) if n_sectors is None else int(n_sectors)
    if n < 1:
        raise ValueError(f"ring_coverage: n_sectors must be >= 1, got {n_sectors}")
    ang = geometry.point_angles(p, geometry.mask_centroid(m), start_angle)
    sector = np.minimum((ang / (2 * np.pi) * n).astype(int), n - 1)
    return float(len(np.unique(sector)) / n)


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Dice 2|P & T| / (|P| + |T|) of two masks of the same shape (2D or 3D); 1.0 if both empty."""
    p = np.asarray(pred).astype(bool, copy=False)
    t = np.asarray(true).astype(bool, copy=False)
    if p.shape != t.shape:
        raise ValueError(
            f"dice: pred and true must have the same shape, got {p.shape} vs {t.shape}"
        )
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(p, t).sum() / total)


def prompt_metrics(
    prompts: PromptSet,
    true_mask: np.ndarray,
    *,
    scale_to_grid: int | None = METRIC_GRID,
    r: float | None = None,
    eps: float | None = None,
    kernel: str = "disk",
) -> dict[str, float]:
    """bg_inside, fg_outside, ring_error and ring_coverage of one slice's prompts.

    Args:
        prompts: the PromptSet; its points are (row, col) pixels of the slice.
        true_mask: (H, W) ground-truth mask of the same structure on that slice.
        scale_to_grid: when set (default `METRIC_GRID`, 256), points and mask are first mapped
            to the S x S grid (`geometry.slice_to_grid`, `geometry.resize_mask_to_grid`), so
            ring_error is in grid pixels, comparable across image sizes. A structure thinner
            than one grid pixel vanishes there and counts as an empty mask. None measures in
            slice pixels.
        r, eps: the true ring band, in pixels of the grid measured at. None (the default) is
            the metric ring, `METRIC_R` / `METRIC_EPS` at the 256 grid, scaled to
            `scale_to_grid` (r = 15 is a 256-grid length: at a 128 grid it is 7.5, never 15);
            in slice pixels (no grid) it is 15 / 2 unscaled.

    Returns:
        {"bg_inside", "fg_outside", "ring_error", "ring_coverage"} as floats (NaN where
        undefined, see the module docstring).
    """
    m = _mask2d(true_mask)
    fg, bg = prompts.fg, prompts.bg
    scale = 1.0 if scale_to_grid is None else scale_to_grid / METRIC_GRID
    r = METRIC_R * scale if r is None else r
    eps = METRIC_EPS * scale if eps is None else eps
    if scale_to_grid is not None:
        fg = geometry.slice_to_grid(fg, m.shape, scale_to_grid)
        bg = geometry.slice_to_grid(bg, m.shape, scale_to_grid)
        m = geometry.resize_mask_to_grid(m, scale_to_grid)
    return {
        "bg_inside": bg_inside(bg, m),
        "fg_outside": fg_outside(fg, m),
        "ring_error": ring_error(bg, m, r=r, eps=eps, kernel=kernel),
        "ring_coverage": ring_coverage(bg, m),
    }
