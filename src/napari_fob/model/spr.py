"""Structure-guided Prompt Refinement (Sec. 3.5): graph propagation + deformable refinement.

Imports torch only. Points are ``(B, Np, 2)`` (row, col) in grid pixels. The whole module is
differentiable from the refined coordinates back to its parameters, alpha and the query
features: coordinates stay tensors, and feature sampling goes through `bppc.sample_points`
(grid_sample with correctly normalised coordinates).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bppc import point_prototypes, sample_points

#: How close to 0 or 1 an old checkpoint's clamped alpha is mapped (see `alpha_logit_from_raw`):
#: alpha = 1 - 1e-5 moves the adjacency of Eq. 10 by 1e-5 and keeps a gradient of ~1e-5.
ALPHA_EDGE = 1e-5
OLD_ALPHA_KEY, ALPHA_KEY = "alpha_raw", "alpha_logit"


def alpha_logit_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """The ``alpha_logit`` that gives (nearly) the alpha an old ``alpha_raw`` gave.

    Old checkpoints stored alpha_raw and used ``alpha = clamp(alpha_raw, 0, 1)``; a value at or
    beyond an end (the shipped model's 1.002 -> alpha = 1) maps to ``ALPHA_EDGE`` from that end,
    so behaviour is unchanged to ~1e-5 and the gradient is no longer zero."""
    a = raw.detach().float().clamp(ALPHA_EDGE, 1.0 - ALPHA_EDGE)
    return torch.log(a) - torch.log1p(-a)


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A FoB state dict with every ``*spr.alpha_raw`` (the clamped parametrisation, before
    issue 15) replaced in place by the matching ``*spr.alpha_logit``; others are returned as
    they are. Key order is kept (optimizer states index parameters by position)."""
    old = "spr." + OLD_ALPHA_KEY
    if not any(k.endswith(old) for k in state):
        return state
    return {
        (k[: -len(OLD_ALPHA_KEY)] + ALPHA_KEY if k.endswith(old) else k): (
            alpha_logit_from_raw(v).to(v.dtype) if k.endswith(old) else v
        )
        for k, v in state.items()
    }


def ring_adjacency(n: int) -> torch.Tensor:
    """Eq. 9: ``A_ij = 1`` where ``j = i +- 1 (mod n)``, else 0: (n, n) float."""
    idx = torch.arange(n)
    a = torch.zeros(n, n)
    a[idx, (idx + 1) % n] = 1.0
    a[idx, (idx - 1) % n] = 1.0
    return a


def symmetric_normalise(a: torch.Tensor) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` with D the diagonal of A's row sums: (B, n, n) -> (B, n, n)."""
    d = a.sum(-1).clamp_min(1e-6).rsqrt()  # (B, n)
    return d[..., :, None] * a * d[..., None, :]


def offset_pattern(k: int) -> torch.Tensor:
    """k unit vectors (row, col) evenly spread in angle: the initial candidate offsets, (k, 2)."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float32) / k
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)


class SPR(nn.Module):
    """SPG (Eqs. 8-11) then IDR (Eqs. 12-15) for ``iters`` iterations.

    Candidate offsets are ``radius * (pattern_m + phi(v)_m)``: the last layer of phi starts near
    zero and W_att at zero, so at initialisation the k candidates form a ring of radius
    ``radius`` around each point with equal weights and the refinement starts as the identity
    (the Deformable-DETR initialisation); training learns to move off it.
    """

    def __init__(
        self, *, channels: int, n_points: int, offsets: int, iters: int, hidden: int, radius: float
    ) -> None:
        super().__init__()
        self.iters, self.k, self.radius = iters, offsets, float(radius)
        self.w_theta = nn.Linear(channels, channels, bias=False)
        self.w_phi = nn.Linear(channels, channels, bias=False)
        self.w_g = nn.Linear(channels, channels, bias=False)
        self.alpha_logit = nn.Parameter(torch.tensor(0.0))  # alpha = sigmoid: 0.5 at init
        self.phi = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * offsets)
        )
        nn.init.normal_(self.phi[-1].weight, std=1e-3)
        nn.init.zeros_(self.phi[-1].bias)
        self.w_att = nn.Linear(channels, offsets, bias=False)
        nn.init.zeros_(self.w_att.weight)
        self.register_buffer("ring", ring_adjacency(n_points), persistent=False)
        self.register_buffer("pattern", offset_pattern(offsets), persistent=False)

    @property
    def alpha(self) -> torch.Tensor:
        """Eq. 10's alpha = sigmoid(alpha_logit), in (0, 1) with a gradient everywhere (a 0-dim
        tensor). A hard clamp, as before issue 15, left the shipped model at alpha = 1 with a
        zero gradient: A_ring was off for good."""
        return torch.sigmoid(self.alpha_logit)

    def adjacency(self, prototypes: torch.Tensor) -> torch.Tensor:
        """Eqs. 8 and 10: support prototypes (B, Np, C) -> A (B, Np, Np)."""
        c = prototypes.shape[-1]
        logits = self.w_theta(prototypes) @ self.w_phi(prototypes).transpose(1, 2) / math.sqrt(c)
        a_ada = torch.softmax(logits, dim=-1)  # (B, Np, Np)
        return self.alpha * a_ada + (1.0 - self.alpha) * self.ring

    def propagate(self, adjacency: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Eq. 11: ``Q' = ReLU(D^-1/2 A D^-1/2 Q W_g)``: (B,Np,Np), (B,Np,C) -> (B,Np,C)."""
        return torch.relu(symmetric_normalise(adjacency) @ self.w_g(queries))

    def forward(
        self,
        prototypes: torch.Tensor,
        query_features: torch.Tensor,
        points: torch.Tensor,
        *,
        grid_size: int,
        sigma: float,
    ) -> list[torch.Tensor]:
        """Refine coarse points.

        Args:
            prototypes: support background prototypes P, (B, Np, C).
            query_features: F_q, (B, C, h, w).
            points: coarse points, (B, Np, 2) grid (row, col).
        Returns:
            ``iters`` tensors (B, Np, 2), the points after each iteration; the last is P'_b.
        """
        b, n, _ = points.shape
        q = point_prototypes(query_features, points, grid_size=grid_size, sigma=sigma)  # Q
        f = self.propagate(self.adjacency(prototypes), q)  # Q', the first f
        # coordinate arithmetic in float32, also under autocast: bf16 steps are 1 px beyond 128
        w = torch.softmax(self.w_att(q).float(), dim=-1)  # Eq. 13, (B, Np, k)
        mu, out = points.float(), []
        for _ in range(self.iters):
            raw = self.phi(torch.cat([q, f], dim=-1)).float().view(b, n, self.k, 2)  # Eq. 12
            cand = mu[:, :, None] + self.radius * (self.pattern + raw)  # (B, Np, k, 2)
            mu = (w[..., None] * cand).sum(dim=2)  # Eq. 14
            feats = sample_points(query_features, cand.view(b, n * self.k, 2), grid_size=grid_size)
            f = (w[..., None] * feats.float().view(b, n, self.k, -1)).sum(dim=2)  # Eq. 15
            out.append(mu)
        return out
