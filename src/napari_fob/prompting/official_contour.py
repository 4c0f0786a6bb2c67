"""The FoB authors' support ring points, reproduced without OpenCV (their compatibility mode).

numpy/scipy only. Their code (github primebo1/FoB_SAM, ``FewShotSeg.uniform_sample_contour``
and ``sort_keypoints_clockwise``, read, not copied) takes the band ``maxpool(M, 21) -
maxpool(M, 15) > 0``, the outer contour of its largest component from OpenCV's
``findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)``, places Np points at ``linspace(0, L, Np)``
of arc length along that contour *as an open polyline* (so the first and the last point both
sit near the contour's start, and the closing segment is never sampled), rounds them
half-to-even, and orders them by the angle seen from the leftmost point. This module follows
the same border (Suzuki-Abe border following as OpenCV does it: its start pixel, direction and
compression) so the points are the same pixel for pixel; docs/method.md lists how this differs
from this project's ring (`geometry.ring_points`).

Points here are ``(x, y)`` = (col, row) integer pixels, as in their code.
"""

from __future__ import annotations

import numpy as np

# OpenCV's chain codes as (drow, dcol): 0 = right, then counter-clockwise on screen
# (1 = up-right, 2 = up, ...), 7 = down-right.
_STEPS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def trace_outer_border(image: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """The outer border of the 8-connected component holding `start`, as OpenCV returns it.

    Args:
        image: (H, W) bool, padded with a zero frame (so no step leaves the array).
        start: (row, col) of the component's first pixel in raster order.
    Returns:
        (K, 2) int (x, y) vertices of the border with ``CHAIN_APPROX_SIMPLE`` compression: a
        pixel is kept where the border's direction changes (and the start pixel, unless the
        border leaves it in the direction it arrives from).
    """
    r0, c0 = start
    s = 4  # look clockwise from the left neighbour for the border's last pixel
    while True:
        s = (s - 1) & 7
        if image[r0 + _STEPS[s][0], c0 + _STEPS[s][1]] or s == 4:
            break
    if s == 4:
        return np.array([[c0, r0]])  # a single pixel
    last = (r0 + _STEPS[s][0], c0 + _STEPS[s][1])
    prev, here, out = s ^ 4, (r0, c0), []
    while True:
        for step in range(s + 1, 16):  # counter-clockwise from just past where we came from
            nxt = (here[0] + _STEPS[step & 7][0], here[1] + _STEPS[step & 7][1])
            if image[nxt]:
                break
        s = step & 7
        if s != prev:
            out.append((here[1], here[0]))
            prev = s
        if nxt == (r0, c0) and here == last:
            break
        here, s = nxt, (s + 4) & 7
    return np.array(out)


def _area(poly: np.ndarray) -> float:
    """|shoelace area| of a closed polygon of (x, y) vertices (OpenCV's contourArea)."""
    x, y = poly[:, 0].astype(np.float64), poly[:, 1].astype(np.float64)
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))) / 2.0


def largest_outer_contour(band: np.ndarray) -> np.ndarray | None:
    """(K, 2) (x, y) outer contour of the band's component with the largest contour area, or
    None for an empty band. Components inside another's hole have a smaller area than it, so
    taking all 8-connected components gives the same winner as OpenCV's RETR_EXTERNAL; among
    equal areas the component found last in raster order wins, as with OpenCV's list order."""
    from scipy import ndimage

    band = np.asarray(band, dtype=bool)
    labels, n = ndimage.label(band, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return None
    padded = np.pad(band, 1)
    best, best_area = None, -1.0
    # first pixel of each component in raster order; components ordered by it
    flat = labels.ravel()
    firsts = sorted(int(np.flatnonzero(flat == k)[0]) for k in range(1, n + 1))
    for first in reversed(firsts):  # OpenCV lists the last found first; max keeps the first max
        r, c = divmod(first, band.shape[1])
        poly = trace_outer_border(padded, (r + 1, c + 1)) - 1
        area = _area(poly)
        if area > best_area:
            best, best_area = poly, area
    return best


def sample_open_contour(contour: np.ndarray, n: int) -> np.ndarray:
    """`n` points at ``linspace(0, L, n)`` of arc length along the contour as an open
    polyline (vertex 0 to vertex K-1), rounded half-to-even: (n, 2) int (x, y).

    Raises:
        ValueError: a contour of fewer than two distinct vertices (their code fails there).
    """
    pts = contour.astype(np.float64)
    if len(pts) < 2:
        raise ValueError("the support ring's contour is a single pixel: the mask is too small")
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    out, idx = [], 0
    for d in np.linspace(0.0, cum[-1], n):
        while idx < len(cum) - 1 and cum[idx + 1] < d:
            idx += 1
        ratio = (d - cum[idx]) / (cum[idx + 1] - cum[idx])
        out.append(contour[idx] + ratio * (contour[idx + 1] - contour[idx]))
    return np.round(np.array(out)).astype(int)


def order_from_leftmost(points: np.ndarray) -> np.ndarray:
    """Their ring order: indices sorting (N, 2) (x, y) points by ``atan2(dy, dx)`` seen from
    the first point of smallest x (which gets angle 0), a stable sort."""
    p = np.asarray(points)
    start = p[int(np.argmin(p[:, 0]))]
    angles = np.arctan2(p[:, 1] - start[1], p[:, 0] - start[0])
    return np.argsort(angles, kind="stable")


def ring_band(mask: np.ndarray) -> np.ndarray:
    """Their ring band of a (S, S) float mask: ``maxpool(M, 21) - maxpool(M, 15) > 0``
    (square kernels, stride 1, zero padding beyond the image)."""
    from scipy import ndimage

    m = np.asarray(mask, dtype=np.float32)
    outer = ndimage.maximum_filter(m, size=21, mode="constant", cval=-np.inf)
    inner = ndimage.maximum_filter(m, size=15, mode="constant", cval=-np.inf)
    return (outer - inner) > 0


def support_ring(mask: np.ndarray, n: int) -> np.ndarray:
    """Their support ring points for a (S, S) float mask at the grid, (n, 2) int (x, y), in
    contour order (not yet sorted; see `order_from_leftmost`); all zeros when the band is
    empty, as in their code."""
    contour = largest_outer_contour(ring_band(mask))
    if contour is None:
        return np.zeros((n, 2), dtype=int)
    return sample_open_contour(contour, n)
