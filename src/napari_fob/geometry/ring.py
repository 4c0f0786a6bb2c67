"""The ring band of Eq. 1, angles around a centre, and ordered ring sampling.

Pure numpy / scipy / scikit-image; must not import torch, napari, Qt or magicgui. Points are
``(N, 2)`` float (row, col); angles run from "up" (-row) clockwise on screen, in [0, 2 pi).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

KERNELS = ("disk", "square")

#: The ring band's distance, as (r, eps) of this module's band r < d <= r + eps (grid pixels
#: at 256 x 256; d the distance to the mask). Eq. 1 is rho(M, r) - rho(M, r - eps) with "a
#: dilation kernel of size r = 15"; read as a radius or as a kernel size it gives different
#: bands (docs/method.md, "The ring's distance", has the measured difference):
#:
#: - "radius" -- 15 as the dilation radius, eps = 2: (15, 17] px. **The product's choice**
#:   (`RING_DEFINITION`): the shipped model was trained on it (at its 128 grid: r = 8), so
#:   changing it means retraining.
#: - "paper-kernel" -- 15 and 13 as kernel sizes (radii 7 and 6): (6, 7] px, Eq. 1 as printed.
#: - "authors-code" -- the public code's kernels 21 and 15 (radii 10 and 7): (7, 10] px, the
#:   ring the authors' weights were trained with.
RING_DEFINITIONS: dict[str, tuple[int, int]] = {
    "radius": (15, 2),
    "paper-kernel": (6, 1),
    "authors-code": (7, 3),
}
RING_DEFINITION = "radius"
RING_R, RING_EPS = RING_DEFINITIONS[RING_DEFINITION]


def ring_definition(name: str = RING_DEFINITION, grid_size: int = 256) -> tuple[float, float]:
    """(r, eps) of a named ring definition (`RING_DEFINITIONS`) at an S x S grid (scaled from
    256); ValueError naming the known ones for an unknown name."""
    if name not in RING_DEFINITIONS:
        raise ValueError(f"ring definition {name!r}: expected one of {sorted(RING_DEFINITIONS)}")
    r, eps = RING_DEFINITIONS[name]
    return r * grid_size / 256, eps * grid_size / 256
RING_METHODS = ("arc", "sector")
EMPTY_MASK_MESSAGE = "mask is empty: a support mask needs at least one foreground pixel"


# ----------------------------------------------------------------------------- band (Eq. 1)
def as_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """`mask` as a 2D bool array; ValueError naming `name` if it is not 2D."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2D (H, W) array, got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32 Euclidean distance to a 2D mask's border, positive outside and negative
    inside (used for the band loss's targets and the predictor's inward penalty)."""
    m = as_mask(mask)
    return (ndi.distance_transform_edt(~m) - ndi.distance_transform_edt(m)).astype(np.float32)


def _distance_from_mask(mask: np.ndarray, kernel: str) -> np.ndarray:
    """Distance of every pixel to the nearest mask pixel (0 on the mask), for `kernel`."""
    if kernel == "disk":
        return ndi.distance_transform_edt(~mask)
    if kernel == "square":
        # Chessboard distance d <= k  <=>  inside a dilation by a (2k+1) x (2k+1) square.
        return ndi.distance_transform_cdt(~mask, metric="chessboard").astype(np.float64)
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _check_band_args(r: float, eps: float) -> None:
    if not (r >= 0 and eps > 0):
        raise ValueError(f"ring band: expected r >= 0 and eps > 0, got r={r}, eps={eps}")


def _band_from_distance(d: np.ndarray, r: float, eps: float) -> np.ndarray:
    return (d > r) & (d <= r + eps)


def ring_band(
    mask: np.ndarray, *, r: float = RING_R, eps: float = RING_EPS, kernel: str = "disk"
) -> np.ndarray:
    """The "differential region" of Eq. 1: dilate(mask, r + eps) minus dilate(mask, r).

    Args:
        mask: (H, W) array, truthy on the structure.
        r: inner dilation radius in pixels (default `RING_R`: 15 at 256 x 256, the
            "radius" reading of the paper's 15; see `RING_DEFINITIONS`).
        eps: band width in pixels (default `RING_EPS`: 2).
        kernel: "disk" (Euclidean: pixels with r < d <= r + eps, d the exact distance to the
            mask) or "square" (square kernels of sizes 2r+1 and 2(r+eps)+1, i.e. chessboard
            distance r < d <= r + eps).

    Returns:
        (H, W) bool band, clipped to the image (pixels outside the image do not exist).

    Raises:
        ValueError: the mask is empty, not 2D, or r / eps / kernel are invalid.
    """
    m = as_mask(mask)
    if not m.any():
        raise ValueError(EMPTY_MASK_MESSAGE)
    _check_band_args(r, eps)
    return _band_from_distance(_distance_from_mask(m, kernel), r, eps)


def mask_centroid(mask: np.ndarray) -> np.ndarray:
    """(2,) float64 centroid (row, col) of all mask pixels (all components together)."""
    m = as_mask(mask)
    if not m.any():
        raise ValueError(EMPTY_MASK_MESSAGE)
    return np.argwhere(m).mean(axis=0)


# ----------------------------------------------------------------------------- angles
def point_angles(points: np.ndarray, center: np.ndarray, start_angle: float = 0.0) -> np.ndarray:
    """(N,) angles in [0, 2*pi) of (N, 2) (row, col) points around `center` (row, col).

    0 is "up" (-row) rotated clockwise on screen by `start_angle`; angles grow clockwise
    (up -> right -> down -> left). A point exactly at the centre has angle 0.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    c = np.asarray(center, dtype=np.float64).reshape(2)
    d = p - c
    theta = np.arctan2(d[:, 1], -d[:, 0]) - start_angle
    return np.mod(theta, 2 * np.pi) % (2 * np.pi)  # second mod folds 2*pi (from -0.0) to 0


def order_by_angle(points: np.ndarray, center: np.ndarray, start_angle: float = 0.0) -> np.ndarray:
    """(N,) int index permutation sorting (N, 2) points by `point_angles` (stable on ties)."""
    return np.argsort(point_angles(points, center, start_angle), kind="stable")


# ----------------------------------------------------------------------------- ring sampling
def _band_level(r: float, eps: float, kernel: str) -> float:
    """Distance value at the middle of the band: the contour that is sampled."""
    if kernel == "square":  # integer distances: the band holds floor(r)+1 .. floor(r+eps)
        return (np.floor(r) + 1 + np.floor(r + eps)) / 2
    return r + eps / 2


def _outer_contours(d: np.ndarray, level: float) -> list[np.ndarray]:
    """Contours of {d <= level} without the rims of its holes (they lie inside the organ)."""
    region = d <= level
    holes = ndi.binary_fill_holes(region) & ~region
    if holes.any():
        d = d.copy()
        d[holes] = 0.0
    return [c for c in measure.find_contours(d, level) if len(c) >= 2]


def _sample_polylines(
    lines: list[np.ndarray], n: int, center: np.ndarray, start_angle: float
) -> np.ndarray | None:
    """n points evenly spaced by arc length over all polylines, phase tied to the start ray.

    A closed contour from find_contours repeats its first vertex, so its closing segment is part
    of its length. Samples sit at (k + 0.5) * L / n past the first vertex clockwise of the start
    direction, so no sample sits on the 0 / 2*pi cut of the angle order.
    """
    seg_len = [np.linalg.norm(np.diff(c, axis=0), axis=1) for c in lines]
    total = float(sum(s.sum() for s in seg_len))
    if total <= 0:
        return None
    verts = np.concatenate(lines)
    # arc position of each vertex in the concatenation (pieces joined without a segment)
    starts = np.concatenate([np.concatenate([[0.0], np.cumsum(s)]) for s in seg_len])
    offsets = np.repeat(np.cumsum([0.0] + [s.sum() for s in seg_len[:-1]]), [len(c) for c in lines])
    pos = starts + offsets
    s0 = pos[np.argmin(point_angles(verts, center, start_angle))]
    targets = np.mod(s0 + (np.arange(n) + 0.5) * total / n, total)
    out = np.empty((n, 2))
    for k, t in enumerate(targets):
        j = int(np.searchsorted(pos, t, side="right") - 1)
        j = min(max(j, 0), len(verts) - 2)
        if pos[j + 1] <= pos[j]:  # jump between two pieces: take the vertex itself
            out[k] = verts[j]
            continue
        w = (t - pos[j]) / (pos[j + 1] - pos[j])
        out[k] = (1 - w) * verts[j] + w * verts[j + 1]
    return out


def _snap_to_band(points: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Replace each point by the centre of the band pixel nearest to its own pixel."""
    _, idx = ndi.distance_transform_edt(~band, return_indices=True)
    h, w = band.shape
    rc = np.rint(points).astype(int)
    rc[:, 0] = np.clip(rc[:, 0], 0, h - 1)
    rc[:, 1] = np.clip(rc[:, 1], 0, w - 1)
    return np.stack([idx[0][rc[:, 0], rc[:, 1]], idx[1][rc[:, 0], rc[:, 1]]], axis=1).astype(
        np.float64
    )


def _sector_points(
    band: np.ndarray, d: np.ndarray, level: float, n: int, center: np.ndarray, start_angle: float
) -> np.ndarray:
    """One band pixel per equal angular sector [k, k + 1) * 2 pi / n: the one nearest the point
    where the sector's middle ray crosses mid-band (tangential offset plus radial offset from
    mid-band, both in pixels). A sector without band pixels borrows the band pixel nearest its
    middle angle."""
    pix = np.argwhere(band).astype(np.float64)
    ang = point_angles(pix, center, start_angle)
    radius = np.linalg.norm(pix - center, axis=1)
    off_mid = np.abs(d[band] - level)
    step = 2 * np.pi / n
    sector = np.minimum((ang / step).astype(int), n - 1)
    out = np.empty((n, 2))
    for k in range(n):
        gap = np.abs(np.mod(ang - (k + 0.5) * step + np.pi, 2 * np.pi) - np.pi)
        cost = np.where(sector == k, np.sin(np.minimum(gap, np.pi / 2)) * radius + off_mid, np.inf)
        if not np.isfinite(cost).any():
            cost = gap
        out[k] = pix[int(np.argmin(cost))]
    return out


def ring_points(
    mask: np.ndarray,
    n: int = 10,
    *,
    r: float = RING_R,
    eps: float = RING_EPS,
    kernel: str = "disk",
    start_angle: float = 0.0,
    method: str = "arc",
) -> np.ndarray:
    """n background points spread around the ring band of `mask`, in ring order.

    method "arc" (default): the mid-band contour (distance r + eps/2 from the mask; the rims
    of enclosed holes excluded) is sampled evenly by arc length, closing segment included, and
    each sample snapped to the centre of the nearest band pixel. method "sector": one band
    pixel per equal angular sector around the centroid, the one nearest where the sector's
    middle ray crosses mid-band (guarantees one point per sector; uneven on elongated masks).

    Points are ordered by `point_angles` around the centroid of the whole mask (several
    components are treated as one structure), so index k is the same place around the organ on
    every slice; point 0 is the first one clockwise from the start direction ("up" turned by
    `start_angle`). Where the band is clipped by the image border, only its part inside the
    image is sampled. When the band has few pixels, points repeat (n is always returned).

    Args:
        mask: (H, W) array, truthy on the structure.
        n: number of points (paper: Np = 10).
        r, eps, kernel: the band, as in `ring_band`.
        start_angle: radians, clockwise from "up".
        method: "arc" or "sector".

    Returns:
        (n, 2) float64 (row, col) integer pixel centres of band pixels, inside the image.

    Raises:
        ValueError: empty mask, n < 1, unknown method, or a band entirely outside the image.
    """
    if n < 1:
        raise ValueError(f"ring_points: n must be >= 1, got {n}")
    if method not in RING_METHODS:
        raise ValueError(f"ring_points: method must be one of {RING_METHODS}, got {method!r}")
    m = as_mask(mask)
    center = mask_centroid(m)  # also rejects an empty mask
    _check_band_args(r, eps)
    d = _distance_from_mask(m, kernel)
    band = _band_from_distance(d, r, eps)
    if not band.any():
        raise ValueError(
            f"ring band lies entirely outside the image: no pixel of the {m.shape} image is at "
            f"distance r < d <= r + eps (r={r}, eps={eps}) from the mask, so no background "
            "point can be placed"
        )
    level = _band_level(r, eps, kernel)
    pts = None
    if method == "arc":
        samples = _sample_polylines(_outer_contours(d, level), n, center, start_angle)
        if samples is not None:
            pts = _snap_to_band(samples, band)
    if pts is None:
        # "sector", or no mid-band contour inside the image (only a sliver of band is visible)
        pts = _sector_points(band, d, level, n, center, start_angle)
    return pts[order_by_angle(pts, center, start_angle)]


def closed_path(points: np.ndarray) -> np.ndarray:
    """(N+1, 2) closed polyline of (N, 2) ring points (first point repeated); (0, 2) if empty."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p if len(p) == 0 else np.concatenate([p, p[:1]], axis=0)
