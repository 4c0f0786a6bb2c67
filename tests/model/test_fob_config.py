"""FobConfig: named configs, overrides, dict round trip, validation."""

from __future__ import annotations

import pytest

from napari_fob.model.config import CONFIGS, FobConfig, get_config


def test_named_configs_hold_the_paper_values():
    paper = get_config("paper")
    assert (paper.encoder, paper.grid_size, paper.feature_channels) == (
        "resnet101-deeplab",
        256,
        512,
    )
    assert (paper.n_bg, paper.n_fg, paper.ring_r, paper.ring_eps, paper.sigma) == (
        10,
        10,
        15,
        2,
        4.0,
    )
    assert (paper.spr_offsets, paper.spr_iters, paper.tau, paper.fg_threshold) == (8, 3, 0.1, 0.9)
    assert (paper.lambda_heat, paper.lambda_coor, paper.rac) == (1e3, 1e-4, "infonce")
    assert set(CONFIGS) == {"paper", "compact", "tiny", "official"}
    assert all(c.encoder_weights is None for c in CONFIGS.values())  # all build offline


def test_overrides_and_round_trip():
    cfg = get_config("tiny", sigma=3.0, rac="hinge")
    assert cfg.sigma == 3.0 and cfg.rac == "hinge" and cfg.name == "tiny"
    assert FobConfig.from_dict(cfg.to_dict()) == cfg
    assert get_config(cfg) is cfg


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_config("huge"),
        lambda: get_config("tiny", sigmaa=3.0),
        lambda: FobConfig.from_dict({**FobConfig().to_dict(), "extra": 1}),
        lambda: FobConfig(encoder="vgg"),
        lambda: FobConfig(rac="triplet"),
        lambda: FobConfig(feature_channels=15, bcm_heads=2),
        lambda: FobConfig(n_bg=2),
        lambda: FobConfig(ring_eps=7, ring_r=6),
        lambda: FobConfig(spr_iters=0),
        lambda: FobConfig(fg_threshold=1.5),
    ],
)
def test_bad_values_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
