"""Random-walker fallback: a noisy ellipse with its true ring and a few fg points."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.core.intensity import Window
from napari_fob.core.metrics import dice
from napari_fob.core.prompts import PromptSet
from napari_fob.geometry import fg_points_from_mask, ring_points
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter, ring_polygon_mask

WINDOW = Window(0.0, 400.0)


def _ellipse(shape=(128, 140), centre=(64, 60), radii=(30, 20)) -> np.ndarray:
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return ((rr - centre[0]) / radii[0]) ** 2 + ((cc - centre[1]) / radii[1]) ** 2 <= 1


def _noisy(mask: np.ndarray, sigma: float = 60.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (100.0 + 200.0 * mask + rng.normal(0, sigma, mask.shape)).astype(np.float32)


@pytest.mark.parametrize(("seed", "mode"), [(0, "bf"), (1, "bf"), (2, "cg_j")])
def test_noisy_ellipse_with_true_ring_gives_dice_above_0_9(seed, mode):
    mask = _ellipse()
    prompts = PromptSet(fg=fg_points_from_mask(mask, 5), bg=ring_points(mask, 10))
    out = RandomWalkerSegmenter(mode=mode).segment(_noisy(mask, seed=seed), prompts, window=WINDOW)
    assert out.dtype == bool and out.shape == mask.shape
    assert dice(out, mask) > 0.9


def test_structure_at_the_image_border():
    mask = _ellipse(centre=(20, 60))  # cut by the top edge
    prompts = PromptSet(fg=fg_points_from_mask(mask, 5), bg=ring_points(mask, 10))
    out = RandomWalkerSegmenter().segment(_noisy(mask), prompts, window=WINDOW)
    assert dice(out, mask) > 0.85


def test_far_outside_the_ring_is_background_and_no_fg_is_empty():
    mask = _ellipse()
    image = _noisy(mask)
    image[:, 120:] = 300.0  # bright like the organ, but well outside the ring
    prompts = PromptSet(fg=fg_points_from_mask(mask, 5), bg=ring_points(mask, 10))
    out = RandomWalkerSegmenter().segment(image, prompts, window=WINDOW)
    assert not out[:, 120:].any()
    empty = RandomWalkerSegmenter().segment(image, prompts.copy(fg=[]), window=WINDOW)
    assert not empty.any()


def test_few_background_points_and_a_flat_slice_still_work():
    mask = _ellipse()
    prompts = PromptSet(fg=[[64, 60]], bg=[[20, 60]])
    out = RandomWalkerSegmenter().segment(_noisy(mask), prompts, window=WINDOW)
    assert out[64, 60] and not out[0, 0]
    flat = np.zeros((50, 50), dtype=np.float32)
    ring = PromptSet(fg=[[25, 25]], bg=[[10, 25], [25, 40], [40, 25], [25, 10]])
    assert RandomWalkerSegmenter().segment(flat, ring, window=WINDOW)[25, 25]


def test_ring_polygon_is_robust_to_a_broken_order():
    ring = np.array([[10, 30], [30, 50], [50, 30], [30, 10]], dtype=float)
    shuffled = ring[[0, 2, 1, 3]]  # as if a point had been appended at the wrong place
    np.testing.assert_array_equal(
        ring_polygon_mask(ring, (60, 60)), ring_polygon_mask(shuffled, (60, 60))
    )


def test_bad_input_is_named():
    seg = RandomWalkerSegmenter()
    with pytest.raises(ValueError, match="2D slice"):
        seg.segment(np.zeros((3, 4, 5)), PromptSet(fg=[[1, 1]], bg=[]), window=WINDOW)
    with pytest.raises(ValueError, match="beta"):
        RandomWalkerSegmenter(beta=0)
    with pytest.raises(ValueError, match="mode"):
        RandomWalkerSegmenter(mode="amg")
    assert seg.describe()["kind"] == "random-walker"
    assert seg.segment_many([np.zeros((8, 8))], [PromptSet(fg=[], bg=[])], window=WINDOW)[
        0
    ].shape == (8, 8)
