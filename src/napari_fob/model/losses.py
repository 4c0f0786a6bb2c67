"""FoB's training losses (Sec. 3.6) as pure functions of a `FobOutput` and the episode targets.

Imports torch only. Every term is averaged over the batch. Targets: ``query_ring`` (B, Np, 2)
float (row, col) grid pixels in ring order, ``query_mask`` and ``support_mask`` (B, S, S) {0, 1}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .bppc import gaussian_maps, inner_band, mask_prototype, sample_points
from .config import FobConfig
from .fob import FobOutput


def heatmap_targets(ring: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Ground-truth heatmaps H of Eq. 17: (B, Np, 2) -> (B, Np, S, S), peak 1 at each point."""
    return gaussian_maps(ring, (size, size), sigma)


def heat_loss(
    proposals: torch.Tensor, heatmaps: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Eq. 17: ``(||Phi - H||_F^2 + ||H_hat - H||_F^2) / (Np H W)``; all (B, Np, S, S)."""
    return F.mse_loss(proposals, target) + F.mse_loss(heatmaps, target)


def heat_loss_softmax_ce(
    proposals: torch.Tensor, heatmaps: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Per-channel spatial cross entropy, an option to Eq. 17 (``heat_loss="softmax-ce"``).

    Each channel's logits (B, Np, S, S) are a distribution over the S*S positions (softmax) and
    the Gaussian target, normalised to sum 1, is its label. Unlike the MSE of Eq. 17, an
    all-zero prediction is not a cheap minimum, so the heatmaps learn to peak from random
    weights on a CPU budget (see docs/method.md). Same inputs and scale as `heat_loss`.
    """
    t = target.flatten(2)  # (B, Np, S*S)
    t = t / t.sum(dim=-1, keepdim=True).clamp_min(1e-12)

    def ce(logits: torch.Tensor) -> torch.Tensor:
        return -(t * F.log_softmax(logits.flatten(2), dim=-1)).sum(dim=-1).mean()

    return ce(proposals) + ce(heatmaps)


def coor_loss(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 18: ``mean_i ||mu'_i - mu_q^i||_2^2`` on (B, Np, 2) grid-pixel coordinates."""
    return ((points - target) ** 2).sum(dim=-1).mean()


def band_loss(
    points: torch.Tensor, signed_distance: torch.Tensor, r: float, eps: float
) -> torch.Tensor:
    """L_band (this project's option): how far each point lies from the ring band
    ``r <= d <= r + eps`` of the query mask -- the band `geometry.ring_band` draws the ring
    from, ``r < d <= r + eps`` -- measured along its signed distance map d (positive outside
    the mask, grid pixels), bilinearly sampled at the (B, Np, 2) points:
    ``mean relu(r - d) + relu(d - r - eps)``. A point inside the structure costs its depth
    plus r; any position on the band costs nothing (unlike L_coor, which asks for ring point k
    exactly). Shapes: (B, Np, 2), (B, S, S) -> scalar."""
    size = signed_distance.shape[-1]
    d = sample_points(signed_distance[:, None].float(), points.float(), grid_size=size)[..., 0]
    return (F.relu(r - d) + F.relu(d - r - eps)).mean()


def fore_loss(fg_logits: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 19: pixel-mean binary cross entropy of C = sigmoid(logits) against M_q, (B, S, S)."""
    return F.binary_cross_entropy_with_logits(fg_logits, query_mask.to(fg_logits.dtype))


def rac_positive(support_features: torch.Tensor, support_mask: torch.Tensor, width: int):
    """The RAC positive p_p: mean support feature over the outermost ``width`` grid pixels
    inside the support mask (`bppc.inner_band`): (B,C,h,w), (B,S,S) -> (B,C)."""
    return mask_prototype(support_features, inner_band(support_mask, width))


def rac_infonce(
    fg_prototype: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float
) -> torch.Tensor:
    """Eq. 16 as InfoNCE: ``-log(e^{s_p/tau} / (e^{s_p/tau} + sum_i e^{s_i/tau}))``.

    ``s_p = cos(p_fg, p_p)``, ``s_i = cos(p_fg, p_b^i)``. The positive is in the denominator,
    as in InfoNCE [30]; Eq. 16 as printed sums the negatives only (see docs/method.md).
    Shapes: (B, C), (B, C), (B, Np, C) -> scalar.
    """
    s_pos = F.cosine_similarity(fg_prototype, positive, dim=-1, eps=1e-6)  # (B,)
    s_neg = F.cosine_similarity(fg_prototype[:, None], negatives, dim=-1, eps=1e-6)  # (B, Np)
    logits = torch.cat([s_pos[:, None], s_neg], dim=1) / tau  # (B, 1 + Np)
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def rac_hinge(fg_prototype: torch.Tensor, negatives: torch.Tensor, margin: float = -0.5):
    """The public code's RAC: ``mean_i relu(cos(p_fg, p_b^i) - margin)`` (no positive)."""
    cos = F.cosine_similarity(fg_prototype[:, None], negatives, dim=-1, eps=1e-6)  # (B, Np)
    return F.relu(cos - margin).mean()


HEAT_LOSS = {"mse": heat_loss, "softmax-ce": heat_loss_softmax_ce}


def fob_losses(
    out: FobOutput,
    *,
    query_ring: torch.Tensor,
    query_mask: torch.Tensor,
    support_mask: torch.Tensor,
    config: FobConfig,
    query_sdf: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All four losses and ``total = rac + lambda_heat * heat + lambda_coor * coor + fore``.

    ``coor`` is taken on the last SPR iteration (P'_b, as Eq. 18) with gradient through SPR.
    With ``config.lambda_band > 0``, ``band`` (`band_loss` on the same points, from
    ``query_sdf`` (B, S, S), the query mask's signed distance) is added to the total.
    Returns a dict of scalar tensors with keys "total", "rac", "heat", "coor", "fore".
    """
    # in float32 even under autocast: targets and coordinates must not be rounded to bf16
    size = out.heatmaps.shape[-1]
    ring = query_ring.float()
    target = heatmap_targets(ring, size, config.sigma)
    if config.rac == "infonce":
        positive = rac_positive(out.support_features, support_mask, config.rac_band)
        rac = rac_infonce(out.fg_prototype, positive, out.bg_prototypes, config.tau)
    else:
        rac = rac_hinge(out.fg_prototype, out.bg_prototypes)
    terms = {
        "rac": rac,
        "heat": HEAT_LOSS[config.heat_loss](out.proposals.float(), out.heatmaps.float(), target),
        "coor": coor_loss(out.points.float(), ring),
        "fore": fore_loss(out.fg_logits.float(), query_mask),
    }
    terms["total"] = (
        terms["rac"]
        + config.lambda_heat * terms["heat"]
        + config.lambda_coor * terms["coor"]
        + terms["fore"]
    )
    if config.lambda_band > 0:
        if query_sdf is None:
            raise ValueError("fob_losses: lambda_band > 0 needs query_sdf")
        r = float(config.ring_r)
        terms["band"] = band_loss(out.points.float(), query_sdf, r, float(config.ring_eps))
        terms["total"] = terms["total"] + config.lambda_band * terms["band"]
    return terms
