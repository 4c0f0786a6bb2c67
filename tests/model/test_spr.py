"""SPR (Eqs. 8-15) against direct computations."""

from __future__ import annotations

import math

import pytest
import torch

from napari_fob.model import spr as spr_mod
from napari_fob.model.bppc import point_prototypes


def make_spr(**kw) -> spr_mod.SPR:
    args = dict(channels=6, n_points=5, offsets=4, iters=2, hidden=8, radius=2.0) | kw
    return spr_mod.SPR(**args)


def test_ring_adjacency_eq9():
    a = spr_mod.ring_adjacency(6)
    assert torch.equal(a, a.T) and a.diagonal().sum() == 0
    assert torch.equal(a.sum(1), torch.full((6,), 2.0))
    for i in range(6):
        assert a[i, (i + 1) % 6] == 1 and a[i, (i - 1) % 6] == 1


def test_alpha_is_a_sigmoid_and_mixes_the_graphs_eq8_eq10():
    torch.manual_seed(0)
    m = make_spr()
    p = torch.randn(1, 5, 6)
    a_ada = torch.softmax(m.w_theta(p) @ m.w_phi(p).transpose(1, 2) / math.sqrt(6), -1)
    torch.testing.assert_close(m.adjacency(p), 0.5 * a_ada + 0.5 * m.ring)
    with torch.no_grad():
        m.alpha_logit.fill_(30.0)
    assert m.alpha.item() == pytest.approx(1.0)
    torch.testing.assert_close(m.adjacency(p), a_ada)
    with torch.no_grad():
        m.alpha_logit.fill_(-30.0)
    assert m.alpha.item() == pytest.approx(0.0)
    torch.testing.assert_close(m.adjacency(p), m.ring.expand(1, 5, 5))


def test_alpha_has_a_gradient_at_the_shipped_value():
    # issue 15: alpha = clamp(alpha_raw, 0, 1) with the shipped alpha_raw = 1.002 gave alpha = 1
    # and a zero gradient, so A_ring could never come back
    from napari_fob.model.spr import ALPHA_EDGE, alpha_logit_from_raw, upgrade_state_dict

    torch.manual_seed(0)
    m = make_spr()
    old = {"spr." + k: v for k, v in m.state_dict().items() if k != "alpha_logit"}
    old["spr.alpha_raw"] = torch.tensor(1.0021)  # as stored in the shipped checkpoint
    new = upgrade_state_dict(old)
    assert "spr.alpha_raw" not in new and list(new)[-1] == "spr.alpha_logit"
    m.load_state_dict({k.removeprefix("spr."): v for k, v in new.items()}, strict=True)
    assert m.alpha.item() == pytest.approx(1.0 - ALPHA_EDGE, abs=1e-7)
    p = torch.randn(1, 5, 6)
    m.adjacency(p).mul(torch.randn(1, 5, 5)).sum().backward()
    assert m.alpha_logit.grad is not None and m.alpha_logit.grad.abs().item() > 0
    # inside (0, 1) the old value maps to the same alpha; at or past an end, ALPHA_EDGE from it
    for raw, want in ((0.3, 0.3), (-0.5, ALPHA_EDGE), (1.7, 1 - ALPHA_EDGE)):
        got = torch.sigmoid(alpha_logit_from_raw(torch.tensor(raw))).item()
        assert got == pytest.approx(want, abs=1e-6)


def test_gcn_eq11():
    torch.manual_seed(1)
    m = make_spr()
    a, q = torch.rand(1, 5, 5), torch.randn(1, 5, 6)
    d = torch.diag(a[0].sum(1) ** -0.5)
    want = torch.relu(d @ a[0] @ d @ m.w_g(q)[0])
    torch.testing.assert_close(m.propagate(a, q)[0], want)


def test_deformable_step_eq12_to_eq15():
    torch.manual_seed(2)
    m = make_spr(iters=1)
    offsets = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [0.0, -0.5]])  # k=4 (row, col)
    with torch.no_grad():
        m.phi[-1].weight.zero_()
        m.phi[-1].bias.copy_((offsets / m.radius - m.pattern).flatten())  # radius*(pat+raw)=off
        m.w_att.weight.normal_()
    feats = torch.randn(1, 6, 8, 8)
    pts = torch.tensor([[[10.0, 12.0], [3.0, 4.0], [20.0, 20.0], [30.0, 1.0], [16.0, 16.0]]])
    (mu,) = m(torch.randn(1, 5, 6), feats, pts, grid_size=32, sigma=4.0)
    q = point_prototypes(feats, pts, grid_size=32, sigma=4.0)
    w = torch.softmax(m.w_att(q), -1)  # (1, 5, 4)
    want = pts + (w[..., None] * offsets).sum(2)  # Eq. 14
    torch.testing.assert_close(mu, want, rtol=1e-5, atol=1e-5)


def test_refinement_starts_near_identity():
    torch.manual_seed(3)
    m = make_spr(iters=3)
    pts = torch.rand(2, 5, 2) * 32
    out = m(torch.randn(2, 5, 6), torch.randn(2, 6, 8, 8), pts, grid_size=32, sigma=4.0)
    assert len(out) == 3 and out[-1].shape == (2, 5, 2)
    assert (out[-1] - pts).abs().max() < 0.1
