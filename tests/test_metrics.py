"""Hand-made cases for napari_fob.core.metrics: prompt metrics against ground truth, and Dice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_fob import geometry as g
from napari_fob.core import metrics as mt
from napari_fob.core.prompts import PromptSet


def disk(shape=(128, 128), center=(64, 64), radius=20) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def square_mask() -> np.ndarray:
    m = np.zeros((10, 10), bool)
    m[2:6, 2:6] = True
    return m


def test_bg_inside_and_fg_outside_hand_cases():
    m = square_mask()
    pts = np.array([[3, 3], [5.4, 5.4], [8, 8], [-1, 3], [3, 20]], float)
    # (3,3) and (5,5) inside; (8,8) outside; two points outside the image count as outside
    assert mt.bg_inside(pts, m) == pytest.approx(2 / 5)
    assert mt.fg_outside(pts, m) == pytest.approx(3 / 5)
    assert mt.bg_inside(np.array([[5.6, 3.0]]), m) == 0.0  # rounds to row 6: outside
    assert math.isnan(mt.bg_inside(np.zeros((0, 2)), m))
    assert math.isnan(mt.fg_outside(np.zeros((0, 2)), m))


def test_empty_true_mask():
    m = np.zeros((10, 10), bool)
    pts = np.array([[1.0, 1.0]])
    assert mt.bg_inside(pts, m) == 0.0
    assert mt.fg_outside(pts, m) == 1.0
    assert math.isnan(mt.ring_error(pts, m))
    assert math.isnan(mt.ring_coverage(pts, m))


def test_ring_error_zero_on_the_ring_and_grows_with_a_shift():
    m = disk(radius=20)
    bg = g.ring_points(m)
    assert mt.ring_error(bg, m) == 0.0
    shifted = bg + np.array([0.0, 6.0])
    err = mt.ring_error(shifted, m)
    assert 0 < err <= 6.0
    # a point at the centre is about radius + r = 20 + 15 px from the band
    assert mt.ring_error(np.array([[64.0, 64.0]]), m) == pytest.approx(35, abs=1.0)
    # a point outside the image still gets its distance to the band
    far = mt.ring_error(np.array([[-40.0, 64.0]]), m)
    assert far == pytest.approx(64 - 37 + 40, abs=1.5)


def test_ring_coverage_counts_sectors():
    m = disk(radius=20)
    assert mt.ring_coverage(g.ring_points(m), m) == 1.0
    same_spot = np.repeat([[20.0, 66.0]], 10, axis=0)
    assert mt.ring_coverage(same_spot, m) == pytest.approx(0.1)
    # four points in the four quadrants, counted with 4 or 8 sectors
    quad = np.array([[30, 70], [70, 100], [100, 60], [60, 30]], float)
    assert mt.ring_coverage(quad, m) == 1.0
    assert mt.ring_coverage(quad, m, n_sectors=8) == 0.5
    with pytest.raises(ValueError, match="n_sectors"):
        mt.ring_coverage(quad, m, n_sectors=0)


def test_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mt.dice(a, b) == 1.0
    a[0, :2] = True
    assert mt.dice(a, b) == 0.0
    b[0, 1:3] = True
    assert mt.dice(a, b) == pytest.approx(0.5)
    v = np.zeros((2, 3, 3), bool)
    v[0] = True
    assert mt.dice(v, v) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        mt.dice(a, v)


def test_prompt_metrics_at_grid_scale_match_native_for_a_grid_sized_slice():
    m = disk(shape=(256, 256), center=(128, 128), radius=40)
    ps = PromptSet(fg=g.fg_points_from_mask(m), bg=g.ring_points(m), label=1)
    out = mt.prompt_metrics(ps, m, scale_to_grid=256)
    assert out == mt.prompt_metrics(ps, m, scale_to_grid=None)
    assert out == {"bg_inside": 0.0, "fg_outside": 0.0, "ring_error": 0.0, "ring_coverage": 1.0}


def test_prompt_metrics_scale_ring_error_to_the_grid():
    # a 512 x 512 slice: a 10 px slice error is a 5 px grid error, and the band is r = 15 at
    # the grid, i.e. 30 slice pixels from the mask
    m = disk(shape=(512, 512), center=(256, 256), radius=80)
    m_grid = g.resize_mask_to_grid(m, 256)
    bg_grid = g.ring_points(m_grid)
    bg = g.grid_to_slice(bg_grid, m.shape, 256)
    ps = PromptSet(fg=np.array([[256.0, 256.0]]), bg=bg)
    assert mt.prompt_metrics(ps, m)["ring_error"] == pytest.approx(0.0, abs=0.5)
    shifted = PromptSet(fg=ps.fg, bg=bg + np.array([10.0, 0.0]))
    err_grid = mt.prompt_metrics(shifted, m)["ring_error"]
    err_native = mt.prompt_metrics(shifted, m, scale_to_grid=None, r=30, eps=4)["ring_error"]
    assert 0 < err_grid <= 5.5
    assert err_native == pytest.approx(2 * err_grid, rel=0.35)
