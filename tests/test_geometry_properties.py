"""Property tests (hypothesis) for ring sampling, metrics on those rings, and the transforms.

Random ellipses and blobs (unions of ellipses) in random-sized images, often touching or
crossing the border. Ring points are snapped to band pixels, so the band-distance property
holds exactly (no tolerance) also for clipped and tiny masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_fob import geometry as g
from napari_fob.core import metrics as mt

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ellipse(shape, center, axes, angle) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    dy, dx = yy - center[0], xx - center[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dy + s * dx, -s * dy + c * dx
    return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1


@st.composite
def blobs(draw, max_parts: int = 3):
    h = draw(st.integers(24, 160))
    w = draw(st.integers(24, 160))
    m = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(1, max_parts))):
        center = (draw(st.floats(-5, h + 5)), draw(st.floats(-5, w + 5)))
        axes = (draw(st.floats(0.5, 40)), draw(st.floats(0.5, 40)))
        m |= ellipse((h, w), center, axes, draw(st.floats(0, np.pi)))
    assume(m.any())
    return m


band_params = st.tuples(st.floats(1, 20), st.floats(1, 4), st.sampled_from(["disk", "square"]))


@SETTINGS
@given(
    m=blobs(),
    params=band_params,
    n=st.integers(1, 16),
    start=st.floats(0, 2 * np.pi),
    method=st.sampled_from(["arc", "sector"]),
)
def test_ring_points_lie_in_the_band_in_angle_order(m, params, n, start, method):
    r, eps, kernel = params
    band = g.ring_band(m, r=r, eps=eps, kernel=kernel)
    if not band.any():
        with pytest.raises(ValueError, match="outside the image"):
            g.ring_points(m, n, r=r, eps=eps, kernel=kernel, method=method)
        return
    pts = g.ring_points(m, n, r=r, eps=eps, kernel=kernel, start_angle=start, method=method)
    assert pts.shape == (n, 2)
    rows, cols = pts[:, 0].astype(int), pts[:, 1].astype(int)
    assert np.array_equal(pts, np.stack([rows, cols], 1))  # pixel centres
    assert np.all((rows >= 0) & (rows < m.shape[0]) & (cols >= 0) & (cols < m.shape[1]))
    assert not m[rows, cols].any()
    if kernel == "disk":
        d = ndi.distance_transform_edt(~m)[rows, cols]
    else:
        d = ndi.distance_transform_cdt(~m, metric="chessboard")[rows, cols]
    assert np.all((d > r) & (d <= r + eps))
    ang = g.point_angles(pts, g.mask_centroid(m), start)
    assert np.all(np.diff(ang) >= 0)
    assert mt.ring_error(pts, m, r=r, eps=eps, kernel=kernel) == 0.0


@SETTINGS
@given(
    h=st.integers(100, 200),
    w=st.integers(100, 200),
    axes=st.tuples(st.floats(2, 25), st.floats(2, 25)),
    angle=st.floats(0, np.pi),
    n=st.integers(3, 12),
)
def test_sector_rings_cover_every_sector_of_a_whole_convex_ring(h, w, axes, angle, n):
    m = ellipse((h, w), (h / 2, w / 2), axes, angle)
    assume(m.any())
    # the whole band fits in the image, and a convex mask's band surrounds its centroid
    pts = g.ring_points(m, n, method="sector")
    assert mt.ring_coverage(pts, m) == 1.0
    assert mt.bg_inside(pts, m) == 0.0


@SETTINGS
@given(
    h=st.integers(100, 200),
    w=st.integers(100, 200),
    radius=st.floats(1, 30),
    n=st.integers(3, 12),
)
def test_arc_rings_of_disks_cover_every_sector(h, w, radius, n):
    m = ellipse((h, w), (h / 2, w / 2), (radius, radius), 0.0)
    assume(m.any())
    pts = g.ring_points(m, n)
    assert mt.ring_coverage(pts, m) == 1.0
    # shifting the ring off the band is measured
    assert mt.ring_error(pts + np.array([8.0, 0.0]), m) > 0


@SETTINGS
@given(
    pts=st.lists(st.tuples(st.floats(-50, 600), st.floats(-50, 600)), min_size=1, max_size=20),
    shape=st.tuples(st.integers(1, 600), st.integers(1, 600)),
    size=st.integers(1, 512),
)
def test_grid_transforms_are_exact_inverses(pts, shape, size):
    p = np.array(pts)
    back = g.grid_to_slice(g.slice_to_grid(p, shape, size), shape, size)
    np.testing.assert_allclose(back, p, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(g.from_sam_xy(g.to_sam_xy(p)), p)
    np.testing.assert_array_equal(g.from_napari(g.to_napari(p, 4))[4], p)


@SETTINGS
@given(m=blobs(), n=st.integers(1, 12), threshold=st.floats(0.1, 0.95))
def test_foreground_points_stay_in_the_region(m, n, threshold):
    prob = ndi.gaussian_filter(m.astype(float), 1.5)
    pts, scores = g.foreground_points(prob, n, threshold=threshold)
    assert 1 <= len(pts) <= n and scores.shape == (len(pts),)
    rows, cols = pts[:, 0].astype(int), pts[:, 1].astype(int)
    if (prob > threshold).any():
        assert np.all(prob[rows, cols] > threshold)
        assert scores[0] == prob[prob > threshold].max()
    else:
        assert len(pts) == 1 and scores[0] == prob.max()
    assert len({tuple(p) for p in pts.tolist()}) == len(pts)  # no point twice
    inner = g.fg_points_from_mask(m, n)
    assert np.all(m[inner[:, 0].astype(int), inner[:, 1].astype(int)])
