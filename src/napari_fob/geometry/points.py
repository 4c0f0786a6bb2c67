"""Gaussian heatmaps of points, and foreground points spread over a probability map or a mask.

Pure numpy / scipy; must not import torch, napari, Qt or magicgui. Points are ``(N, 2)`` float
(row, col) pixel centres.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from napari_fob.geometry.ring import EMPTY_MASK_MESSAGE, as_mask


# ----------------------------------------------------------------------------- heatmaps
def gaussian_heatmaps(points: np.ndarray, shape: tuple[int, int], sigma: float = 4.0) -> np.ndarray:
    """(N, H, W) float32 Gaussians exp(-|x - p|^2 / (2 sigma^2)), one per (row, col) point.

    The value is 1 at the point itself (so exactly 1 at its pixel when the point is integer).
    """
    if sigma <= 0:
        raise ValueError(f"gaussian_heatmaps: sigma must be > 0, got {sigma}")
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = int(shape[0]), int(shape[1])
    gr = np.exp(-((np.arange(h)[None, :] - p[:, :1]) ** 2) / (2 * sigma**2))  # (N, H)
    gc = np.exp(-((np.arange(w)[None, :] - p[:, 1:]) ** 2) / (2 * sigma**2))  # (N, W)
    return (gr[:, :, None] * gc[:, None, :]).astype(np.float32)


# ----------------------------------------------------------------------------- foreground points
def _farthest_points(
    coords: np.ndarray, seed: int, n: int, min_distance: float | None
) -> list[int]:
    """Greedy farthest-point sampling over (P, 2) coords, starting at index `seed`."""
    chosen = [seed]
    dist = np.linalg.norm(coords - coords[seed], axis=1)
    while len(chosen) < n:
        j = int(np.argmax(dist))
        if dist[j] <= 0 or (min_distance is not None and dist[j] < min_distance):
            break
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(coords - coords[j], axis=1))
    return chosen


def foreground_points(
    prob: np.ndarray,
    n: int = 10,
    *,
    threshold: float = 0.9,
    min_distance: int | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to n foreground points spread over the pixels where ``prob > threshold`` (or over
    the (H, W) bool `candidates`, when given, whatever the threshold).

    The first point is the most probable pixel of that region; each next one is the region
    pixel farthest from those already chosen (farthest-point sampling), stopping early when
    the region has no more distinct pixels or the farthest one is closer than `min_distance`.
    When no pixel passes the threshold, the single argmax pixel is returned (k = 1).

    Args:
        prob: (H, W) float foreground probability (e.g. FoB's map C).

    Returns:
        points (k, 2) float64 (row, col) pixel centres, k <= n, and their (k,) float64 scores
        (prob at each point).
    """
    pr = np.asarray(prob, dtype=np.float64)
    if pr.ndim != 2:
        raise ValueError(f"foreground_points: prob must be (H, W), got shape {pr.shape}")
    if n < 1:
        raise ValueError(f"foreground_points: n must be >= 1, got {n}")
    if not np.all(np.isfinite(pr)):
        raise ValueError("foreground_points: prob holds NaN or inf values")
    if candidates is not None:
        region = np.asarray(candidates, dtype=bool)
        if region.shape != pr.shape:
            raise ValueError(
                f"foreground_points: candidates shape {region.shape} differs from prob's {pr.shape}"
            )
    else:
        region = pr > threshold
    if not region.any():
        rc = np.array([np.unravel_index(int(np.argmax(pr)), pr.shape)], dtype=np.float64)
        return rc, pr[int(rc[0, 0]), int(rc[0, 1])].reshape(1)
    coords = np.argwhere(region).astype(np.float64)
    scores = pr[region]
    chosen = _farthest_points(coords, int(np.argmax(scores)), n, min_distance)
    return coords[chosen], scores[chosen]


def mask_depth(mask: np.ndarray) -> np.ndarray:
    """(H, W) float64: each pixel's Euclidean distance to the background of a 2D mask (0
    outside; the image border counts as background)."""
    return ndi.distance_transform_edt(np.pad(as_mask(mask), 1))[1:-1, 1:-1]


def fg_points_from_mask(mask: np.ndarray, n: int = 10) -> np.ndarray:
    """Up to n points inside `mask`, spread by farthest-point sampling over its inner core.

    The core is the set of mask pixels at least half the maximal depth (Euclidean distance to
    the background) from the border, so points keep away from the edges; the first point is
    the deepest pixel.

    Args:
        mask: (H, W) array, truthy on the structure.

    Returns:
        (k, 2) float64 (row, col) pixel centres, k <= n (k < n only for tiny masks).
    """
    m = as_mask(mask)
    if not m.any():
        raise ValueError(EMPTY_MASK_MESSAGE)
    if n < 1:
        raise ValueError(f"fg_points_from_mask: n must be >= 1, got {n}")
    depth = mask_depth(m)
    core = depth >= 0.5 * depth.max()
    coords = np.argwhere(core).astype(np.float64)
    chosen = _farthest_points(coords, int(np.argmax(depth[core])), n, None)
    return coords[chosen]
