"""The tiny model overfits one synthetic episode: the losses, as wired, can train FoB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from napari_fob import geometry
from napari_fob.model.config import get_config
from napari_fob.model.fob import build_fob


@pytest.fixture
def one_thread():
    # Two intra-op threads on a 2-core machine shared with other jobs thrash (50x slower).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_tiny_model_overfits_a_synthetic_pair(pair_factory, batch_factory, run_episode, one_thread):
    torch.manual_seed(0)
    cfg = get_config("tiny")
    pair = pair_factory(64, seed=0, r=cfg.ring_r, eps=cfg.ring_eps)
    b = batch_factory(pair, 1)
    band = geometry.ring_band(pair["query_mask"], r=cfg.ring_r, eps=cfg.ring_eps)
    to_band = ndi.distance_transform_edt(~band)  # grid px to the nearest true-ring pixel
    model = build_fob(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def episode():
        return run_episode(model, b, cfg)

    first = None
    for _ in range(200):
        _, terms = episode()
        first = float(terms["total"]) if first is None else first
        opt.zero_grad()
        terms["total"].backward()
        opt.step()

    model.eval()
    with torch.no_grad():
        out, terms = episode()
    assert float(terms["total"]) < first / 30, (first, float(terms["total"]))
    pts = np.clip(np.rint(out.points[0].numpy()), 0, 63).astype(int)
    assert to_band[pts[:, 0], pts[:, 1]].mean() < 2.0
    # channel k lands at ring position k (not just anywhere on the ring)
    assert np.linalg.norm(out.points[0].numpy() - pair["query_ring"], axis=1).mean() < 3.0
    fg = out.fg_prob[0].numpy() > 0.5
    iou = (fg & pair["query_mask"]).sum() / (fg | pair["query_mask"]).sum()
    assert iou > 0.7
