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
