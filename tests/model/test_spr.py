"""SPR (Eqs. 8-15) against direct computations."""

from __future__ import annotations

import math

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


def test_alpha_is_clamped_and_mixes_the_graphs_eq8_eq10():
    torch.manual_seed(0)
    m = make_spr()
    p = torch.randn(1, 5, 6)
    a_ada = torch.softmax(m.w_theta(p) @ m.w_phi(p).transpose(1, 2) / math.sqrt(6), -1)
    torch.testing.assert_close(m.adjacency(p), 0.5 * a_ada + 0.5 * m.ring)
    with torch.no_grad():
        m.alpha_raw.fill_(1.7)
    assert m.alpha.item() == 1.0
    torch.testing.assert_close(m.adjacency(p), a_ada)
    with torch.no_grad():
        m.alpha_raw.fill_(-0.3)
    assert m.alpha.item() == 0.0
    torch.testing.assert_close(m.adjacency(p), m.ring.expand(1, 5, 5))


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
