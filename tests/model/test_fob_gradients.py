"""Each loss reaches the parts it must train (the public code's SPR never trained)."""

from __future__ import annotations

import pytest
import torch

from napari_fob.model.config import get_config
from napari_fob.model.fob import build_fob


@pytest.fixture
def run(run_episode):
    """`run(batch, seed=0)` -> (fresh tiny model, its loss terms on the batch)."""

    def go(batch, seed: int = 0):
        torch.manual_seed(seed)
        cfg = get_config("tiny")
        model = build_fob(cfg)
        _, terms = run_episode(model, batch, cfg)
        return model, terms

    return go


def grads_of(model, loss, prefix: str) -> dict[str, float]:
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {
        name: 0.0 if p.grad is None else float(p.grad.abs().sum())
        for name, p in model.named_parameters()
        if name.startswith(prefix)
    }


def test_coor_reaches_every_spr_parameter_and_alpha(tiny_batch, run):
    model, terms = run(tiny_batch)
    g = grads_of(model, terms["coor"], "spr.")
    assert set(g) >= {"spr.alpha_logit", "spr.w_att.weight", "spr.w_g.weight", "spr.w_theta.weight"}
    assert all(v > 0 for v in g.values()), g
    # and, through the bilinear samples of Eq. 15, the encoder
    assert sum(grads_of(model, terms["coor"], "encoder.").values()) > 0


def test_coor_step_moves_spr_and_lowers_coor(tiny_batch, run):
    model, terms = run(tiny_batch)
    before = {k: v.detach().clone() for k, v in model.spr.state_dict().items()}
    opt = torch.optim.SGD(model.spr.parameters(), lr=1e-3)
    opt.zero_grad()
    terms["coor"].backward()
    opt.step()
    moved = [k for k, v in model.spr.state_dict().items() if not torch.equal(v, before[k])]
    assert {"alpha_logit", "w_att.weight", "phi.2.weight", "w_g.weight"} <= set(moved)
    b = tiny_batch
    out = model(b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
    new = ((out.points - b["query_ring"]) ** 2).sum(-1).mean()
    assert new < terms["coor"].detach()


def test_heat_reaches_bcm(tiny_batch, run):
    model, terms = run(tiny_batch)
    g = grads_of(model, terms["heat"], "bcm.")
    for part in (
        "proposals.w_s",
        "proposals.w_q",
        "proposals.attn",
        "layer.qkv",
        "layer.bias_conv",
        "layer.ffn",
        "head.net",
    ):
        assert sum(v for k, v in g.items() if k.startswith(f"bcm.{part}")) > 0, part
    assert sum(grads_of(model, terms["heat"], "encoder.").values()) > 0


@pytest.mark.parametrize("term", ["rac", "fore"])
def test_rac_and_fore_reach_the_encoder(tiny_batch, term, run):
    model, terms = run(tiny_batch)
    g = grads_of(model, terms[term], "encoder.")
    assert g["encoder.reduce.weight"] > 0 and g["encoder.backbone.0.weight"] > 0
