"""FoB losses (Eqs. 16-19) against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_fob.model import losses
from napari_fob.model.config import get_config
from napari_fob.model.fob import build_fob


def test_infonce_equals_a_hand_computation():
    fg = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[1.0, 1.0]])  # cos = 1/sqrt(2)
    neg = torch.tensor([[[0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]]])  # cos = 0, -1, 1
    tau = 0.1
    e = [math.exp(c / tau) for c in (1 / math.sqrt(2), 0.0, -1.0, 1.0)]
    want = -math.log(e[0] / sum(e))
    got = losses.rac_infonce(fg, pos, neg, tau)
    assert abs(got.item() - want) < 1e-4


def test_hinge_rac():
    fg = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])  # cos 0 -> 0.5, cos -1 -> 0
    assert abs(losses.rac_hinge(fg, neg).item() - 0.25) < 1e-6


def test_heat_coor_fore_formulas():
    torch.manual_seed(0)
    phi, hhat, h = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    want = (((phi - h) ** 2).sum() + ((hhat - h) ** 2).sum()) / (2 * 3 * 4 * 5)
    torch.testing.assert_close(losses.heat_loss(phi, hhat, h), want)
    p, t = torch.rand(2, 3, 2) * 10, torch.rand(2, 3, 2) * 10
    want = sum(((p[b, i] - t[b, i]) ** 2).sum() for b in range(2) for i in range(3)) / 6
    torch.testing.assert_close(losses.coor_loss(p, t), want)
    logits, m = torch.randn(2, 4, 4), (torch.rand(2, 4, 4) > 0.5).float()
    c = torch.sigmoid(logits)
    want = -(m * torch.log(c) + (1 - m) * torch.log(1 - c)).mean()
    torch.testing.assert_close(losses.fore_loss(logits, m), want)


def test_softmax_ce_heat_equals_a_hand_computation():
    torch.manual_seed(1)
    phi, hhat = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3)
    h = torch.rand(1, 2, 3, 3)
    want = 0.0
    for logits in (phi, hhat):
        for k in range(2):
            q = h[0, k].flatten() / h[0, k].sum()
            logp = logits[0, k].flatten() - torch.logsumexp(logits[0, k].flatten(), 0)
            want += -(q * logp).sum() / 2  # mean over the Np = 2 channels
    torch.testing.assert_close(losses.heat_loss_softmax_ce(phi, hhat, h), want)


def test_softmax_ce_heat_is_an_option_that_reaches_bcm(tiny_batch, run_episode):
    with pytest.raises(ValueError, match="heat_loss"):
        get_config("tiny", heat_loss="l1")
    cfg = get_config("tiny", heat_loss="softmax-ce", lambda_heat=1.0)
    model = build_fob(cfg)
    b = tiny_batch
    out, terms = run_episode(model, b, cfg)
    target = losses.heatmap_targets(b["query_ring"].float(), out.heatmaps.shape[-1], cfg.sigma)
    want = losses.heat_loss_softmax_ce(out.proposals, out.heatmaps, target)
    torch.testing.assert_close(terms["heat"], want)
    terms["total"].backward()
    grads = [p.grad for n, p in model.named_parameters() if n.startswith("bcm.head")]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_heatmap_targets_peak_at_the_ring():
    ring = torch.tensor([[[5.0, 7.0], [0.0, 15.0]]])
    t = losses.heatmap_targets(ring, 16, 2.0)
    assert t.shape == (1, 2, 16, 16) and t[0, 0, 5, 7] == 1 and t[0, 1, 0, 15] == 1


@pytest.mark.parametrize("rac", ["infonce", "hinge"])
def test_fob_losses_total(tiny_batch, rac, run_episode):
    cfg = get_config("tiny", rac=rac)
    model = build_fob(cfg)
    b = tiny_batch
    out, terms = run_episode(model, b, cfg)
    assert set(terms) == {"total", "rac", "heat", "coor", "fore"}
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    want = terms["rac"] + 1e3 * terms["heat"] + 1e-4 * terms["coor"] + terms["fore"]
    torch.testing.assert_close(terms["total"], want)
    pos = losses.rac_positive(out.support_features, b["support_mask"], cfg.rac_band)
    if rac == "infonce":
        torch.testing.assert_close(
            terms["rac"], losses.rac_infonce(out.fg_prototype, pos, out.bg_prototypes, 0.1)
        )


def test_coordinates_and_losses_stay_float32_under_bf16_autocast(tiny_batch):
    torch.manual_seed(0)
    cfg = get_config("tiny")
    model = build_fob(cfg)
    b = tiny_batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
        terms = losses.fob_losses(
            out,
            query_ring=b["query_ring"] + 0.25,  # sub-pixel targets bf16 could not hold at 40+
            query_mask=b["query_mask"],
            support_mask=b["support_mask"],
            config=cfg,
        )
    assert out.coarse_points.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in out.refined_points)
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())
    want = losses.coor_loss(out.points.float(), b["query_ring"] + 0.25)
    torch.testing.assert_close(terms["coor"], want)
    terms["total"].backward()
    assert model.spr.alpha_logit.grad is not None


def test_location_prior_seeds_spr_in_training(tiny_batch):
    from napari_fob.model.fob import location_log_prior, prior_widths

    with pytest.raises(ValueError, match="location_prior: expected"):
        get_config("tiny", location_prior=(0.0, 0.5))
    cfg = get_config("tiny", location_prior=[1, 0.5])
    assert cfg.location_prior == (1.0, 0.5)  # a YAML list becomes a tuple
    torch.manual_seed(0)
    model = build_fob(cfg)
    b = tiny_batch
    # a sharp prior centred on the true query ring pins the coarse points (SPR's seeds) to it
    sharp = location_log_prior(b["query_ring"], torch.tensor([0.2]), cfg.grid_size)
    args = (b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
    out = model(*args, sharp)
    torch.testing.assert_close(out.coarse_points, b["query_ring"].round())
    kw = dict(
        query_ring=b["query_ring"], query_mask=b["query_mask"], support_mask=b["support_mask"]
    )
    seeded = losses.fob_losses(out, config=cfg, **kw)
    free = losses.fob_losses(model(*args), config=cfg, **kw)
    torch.testing.assert_close(seeded["heat"], free["heat"])  # the maps' loss is the paper's
    assert float(seeded["coor"]) < float(free["coor"])
    seeded["coor"].backward()  # L_coor trains SPR on the prior-seeded points
    grads = [p.grad for p in model.spr.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    # widths: (a + b |dz|) at a 256 grid, scaled to the model grid; NaN (cross-volume) -> flat
    w = prior_widths((1.0, 0.5), torch.tensor([0.0, -4.0, float("nan")]), 64)
    assert w[:2].tolist() == [0.25, 0.75] and w[2] == float("inf")


def test_band_loss_is_zero_on_the_band_and_grows_inside():
    from napari_fob.geometry import signed_distance

    mask = np.zeros((32, 32), bool)
    mask[12:20, 12:20] = True
    sdf = torch.from_numpy(signed_distance(mask))[None]
    r, eps = 6.0, 2.0
    on_band = torch.tensor([[[16.0, 19.5 + 7.0]]])  # 7 px outside the right edge: (6, 8]
    inside = torch.tensor([[[16.0, 16.0]]])  # the middle of the square, ~4 px deep
    far = torch.tensor([[[16.0, 31.0]]])  # ~11.5 px outside
    assert float(losses.band_loss(on_band, sdf, r, eps)) == pytest.approx(0.0, abs=0.3)
    assert float(losses.band_loss(inside, sdf, r, eps)) > r + 3
    assert float(losses.band_loss(far, sdf, r, eps)) == pytest.approx(11.5 - r - eps, abs=0.6)
    pts = inside.clone().requires_grad_(True)
    losses.band_loss(pts, sdf, r, eps).backward()
    assert pts.grad.abs().sum() > 0  # differentiable in the points (SPR learns from it)


def test_band_loss_is_lowest_on_the_band_the_ring_is_drawn_from():
    # L_band is zero exactly where geometry.ring_band (and so every drawn ring point) lies,
    # (r, r + eps], and positive closer in or farther out (issue 15: it used [r - eps, r])
    from napari_fob.geometry import ring_band, ring_points, signed_distance

    mask = np.zeros((48, 48), bool)
    mask[16:30, 14:34] = True
    r, eps = 6.0, 2.0
    sdf = torch.from_numpy(signed_distance(mask))[None]
    rows, cols = np.mgrid[0:48, 0:48]
    pixels = torch.tensor(np.stack([rows, cols], -1).reshape(1, -1, 2), dtype=torch.float32)

    def per_pixel(points):
        return np.array([float(losses.band_loss(p[None, None], sdf, r, eps)) for p in points[0]])

    cost = per_pixel(pixels).reshape(48, 48)
    band = ring_band(mask, r=r, eps=eps)
    assert np.all(cost[band] < 1e-5)
    d = signed_distance(mask)
    assert np.all(cost[(d < r - 0.01) | (d > r + eps + 0.01)] > 0)
    ring = torch.tensor(ring_points(mask, 10, r=r, eps=eps), dtype=torch.float32)[None]
    assert float(losses.band_loss(ring, sdf, r, eps)) < 1e-5  # the drawn ring costs nothing
    inner = torch.tensor(ring_points(mask, 10, r=r - eps, eps=eps), dtype=torch.float32)[None]
    assert float(losses.band_loss(inner, sdf, r, eps)) > 0.5  # the band just inside does


def test_band_term_enters_the_total_only_when_weighted(tiny_batch, run_episode):
    from napari_fob.geometry import signed_distance

    cfg = get_config("tiny", lambda_band=0.5)
    model = build_fob(cfg)
    b = tiny_batch
    sdf = torch.stack([torch.from_numpy(signed_distance(m.numpy() > 0)) for m in b["query_mask"]])
    out = model(b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
    kw = dict(
        query_ring=b["query_ring"], query_mask=b["query_mask"], support_mask=b["support_mask"]
    )
    terms = losses.fob_losses(out, config=cfg, query_sdf=sdf, **kw)
    plain = losses.fob_losses(out, config=get_config("tiny"), **kw)
    assert "band" in terms and "band" not in plain
    torch.testing.assert_close(terms["total"], plain["total"] + 0.5 * terms["band"])
    with pytest.raises(ValueError, match="query_sdf"):
        losses.fob_losses(out, config=cfg, **kw)
    with pytest.raises(ValueError, match="lambda_band"):
        get_config("tiny", lambda_band=-1.0)
