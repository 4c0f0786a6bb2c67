"""Where the location prior sits in training (`TrainSettings.prior_centre`).

At inference the product centres FoB's location prior on the support mask carried to the query
by registration, which drifts from the true ring by a few pixels. `drifted_ring` makes such a
ring from an episode's true query ring, so that SPR is trained on the seeds it will refine.
Torch; used by `training.trainer.episode_log_prior`.
"""

from __future__ import annotations

import torch


def drifted_ring(ring: torch.Tensor, drift: float) -> torch.Tensor:
    """(B, Np, 2) rings moved as a registered ring drifts from the truth: per ring a shift of
    N(0, drift^2 / 2) per axis and a scale about its centroid of 1 + N(0, (0.04 drift)^2),
    then per point N(0, (drift / 4)^2) per axis (torch's global generator, seeded by the run);
    drift 0 keeps the true ring."""
    b = ring.shape[0]
    centroid = ring.mean(dim=1, keepdim=True)
    shift = torch.randn(b, 1, 2, device=ring.device) * (drift / 2**0.5)
    scale = 1.0 + 0.04 * drift * torch.randn(b, 1, 1, device=ring.device)
    jitter = torch.randn_like(ring) * (drift / 4.0)
    return centroid + (ring - centroid) * scale + shift + jitter
