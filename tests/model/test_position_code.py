"""The position code of the features (FobConfig.position_code): fixed, bounded, local."""

from __future__ import annotations

import torch

from napari_fob.model import build_fob
from napari_fob.model.fob import position_code


def test_the_code_is_bounded_and_its_dot_product_peaks_at_zero_displacement():
    code = position_code(64, 32)[0]  # (C, h, w)
    assert code.shape == (64, 32, 32) and code.abs().max() <= 1.0
    flat = code.flatten(1)  # (C, h*w)
    centre = 16 * 32 + 16
    similarity = (flat[:, centre : centre + 1] * flat).sum(0).view(32, 32)
    peak = divmod(int(similarity.argmax()), 32)
    assert peak == (16, 16)
    assert similarity[16, 16] > similarity[16, 20] > similarity[16, 31]  # falls off with distance


def test_channels_beyond_a_multiple_of_four_stay_zero():
    code = position_code(18, 8)
    assert code.shape == (1, 18, 8, 8) and torch.count_nonzero(code[0, 16:]) == 0


def test_a_model_with_the_code_trains_its_projection_and_round_trips(tmp_path):
    from napari_fob.model.checkpoint import load_fob, save_checkpoint

    torch.manual_seed(0)
    model = build_fob("tiny", position_code=True)
    images = torch.rand(1, 1, 64, 64)
    (model.encode(images) ** 2).sum().backward()
    grad = model.position_proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # learns from 0, not stuck there
    with torch.no_grad():
        model.position_proj.weight.normal_(0.0, 0.05)
    path = save_checkpoint(tmp_path / "pc.pt", model, step=0)
    again = load_fob(path)
    assert again.config.position_code
    model.eval()
    with torch.no_grad():
        assert torch.equal(again.encode(images), model.encode(images))
        assert not torch.equal(again.encode(images), again.encoder(images))  # the code is used


def test_the_code_is_refused_for_the_authors_network_and_must_be_a_bool():
    import pytest

    from napari_fob.model.config import get_config

    with pytest.raises(ValueError, match="authors' network has no position code"):
        get_config("official", position_code=True)
    with pytest.raises(ValueError, match="expected true or false"):
        get_config("tiny", position_code="no")
