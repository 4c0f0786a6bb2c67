"""Episode augmentation: seeded, image and mask stay aligned, ranges respected."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.training.augment import AugmentConfig, augment_pair


def disk(size: int = 64) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - 30) ** 2 + (cols - 34) ** 2 < 12**2


def test_same_generator_state_gives_the_same_augmentation():
    mask = disk()
    image = mask * 0.8 + 0.1
    a = augment_pair(image, mask, np.random.default_rng(5), AugmentConfig())
    b = augment_pair(image, mask, np.random.default_rng(5), AugmentConfig())
    c = augment_pair(image, mask, np.random.default_rng(6), AugmentConfig())
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_geometric_transforms_move_image_and_mask_together():
    mask = disk()
    image = mask.astype(np.float32)
    cfg = AugmentConfig(gamma=(1.0, 1.0), p_affine=1.0, p_elastic=1.0, rotate_deg=20)
    for seed in range(5):
        out, warped = augment_pair(image, mask, np.random.default_rng(seed), cfg)
        assert out.dtype == np.float32 and warped.dtype == bool
        assert not np.array_equal(warped, mask)
        agree = np.mean((out > 0.5) == warped)
        assert agree > 0.98


def test_gamma_alone_keeps_geometry_and_range():
    mask = disk()
    image = np.linspace(0, 1, mask.size, dtype=np.float32).reshape(mask.shape)
    cfg = AugmentConfig(p_affine=0.0, p_elastic=0.0, gamma=(2.0, 2.0))
    out, warped = augment_pair(image, mask, np.random.default_rng(0), cfg)
    assert np.array_equal(warped, mask)
    np.testing.assert_allclose(out, image**2, atol=1e-5)


def test_disabled_augmentation_is_identity_and_config_round_trips():
    mask = disk()
    image = mask * 0.5
    out, warped = augment_pair(image, mask, np.random.default_rng(0), AugmentConfig(enabled=False))
    assert np.array_equal(out, image) and np.array_equal(warped, mask)
    cfg = AugmentConfig(gamma=(0.7, 1.3))
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        AugmentConfig.from_dict({"gama": [1, 2]})


def test_intensity_look_is_shared_by_support_and_query_and_stays_in_range():
    from napari_fob.training.augment import intensity_pair

    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (64, 1))
    cfg = AugmentConfig(p_invert=1.0, p_window=1.0, bias=0.0, noise=0.0)
    s, q = intensity_pair(ramp, ramp.copy(), np.random.default_rng(3), cfg)
    assert np.array_equal(s, q)  # one scan, one look: the same window and inversion
    assert s.dtype == np.float32 and s.min() >= 0.0 and s.max() <= 1.0
    assert s[0, 0] == 1.0 and s[0, -1] == 0.0  # inverted: dark becomes bright
    cfg = AugmentConfig(bias=0.8, noise=0.0)
    s, q = intensity_pair(ramp, ramp.copy(), np.random.default_rng(4), cfg)
    assert np.array_equal(s, q) and not np.array_equal(s, ramp)  # one bias field for both
    cfg = AugmentConfig(bias=0.8, noise=0.1)
    s, q = intensity_pair(ramp, ramp.copy(), np.random.default_rng(4), cfg)
    assert not np.array_equal(s, q)  # noise is drawn per slice
    assert 0.0 <= s.min() and s.max() <= 1.0 and np.abs(s - ramp).mean() > 0.01


def test_intensity_look_off_draws_nothing():
    from napari_fob.training.augment import intensity_pair

    rng = np.random.default_rng(5)
    image = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    s, q = intensity_pair(image, image, rng, AugmentConfig())
    assert s is image and q is image
    assert rng.random() == np.random.default_rng(5).random()  # the generator was not consumed
