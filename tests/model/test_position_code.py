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
    path = save_checkpoint(tmp_path / "pc.pt", model, step=0)
    again = load_fob(path)
    assert again.config.position_code and "position_proj.weight" in again.state_dict()
