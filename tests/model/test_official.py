"""The authors' architecture (`official` config, `model.official`) and its conversion."""

from __future__ import annotations

import pytest

from napari_fob.model.config import CONFIGS, FobConfig, get_config


def test_official_config_is_their_architecture():
    cfg = CONFIGS["official"]
    assert (cfg.architecture, cfg.inference) == ("official", "official")
    assert (cfg.bcm_heads, cfg.bcm_ffn, cfg.feature_channels) == (1, 512, 512)  # expansion 1
    assert (cfg.ring_kernel, 2 * cfg.ring_r + 1, 2 * (cfg.ring_r + cfg.ring_eps) + 1) == (
        "square",
        15,
        21,
    )
    assert (cfg.spr_offsets, cfg.spr_iters, cfg.fg_threshold, cfg.grid_size) == (8, 3, 0.96, 256)
    assert FobConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "fields", [{"inference": "official"}, {"architecture": "official"}, {"inference": "x"}]
)
def test_official_inference_only_with_official_architecture(fields):
    with pytest.raises(ValueError, match="FobConfig"):
        get_config("tiny", **fields)
