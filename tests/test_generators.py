"""Prompt generators: the mask-ring and copy baselines, their evidence, the registry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_fob.prompting.generators import (
    CopyGenerator,
    MaskRingGenerator,
    PromptGenerator,
    make_generator,
)


def disk(shape=(96, 128), center=(48, 60), radius=14) -> np.ndarray:
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2


def image_of(mask: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 0.03, mask.shape)
    return np.clip(0.2 + 0.5 * mask + noise, 0, 1).astype(np.float32)


def test_mask_ring_is_drawn_at_grid_scale_and_mapped_back():
    mask = disk(shape=(128, 128), center=(64, 64), radius=20)
    gen = MaskRingGenerator(grid_size=256, r=15, eps=2)  # 2x the slice: r is 7.5 slice pixels
    gen.set_support(image_of(mask), mask, slice_index=3)
    [p] = gen.predict([image_of(mask)], slice_indices=[4], label=2)
    assert p.origin == "mask-ring" and p.label == 2 and p.slice_index == 4
    assert p.bg.shape == (10, 2) and 1 <= len(p.fg) <= 10
    dist = ndimage.distance_transform_edt(~mask)
    d = dist[np.round(p.bg[:, 0]).astype(int), np.round(p.bg[:, 1]).astype(int)]
    assert np.all((d > 6.0) & (d < 10.5)), d
    assert mask[np.round(p.fg[:, 0]).astype(int), np.round(p.fg[:, 1]).astype(int)].all()
    angles = np.arctan2(p.bg[:, 1] - 64, -(p.bg[:, 0] - 64)) % (2 * np.pi)
    assert np.all(np.diff(np.unwrap(angles)) > 0)  # ring order: one way round


def test_nearest_support_is_used():
    a, b = disk(center=(40, 40), radius=10), disk(center=(60, 90), radius=12)
    gen = MaskRingGenerator()
    gen.set_support(image_of(a), a, slice_index=5)
    gen.set_support(image_of(b), b, slice_index=20)
    out = gen.predict([image_of(a)] * 4, slice_indices=[0, 12, 13, 30])
    assert [p.meta["support_slice"] for p in out] == [5, 5, 20, 20]  # tie at 12.5 -> lower
    assert np.allclose(out[0].bg, out[1].bg) and not np.allclose(out[1].bg, out[2].bg)
    gen.set_support(image_of(b), b, slice_index=5)  # replacing a slice's support
    assert np.allclose(gen.predict([image_of(b)], slice_indices=[0])[0].bg, out[3].bg)


def test_evidence_is_high_on_the_structure_and_low_where_it_has_gone():
    mask = disk()
    gen = MaskRingGenerator()
    gen.set_support(image_of(mask), mask, slice_index=0)
    same, shrunk, gone = gen.predict(
        [image_of(mask), image_of(disk(radius=7)), image_of(np.zeros_like(mask))],
        slice_indices=[1, 2, 3],
    )
    band = [p.meta["confidence_features"]["band"] for p in (same, shrunk, gone)]
    assert band[0] > 0.9 and 0.1 < band[1] < 0.5 and band[2] < 0.05
    assert same.evidence > shrunk.evidence > gone.evidence  # the calibrated confidence


def test_copy_returns_the_support_points_unchanged():
    mask = disk()
    ring, copy = MaskRingGenerator(), CopyGenerator()
    for g in (ring, copy):
        g.set_support(image_of(mask), mask, slice_index=7)
    [r], [c] = (
        g.predict([image_of(disk(center=(30, 30)))], slice_indices=[9]) for g in (ring, copy)
    )
    assert c.origin == "copy" and np.array_equal(c.bg, r.bg) and np.array_equal(c.fg, r.fg)
    assert copy.describe()["kind"] == "copy"


def test_misuse_and_registry_errors():
    gen = make_generator("mask-ring")
    assert isinstance(gen, PromptGenerator) and isinstance(make_generator("copy"), CopyGenerator)
    with pytest.raises(ValueError, match="before set_support"):
        gen.predict([np.zeros((8, 8), np.float32)])
    with pytest.raises(ValueError, match="empty"):
        gen.set_support(np.zeros((8, 8)), np.zeros((8, 8), bool), slice_index=0)
    with pytest.raises(ValueError, match="same shape"):
        gen.set_support(np.zeros((8, 8)), np.zeros((8, 9), bool), slice_index=0)
    with pytest.raises(ValueError, match="expected one of"):
        make_generator("magic")
    mask = disk()
    gen.set_support(image_of(mask), mask, slice_index=1)
    gen.set_support(image_of(mask), mask, slice_index=2)
    with pytest.raises(ValueError, match="several supports"):
        gen.predict([image_of(mask)])
    with pytest.raises(ValueError, match="2 indices"):
        gen.predict([image_of(mask)], slice_indices=[1, 2])
    gen.clear_supports()
    with pytest.raises(ValueError, match="before set_support"):
        gen.predict([image_of(mask)], slice_indices=[1])


def test_fob_generator_wraps_the_predictor():
    import torch

    from napari_fob.model.fob import build_fob

    torch.manual_seed(0)
    gen = make_generator("fob", model=build_fob("tiny"), device="cpu")
    assert isinstance(gen, PromptGenerator) and gen.name == "fob"
    mask = disk()
    gen.set_support(image_of(mask), mask, slice_index=3)
    out = gen.predict([image_of(mask), image_of(disk(radius=9))], slice_indices=[4, 9], label=5)
    for z, p in zip((4, 9), out):
        assert p.origin == "fob" and p.label == 5 and p.slice_index == z
        assert p.bg.shape == (10, 2) and isinstance(p.evidence, float)
    described = gen.describe()
    assert described["kind"] == "fob" and described["config"]["name"] == "tiny"


@pytest.mark.usefixtures("without_shipped_model")
def test_fob_default_checkpoint_missing_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="fob-compact.pt"):
        make_generator("fob", checkpoint="default", device="cpu")


def test_intensity_band_and_overlap_errors_name_the_inputs():
    from napari_fob.core.intensity import band_overlap, intensity_band

    img = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    m = np.zeros((10, 10), bool)
    with pytest.raises(ValueError, match="intensity_band: expected a non-empty mask"):
        intensity_band(img, m)
    m[4:6] = True
    lo, hi = intensity_band(img, m, tolerance=0.0)
    assert 0.40 <= lo < hi <= 0.60
    assert band_overlap(img, m, (lo, hi)) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="band_overlap: query slice shape"):
        band_overlap(img[:5], m, (lo, hi))


def test_a_committed_mask_cannot_vouch_for_itself():
    # Chain mode: a mask that leaked into other tissue must not carry the walk on. Its
    # evidence is measured with the painted support's intensity band, not its own.
    organ, other = 0.8, 0.3
    img = np.full((64, 64), 0.1, np.float32)
    img[20:44, 20:44] = organ
    img[20:44, 44:60] = other  # a neighbouring tissue the segmenter leaked into
    painted = np.zeros((64, 64), bool)
    painted[22:42, 22:42] = True
    leaked = np.zeros((64, 64), bool)
    leaked[22:42, 40:58] = True  # mostly the other tissue
    query = img.copy()
    evidence = []
    for committed, expect_low in ((False, False), (True, True)):
        gen = MaskRingGenerator()
        gen.set_support(img, painted, slice_index=10)
        gen.set_support(img, leaked, slice_index=12, committed=committed)
        (p,) = gen.predict([query], slice_indices=[13])
        assert p.meta["support_slice"] == 12
        band = p.meta["confidence_features"]["band"]
        assert (band < 0.5) == expect_low, (committed, band)
        evidence.append(p.evidence)
    assert evidence[0] > evidence[1]
