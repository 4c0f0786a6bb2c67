"""Hand-made cases for napari_fob.geometry: band, ring order, heatmaps, fg points, transforms."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_fob import geometry as g


def disk(shape=(128, 128), center=(64, 64), radius=20) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


# ----------------------------------------------------------------------------- band
def test_ring_band_of_a_single_pixel_is_an_annulus_at_r():
    m = np.zeros((64, 64), bool)
    m[32, 32] = True
    band = g.ring_band(m, r=10, eps=2)
    d = np.hypot(*(np.argwhere(band) - 32).T)
    assert d.min() > 10 and d.max() <= 12
    # every pixel in that distance range is in the band
    yy, xx = np.mgrid[:64, :64]
    dd = np.hypot(yy - 32, xx - 32)
    assert np.array_equal(band, (dd > 10) & (dd <= 12))


def test_ring_band_square_kernel_is_a_square_annulus():
    m = np.zeros((64, 64), bool)
    m[32, 32] = True
    band = g.ring_band(m, r=3, eps=2, kernel="square")
    # equals dilation by a 2(r+eps)+1 square minus dilation by a 2r+1 square
    outer = ndi.binary_dilation(m, np.ones((11, 11), bool))
    inner = ndi.binary_dilation(m, np.ones((7, 7), bool))
    assert np.array_equal(band, outer & ~inner)


def test_square_kernel_reproduces_the_reference_max_pool_dilations():
    # the reference code: maxpool(mask, 21) - maxpool(mask, 15) == square band r=7, eps=3
    m = disk(shape=(96, 96), center=(40, 50), radius=9)
    ref = ndi.maximum_filter(m, size=21) & ~ndi.maximum_filter(m, size=15)
    assert np.array_equal(g.ring_band(m, r=7, eps=3, kernel="square"), ref)


def test_ring_band_errors():
    with pytest.raises(ValueError, match="mask is empty"):
        g.ring_band(np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="kernel"):
        g.ring_band(disk(), kernel="diamond")
    with pytest.raises(ValueError, match="2D"):
        g.ring_band(np.ones((2, 3, 4), bool))
    with pytest.raises(ValueError, match="eps > 0"):
        g.ring_band(disk(), eps=0)
    with pytest.raises(ValueError, match="r >= 0"):
        g.ring_points(disk(), r=-1)


def test_ring_band_is_clipped_at_the_border():
    m = disk(center=(2, 64))
    band = g.ring_band(m)
    assert band.shape == m.shape and band.any()
    assert not (band & m).any()


def test_mask_centroid_uses_all_components():
    m = np.zeros((20, 40), bool)
    m[10, 5] = m[10, 35] = True
    np.testing.assert_allclose(g.mask_centroid(m), [10, 20])
    with pytest.raises(ValueError, match="mask is empty"):
        g.mask_centroid(np.zeros((3, 3)))


# ----------------------------------------------------------------------------- angles
def test_point_angles_start_up_and_turn_clockwise():
    c = np.array([10.0, 10.0])
    pts = np.array([[0, 10], [10, 20], [20, 10], [10, 0]], float)  # up, right, down, left
    np.testing.assert_allclose(g.point_angles(pts, c), [0, np.pi / 2, np.pi, 3 * np.pi / 2])
    # start_angle turns the origin clockwise: "right" becomes 0
    np.testing.assert_allclose(
        g.point_angles(pts, c, start_angle=np.pi / 2), [3 * np.pi / 2, 0, np.pi / 2, np.pi]
    )
    assert list(g.order_by_angle(pts[::-1], c)) == [3, 2, 1, 0]


# ----------------------------------------------------------------------------- ring points
def test_disk_ring_is_at_the_right_radius_in_order_from_up():
    m = disk(radius=20)
    pts = g.ring_points(m, n=10)
    assert pts.shape == (10, 2)
    d = np.hypot(pts[:, 0] - 64, pts[:, 1] - 64)
    assert np.all((d > 35 - 1) & (d <= 37 + 1))
    ang = g.point_angles(pts, g.mask_centroid(m))
    assert np.all(np.diff(ang) > 0)
    # evenly spaced: point k sits in sector k, close to its middle (k + 0.5) * 36 degrees
    np.testing.assert_allclose(ang, (np.arange(10) + 0.5) * 2 * np.pi / 10, atol=0.06)
    assert np.all(pts == np.rint(pts))


def test_ring_order_is_the_same_on_shifted_and_scaled_masks():
    a = g.ring_points(disk(radius=20))
    b = g.ring_points(disk(center=(60, 70), radius=24))
    ang_a = g.point_angles(a, g.mask_centroid(disk(radius=20)))
    ang_b = g.point_angles(b, [60, 70])
    assert np.all(np.abs(ang_a - ang_b) < 0.1)


def test_start_angle_rotates_the_first_point():
    m = disk(radius=20)
    pts = g.ring_points(m, n=4, start_angle=np.pi / 2)
    ang = g.point_angles(pts, [64, 64], start_angle=np.pi / 2)
    assert np.all(np.diff(ang) > 0)
    # with origin "right", point 0 is between right and down
    assert pts[0, 0] > 64 and pts[0, 1] > 64


def test_ellipse_arc_sampling_is_evenly_spaced_including_the_closing_segment():
    yy, xx = np.mgrid[:160, :200]
    m = ((yy - 80) / 15.0) ** 2 + ((xx - 100) / 50.0) ** 2 <= 1
    pts = g.ring_points(m, n=12)
    gaps = np.linalg.norm(np.diff(g.closed_path(pts), axis=0), axis=1)
    assert gaps.max() < 1.25 * gaps.min()  # the segment from the last back to the first too


def test_sector_method_hits_every_sector():
    yy, xx = np.mgrid[:160, :200]
    m = ((yy - 80) / 15.0) ** 2 + ((xx - 100) / 50.0) ** 2 <= 1
    pts = g.ring_points(m, n=10, method="sector")
    sectors = (g.point_angles(pts, g.mask_centroid(m)) / (2 * np.pi) * 10).astype(int)
    assert list(sectors) == list(range(10))
    assert np.all(g.ring_band(m)[pts[:, 0].astype(int), pts[:, 1].astype(int)])


def test_ring_points_at_the_border_stay_in_the_image_and_band():
    m = disk(center=(3, 64), radius=20)
    pts = g.ring_points(m)
    band = g.ring_band(m)
    assert pts.shape == (10, 2)
    assert np.all((pts >= 0) & (pts < 128))
    assert np.all(band[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    assert np.all(np.diff(g.point_angles(pts, g.mask_centroid(m))) >= 0)


def test_two_components_use_the_union():
    m = disk(shape=(128, 200), center=(64, 50), radius=10) | disk(
        shape=(128, 200), center=(64, 150), radius=10
    )
    pts = g.ring_points(m, n=10)
    band = g.ring_band(m)
    assert np.all(band[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    # both components get points
    assert (pts[:, 1] < 100).sum() >= 3 and (pts[:, 1] > 100).sum() >= 3


def test_three_pixel_mask_still_gives_n_points():
    m = np.zeros((64, 64), bool)
    m[30, 30] = m[30, 31] = m[31, 30] = True
    pts = g.ring_points(m, n=10)
    assert pts.shape == (10, 2)
    d = ndi.distance_transform_edt(~m)[pts[:, 0].astype(int), pts[:, 1].astype(int)]
    assert np.all((d > 15) & (d <= 17))


def test_tiny_visible_band_repeats_points():
    # one mask pixel in the corner of a 12 x 12 image: only the far corner pixel (d = 15.6)
    # is in the band, and the mid-band contour (d = 16) is outside the image
    m = np.zeros((12, 12), bool)
    m[0, 0] = True
    band = g.ring_band(m)
    assert band.sum() == 1 and band[11, 11]
    pts = g.ring_points(m, n=10)
    assert pts.shape == (10, 2) and np.all(pts == 11)
    # a 6-pixel sliver: points repeat, all of them band pixels
    m = np.zeros((13, 13), bool)
    m[0, 0] = True
    band = g.ring_band(m)
    assert 1 < band.sum() < 10
    pts = g.ring_points(m, n=10)
    assert pts.shape == (10, 2)
    assert np.all(band[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    assert np.all(np.diff(g.point_angles(pts, [0, 0])) >= 0)


def test_band_outside_the_image_and_bad_args_raise():
    m = np.zeros((20, 20), bool)
    m[8:12, 8:12] = True
    with pytest.raises(ValueError, match="outside the image"):
        g.ring_points(m)
    with pytest.raises(ValueError, match="mask is empty"):
        g.ring_points(np.zeros((20, 20), bool))
    with pytest.raises(ValueError, match="method"):
        g.ring_points(disk(), method="spiral")
    with pytest.raises(ValueError, match="n must be"):
        g.ring_points(disk(), n=0)


def test_mask_with_a_hole_samples_only_the_outer_ring():
    m = disk(shape=(200, 200), center=(100, 100), radius=60) & ~disk(
        shape=(200, 200), center=(100, 100), radius=40
    )
    pts = g.ring_points(m, n=10)
    assert np.all(np.hypot(pts[:, 0] - 100, pts[:, 1] - 100) > 70)


def test_closed_path_repeats_the_first_point():
    p = np.array([[0, 0], [1, 2], [3, 4]], float)
    path = g.closed_path(p)
    assert path.shape == (4, 2) and np.array_equal(path[-1], p[0])
    assert g.closed_path(np.zeros((0, 2))).shape == (0, 2)


# ----------------------------------------------------------------------------- heatmaps
def test_gaussian_heatmaps_peak_and_sigma():
    pts = np.array([[10, 20], [30, 5]], float)
    hm = g.gaussian_heatmaps(pts, (40, 50), sigma=4.0)
    assert hm.shape == (2, 40, 50) and hm.dtype == np.float32
    assert hm[0, 10, 20] == 1.0 and hm[1, 30, 5] == 1.0
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (10, 20)
    # one sigma away: exp(-1/2)
    assert hm[0, 14, 20] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert hm[0, 10, 24] == pytest.approx(np.exp(-0.5), rel=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        g.gaussian_heatmaps(pts, (4, 4), sigma=0)


# ----------------------------------------------------------------------------- fg points
def _min_pairwise(p: np.ndarray) -> float:
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    return float(d[~np.eye(len(p), dtype=bool)].min())


def test_foreground_points_are_spread_and_start_at_the_best_pixel():
    prob = np.where(disk(radius=30), 0.95, 0.05)
    prob[70, 60] = 0.99
    pts, scores = g.foreground_points(prob, n=10)
    assert pts.shape == (10, 2) and scores.shape == (10,)
    assert tuple(pts[0]) == (70, 60) and scores[0] == 0.99
    assert np.all(prob[pts[:, 0].astype(int), pts[:, 1].astype(int)] > 0.9)
    assert _min_pairwise(pts) > 10  # raster order would give neighbours 1 px apart


def test_foreground_points_fallback_to_argmax_and_min_distance():
    prob = np.full((32, 32), 0.2)
    prob[5, 7] = 0.5
    pts, scores = g.foreground_points(prob, n=10, threshold=0.9)
    assert pts.tolist() == [[5.0, 7.0]] and scores.tolist() == [0.5]
    small = np.zeros((32, 32))
    small[10:13, 10:13] = 1.0
    pts, _ = g.foreground_points(small, n=10, min_distance=2)
    assert 1 < len(pts) < 10 and _min_pairwise(pts) >= 2
    pts, _ = g.foreground_points(small, n=20)
    assert len(pts) == 9  # only 9 distinct pixels pass


def test_foreground_points_over_given_candidates():
    prob = np.where(disk(radius=30), 0.95, 0.05)
    cand = np.zeros_like(prob, bool)
    cand[10:20, 10:40] = True  # where the map is low: the candidates win over the threshold
    pts, scores = g.foreground_points(prob, n=5, candidates=cand)
    assert len(pts) == 5 and cand[pts[:, 0].astype(int), pts[:, 1].astype(int)].all()
    assert np.allclose(scores, prob[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    with pytest.raises(ValueError, match="candidates shape"):
        g.foreground_points(prob, candidates=cand[:5])


def test_fg_points_from_mask_inside_spread_and_deep_first():
    m = disk(radius=25)
    pts = g.fg_points_from_mask(m, n=10)
    assert pts.shape == (10, 2)
    assert tuple(pts[0]) == (64, 64)
    assert np.all(m[pts[:, 0].astype(int), pts[:, 1].astype(int)])
    assert _min_pairwise(pts) > 4
    one = np.zeros((8, 8), bool)
    one[3, 4] = True
    assert g.fg_points_from_mask(one).tolist() == [[3.0, 4.0]]
    with pytest.raises(ValueError, match="mask is empty"):
        g.fg_points_from_mask(np.zeros((4, 4), bool))


# ----------------------------------------------------------------------------- transforms
def test_slice_grid_transforms_invert_and_align_pixel_centres():
    pts = np.array([[0, 0], [511, 255], [100.25, 3.5]])
    grid = g.slice_to_grid(pts, (512, 256), 256)
    np.testing.assert_allclose(grid[0], [-0.25, 0.0])
    np.testing.assert_allclose(grid[1], [255.25, 255.0])
    np.testing.assert_allclose(g.grid_to_slice(grid, (512, 256), 256), pts, atol=1e-12)
    # image corners map to grid corners: -0.5 -> -0.5, H - 0.5 -> S - 0.5
    np.testing.assert_allclose(g.slice_to_grid([[-0.5, 255.5]], (512, 256), 64), [[-0.5, 63.5]])


def test_resize_helpers():
    img = np.arange(16 * 8, dtype=float).reshape(16, 8)
    out = g.resize_to_grid(img, 32)
    assert out.shape == (32, 32) and out.dtype == np.float32
    m = np.zeros((100, 50), bool)
    m[20:60, 10:30] = True
    mg = g.resize_mask_to_grid(m, 50)
    assert mg.shape == (50, 50) and mg.dtype == bool
    assert mg[10:30, 10:30].all() and mg.sum() == 20 * 20
    back = g.resize_from_grid(mg, (100, 50))
    assert back.dtype == bool and np.array_equal(back, m)
    f = g.resize_from_grid(np.ones((8, 8)), (4, 12), order=1)
    assert f.shape == (4, 12) and f.dtype == np.float32 and np.allclose(f, 1)


def test_sam_and_napari_conversions():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    xy = g.to_sam_xy(p)
    assert xy.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert np.array_equal(g.from_sam_xy(xy), p)
    p3 = g.to_napari(p, 7)
    assert p3.tolist() == [[7, 1, 2], [7, 3, 4]]
    groups = g.from_napari(np.concatenate([p3, [[2.2, 5, 6]], [[6.6, 0, 1]]]))
    assert sorted(groups) == [2, 7]
    assert groups[7].tolist() == [[1, 2], [3, 4], [0, 1]] and groups[2].tolist() == [[5, 6]]
    assert g.from_napari(np.zeros((0, 3))) == {}
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        g.from_napari(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        g.to_sam_xy(np.zeros((2, 3)))


def test_ring_box_is_xy_and_clipped():
    bg = np.array([[-3, 10], [20, 40], [5, 70]], float)
    box = g.ring_box(bg, (30, 60))
    assert box.tolist() == [10, 0, 59, 20]
    with pytest.raises(ValueError, match="empty"):
        g.ring_box(np.zeros((0, 2)), (10, 10))


def test_geometry_and_metrics_import_nothing_heavy():
    code = (
        "import sys, napari_fob.geometry, napari_fob.core.metrics; "
        "print([m for m in ('torch', 'napari', 'qtpy', 'magicgui') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_rings_distance_is_a_named_choice():
    # Eq. 1's "kernel of size r = 15" read as a radius (the product's ring, (15, 17] px at 256),
    # as kernel sizes (the paper as printed, (6, 7] px) or the authors' code's kernels
    # ((7, 10] px); docs/method.md has the measured difference
    from napari_fob.core import metrics

    assert g.RING_DEFINITION == "radius" and (g.RING_R, g.RING_EPS) == (15, 2)
    assert (metrics.METRIC_R, metrics.METRIC_EPS) == (g.RING_R, g.RING_EPS)
    assert g.ring_definition() == (15, 2) and g.ring_definition("radius", 128) == (7.5, 1.0)
    assert g.ring_definition("paper-kernel") == (6, 1)
    assert g.ring_definition("authors-code") == (7, 3)
    with pytest.raises(ValueError, match="paper-kernel"):
        g.ring_definition("kernel")
    m = np.zeros((256, 256), bool)
    m[100:156, 90:166] = True
    d = ndi.distance_transform_edt(~m)
    for name, (lo, hi) in (
        ("radius", (15, 17)),
        ("paper-kernel", (6, 7)),
        ("authors-code", (7, 10)),
    ):
        r, eps = g.ring_definition(name)
        band = g.ring_band(m, r=r, eps=eps)
        assert d[band].min() > lo and d[band].max() <= hi
    paper = g.ring_points(m, 10, r=6, eps=1)
    assert metrics.ring_error(paper, m) > 7.0  # ~9 px off the product's band
    assert metrics.ring_error(paper, m, r=6, eps=1) == 0.0
