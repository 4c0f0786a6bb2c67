"""Synthetic support/query episodes for the FoB model tests (tiny grid, seeded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_fob import geometry


def ellipse(shape: tuple[int, int], centre, radii) -> np.ndarray:
    """(H, W) bool filled ellipse with centre (row, col) and radii (row, col)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return ((rr - centre[0]) / radii[0]) ** 2 + ((cc - centre[1]) / radii[1]) ** 2 <= 1.0


def textured_image(mask: np.ndarray, seed: int) -> np.ndarray:
    """(H, W) float32 in [0, 1]: striped bright organ on a darker speckled background."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: mask.shape[0], : mask.shape[1]]
    img = 0.25 + 0.05 * rng.standard_normal(mask.shape)
    organ = 0.7 + 0.15 * np.sin((rr + cc) / 2.0)
    img = np.where(mask, organ, img)
    return np.clip(img, 0, 1).astype(np.float32)


def make_pair(size: int = 64, seed: int = 0, *, r: int = 6, eps: int = 2, n: int = 10) -> dict:
    """Support and query ellipses of different size and position, as numpy arrays."""
    s = size / 64
    sup_mask = ellipse((size, size), (30 * s, 28 * s), (12 * s, 9 * s))
    qry_mask = ellipse((size, size), (34 * s, 36 * s), (10 * s, 13 * s))
    return {
        "support_image": textured_image(sup_mask, seed),
        "support_mask": sup_mask,
        "support_ring": geometry.ring_points(sup_mask, n, r=r, eps=eps),
        "query_image": textured_image(qry_mask, seed + 1),
        "query_mask": qry_mask,
        "query_ring": geometry.ring_points(qry_mask, n, r=r, eps=eps),
    }


def to_batch(pair: dict, batch: int = 1) -> dict[str, torch.Tensor]:
    """The pair as model tensors: images (B,1,S,S), masks (B,S,S) float, rings (B,Np,2)."""
    out = {}
    for key, value in pair.items():
        t = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if key.endswith("image"):
            t = t[None]
        out[key] = t[None].repeat(batch, *[1] * t.ndim)
    return out


def episode_losses(model, batch: dict[str, torch.Tensor], config) -> tuple:
    """One forward pass on `batch` and its `fob_losses`: (FobOutput, dict of loss terms)."""
    from napari_fob.model.losses import fob_losses

    b = batch
    out = model(b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
    terms = fob_losses(
        out,
        query_ring=b["query_ring"],
        query_mask=b["query_mask"],
        support_mask=b["support_mask"],
        config=config,
    )
    return out, terms


@pytest.fixture
def run_episode():
    """`episode_losses(model, batch, config)` -> (FobOutput, loss terms)."""
    return episode_losses


@pytest.fixture
def tiny_batch() -> dict[str, torch.Tensor]:
    """A seeded tiny-grid (64) episode, batch 2."""
    torch.manual_seed(0)
    return to_batch(make_pair(64, seed=0), batch=2)


@pytest.fixture
def pair_factory():
    """`make_pair(size, seed, *, r, eps, n)` -> dict of numpy arrays."""
    return make_pair


@pytest.fixture
def batch_factory():
    """`to_batch(pair, batch)` -> dict of tensors."""
    return to_batch
