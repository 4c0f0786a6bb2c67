"""The FoB prompt generator: `Fob` (encoder + BPPC + foreground map + BCM + SPR) and `build_fob`.

Imports torch. All tensors are at the model grid: images ``(B, 1, S, S)`` float in [0, 1],
masks ``(B, S, S)`` {0, 1} float, points ``(B, N, 2)`` float (row, col) in grid pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from .bcm import BCM, ForegroundMap, cosine_map
from .bppc import mask_prototype, point_prototypes
from .config import FobConfig, get_config
from .encoder import Encoder, upsample
from .spr import SPR


@dataclass
class SupportState:
    """What FoB keeps of a support slice (B may be 1 and is broadcast over queries).

    Attributes:
        features: F_s, (B, C, h, w).
        bg_prototypes: P, (B, Np, C), Eq. 3, in ring order.
        fg_prototype: p_fg = MAP(F_s, M_s), (B, C).
        ring: the support ring points, (B, Np, 2) grid (row, col).
    """

    features: torch.Tensor
    bg_prototypes: torch.Tensor
    fg_prototype: torch.Tensor
    ring: torch.Tensor

    def expand(self, batch: int) -> SupportState:
        """The same support repeated for ``batch`` queries (a view; B must be 1 or ``batch``)."""
        if self.features.shape[0] == batch:
            return self
        if self.features.shape[0] != 1:
            raise ValueError(f"SupportState: batch {self.features.shape[0]} cannot serve {batch}")
        parts = {f.name: getattr(self, f.name) for f in fields(self)}
        return SupportState(**{k: v.expand(batch, *v.shape[1:]) for k, v in parts.items()})


@dataclass
class FobOutput:
    """Everything one FoB pass produces (B queries).

    Attributes:
        heatmaps: H-hat, (B, Np, S, S) float, raw regression outputs (trained towards
            peak-1 Gaussians, Eq. 17; no sigmoid), channel k = ring position k.
        proposals: Phi, (B, Np, S, S) float, Eq. 5, bilinearly upsampled from feature scale.
        coarse_points: argmax of each H-hat channel, (B, Np, 2) grid (row, col) (no gradient).
        refined_points: SPR output after each of the kappa iterations, list of (B, Np, 2);
            the last is the model's background prompt set P'_b (differentiable).
        fg_prob: C, (B, S, S) float in [0, 1], ``sigmoid(fg_logits)``.
        fg_logits: (B, S, S) float.
        bg_prototypes: P, (B, Np, C); fg_prototype: p_fg, (B, C).
        support_features: F_s, (B, C, h, w); query_features: F_q, (B, C, h, w).
        alpha: the clamped SPR mixing weight, 0-dim tensor.
    """

    heatmaps: torch.Tensor
    proposals: torch.Tensor
    coarse_points: torch.Tensor
    refined_points: list[torch.Tensor]
    fg_prob: torch.Tensor
    fg_logits: torch.Tensor
    bg_prototypes: torch.Tensor
    fg_prototype: torch.Tensor
    support_features: torch.Tensor
    query_features: torch.Tensor
    alpha: torch.Tensor

    @property
    def points(self) -> torch.Tensor:
        """The final background points, (B, Np, 2) grid (row, col)."""
        return self.refined_points[-1]


def position_code(channels: int, size: int) -> torch.Tensor:
    """(1, C, size, size): sin and cos of row and column position at C/4 frequencies each.

    The frequencies run geometrically from half a cycle to size/4 cycles over the grid, so the
    dot product of two codes is a kernel of their displacement whose narrowest part spans a few
    feature cells; channels beyond the largest multiple of 4 stay 0.
    """
    n = channels // 4
    u = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    freqs = torch.logspace(math.log10(0.5), math.log10(max(size / 4, 1.0)), n)
    angle = 2 * math.pi * freqs[:, None] * u[None]  # (n, size)
    rows = torch.cat([angle.sin(), angle.cos()])[:, :, None].expand(-1, size, size)
    cols = torch.cat([angle.sin(), angle.cos()])[:, None, :].expand(-1, size, size)
    code = torch.zeros(channels, size, size)
    code[: 4 * n] = torch.cat([rows, cols])
    return code[None]


def heatmap_argmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-channel argmax: (B, N, H, W) -> (B, N, 2) float32 (row, col)."""
    w = maps.shape[-1]
    idx = maps.flatten(2).argmax(dim=-1)  # (B, N)
    return torch.stack([idx // w, idx % w], dim=-1).float()  # float32 even under autocast


def heatmap_log_likelihood(maps: torch.Tensor, heat_loss: str) -> torch.Tensor:
    """Per-channel log-likelihood of each pixel being the ring point: (B, N, H, W) -> same shape.

    ``"softmax-ce"`` maps are logits of a spatial distribution (log-softmax over the pixels);
    ``"mse"`` maps regress peak-1 Gaussians (Eq. 17) and are read as a likelihood after
    clipping to [1e-3, 1]. Used to combine the maps with a location prior before the argmax.
    """
    if heat_loss == "softmax-ce":
        return maps.flatten(2).float().log_softmax(dim=-1).view(maps.shape)
    return maps.float().clamp(1e-3, 1.0).log()


def location_log_prior(ring: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Isotropic Gaussian log-prior around each support ring point, one width per query.

    Args:
        ring: support ring points, grid (row, col): (Np, 2) shared by every query, or
            (B, Np, 2) one ring per query.
        sigma: (B,) prior widths in grid pixels (> 0; inf gives a flat prior).
        size: the grid size S.
    Returns:
        (B, Np, S, S) float32, ``-d^2 / (2 sigma^2)`` with d the distance to ring point k.
    """
    ring = ring.float()
    if ring.ndim == 2:
        ring = ring[None]
    ax = torch.arange(size, device=ring.device, dtype=torch.float32)
    d2 = (ax[None, None, :, None] - ring[..., 0, None, None]) ** 2
    d2 = d2 + (ax[None, None, None, :] - ring[..., 1, None, None]) ** 2  # (B or 1, Np, S, S)
    return -d2 / (2.0 * sigma.float().view(-1, 1, 1, 1) ** 2)


def prior_widths(prior: tuple[float, float], dz: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Location-prior widths in grid pixels, ``(a + b |dz|) * S / 256``, for (B,) slice
    distances (NaN where unknown, e.g. a cross-volume episode: the width is then inf)."""
    a, b = prior
    sigma = (a + b * dz.float().abs()) * (grid_size / 256.0)
    return torch.where(torch.isnan(sigma), torch.full_like(sigma, float("inf")), sigma)


def peak_confidence(
    maps: torch.Tensor, heat_loss: str, sigma: float, points: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-channel confidence in [0, 1] of a point: (B, N, H, W) -> (B, N).

    The point is each channel's argmax, or ``points`` (B, N, 2) grid (row, col) when given
    (e.g. the argmax after a location prior: the confidence then says how much the model's own
    map agrees with the point chosen). ``"mse"`` maps regress peak-1 Gaussians (Eq. 17): the
    value at the point, clipped to [0, 1]. ``"softmax-ce"`` maps are logits of a spatial
    distribution: the probability mass within 2 sigma of the point, so a sharp peak on the
    point scores near 1 and a spread-out map (or a peak elsewhere) near 0.
    """
    b, n, h, w = maps.shape
    if points is None:
        idx = maps.flatten(2).argmax(dim=-1).view(-1, 1)  # (B*N, 1)
    else:
        rc = points.round().long()
        rc = torch.stack([rc[..., 0].clamp(0, h - 1), rc[..., 1].clamp(0, w - 1)], dim=-1)
        idx = (rc[..., 0] * w + rc[..., 1]).view(-1, 1)
    if heat_loss != "softmax-ce":
        return maps.flatten(2).reshape(b * n, -1).gather(1, idx).view(b, n).clamp(0, 1)
    prob = maps.flatten(2).float().softmax(dim=-1).view(b * n, h, w)
    k = 2 * max(1, round(2 * sigma)) + 1
    # the mass of the k x k window centred on the point (zero outside the map), read from an
    # integral image: only one window per channel is needed, not the whole pooled map
    pad = k // 2
    integral = F.pad(F.pad(prob, (pad, pad, pad, pad)).cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    flat, width = integral.flatten(1), w + 2 * pad + 1
    r, c = idx // w, idx % w

    def at(rr: torch.Tensor, cc: torch.Tensor) -> torch.Tensor:
        return flat.gather(1, rr * width + cc)

    mass = at(r + k, c + k) - at(r, c + k) - at(r + k, c) + at(r, c)
    return mass.view(b, n).clamp(0, 1)


class Fob(nn.Module):
    """FoB: support (image, mask, ring) + query image -> background and foreground prompt maps.

    ``forward`` = ``encode`` (both images) -> ``support_prototypes`` -> ``predict_from_support``;
    the predictor calls the parts to encode a support once and reuse it.
    """

    def __init__(self, *, config: FobConfig) -> None:
        super().__init__()
        self.config = config
        c, n = config.feature_channels, config.n_bg
        self.encoder = Encoder(name=config.encoder, out_channels=c)
        if config.grid_size % self.encoder.stride:
            raise ValueError(
                f"FobConfig.grid_size={config.grid_size} must be a multiple of the "
                f"{config.encoder} stride {self.encoder.stride}"
            )
        feature_size = config.grid_size // self.encoder.stride
        self.fg_map = ForegroundMap(channels=c, adaptive_threshold=config.fg_adaptive_threshold)
        self.bcm = BCM(
            channels=c,
            n_points=n,
            feature_size=feature_size,
            heads=config.bcm_heads,
            ffn=config.bcm_ffn,
        )
        self.spr = SPR(
            channels=c,
            n_points=n,
            offsets=config.spr_offsets,
            iters=config.spr_iters,
            hidden=config.spr_hidden,
            radius=config.spr_offset_radius,
        )
        if config.position_code:
            self.position_proj = nn.Conv2d(c, c, kernel_size=1, bias=False)
            nn.init.zeros_(self.position_proj.weight)
            code = position_code(c, feature_size)
            self.register_buffer("position_map", code, persistent=False)
        if config.encoder_weights is not None:
            self.encoder.load_pretrained(config.encoder_weights)

    @property
    def grid_size(self) -> int:
        return self.config.grid_size

    def _check(self, name: str, x: torch.Tensor, shape: tuple[int | None, ...]) -> None:
        ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
        if not ok:
            want = tuple("B" if s is None else s for s in shape)
            raise ValueError(f"Fob: {name} must have shape {want}, got {tuple(x.shape)}")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) float in [0, 1] -> features (B, C, S/stride, S/stride)."""
        s = self.grid_size
        self._check("images", images, (None, 1, s, s))
        features = self.encoder(images)
        if self.config.position_code:
            code = self.position_proj(self.position_map.to(features.dtype))
            features = features + code
        return features

    def support_prototypes(
        self, features: torch.Tensor, mask: torch.Tensor, ring: torch.Tensor
    ) -> SupportState:
        """BPPC: support features (B,C,h,w), mask (B,S,S) {0,1}, ring (B,Np,2) -> SupportState."""
        s, n = self.grid_size, self.config.n_bg
        self._check("support_mask", mask, (features.shape[0], s, s))
        self._check("support_ring", ring, (features.shape[0], n, 2))
        ring = ring.float()  # coordinates stay float32 (bf16 has 1-px steps beyond 128)
        bg = point_prototypes(features, ring, grid_size=s, sigma=self.config.sigma)  # Eq. 3
        fg = mask_prototype(features, mask)
        return SupportState(features=features, bg_prototypes=bg, fg_prototype=fg, ring=ring)

    def predict_from_support(
        self,
        state: SupportState,
        query_features: torch.Tensor,
        *,
        point_log_prior: torch.Tensor | None = None,
    ) -> FobOutput:
        """Foreground map, BCM and SPR for query features (B, C, h, w) against a support.

        ``point_log_prior`` (B, Np, S, S), optional: added to the heatmaps' log-likelihood
        (`heatmap_log_likelihood`) before the argmax that seeds SPR, so the coarse points are
        the maximum a posteriori ring points (inference only; see `location_log_prior`).
        """
        b = query_features.shape[0]
        state = state.expand(b)
        s = self.grid_size
        cos = cosine_map(query_features, state.fg_prototype)  # (B, h, w)
        fg_logits = upsample(self.fg_map(cos, query_features)[:, None], s)[:, 0]  # (B, S, S)
        phi, hhat = self.bcm(query_features, cos, state.bg_prototypes)  # (B, Np, h, w) each
        heatmaps = upsample(hhat, s)
        if point_log_prior is None:
            coarse = heatmap_argmax(heatmaps.detach())
        else:
            loglik = heatmap_log_likelihood(heatmaps.detach(), self.config.heat_loss)
            coarse = heatmap_argmax(loglik + point_log_prior)
        refined = self.spr(
            state.bg_prototypes, query_features, coarse, grid_size=s, sigma=self.config.sigma
        )
        return FobOutput(
            heatmaps=heatmaps,
            proposals=upsample(phi, s),
            coarse_points=coarse,
            refined_points=refined,
            fg_prob=torch.sigmoid(fg_logits),
            fg_logits=fg_logits,
            bg_prototypes=state.bg_prototypes,
            fg_prototype=state.fg_prototype,
            support_features=state.features,
            query_features=query_features,
            alpha=self.spr.alpha,
        )

    def forward(
        self,
        support_image: torch.Tensor,
        support_mask: torch.Tensor,
        support_ring: torch.Tensor,
        query_image: torch.Tensor,
        point_log_prior: torch.Tensor | None = None,
    ) -> FobOutput:
        """One episode: (B,1,S,S), (B,S,S), (B,Np,2), (B,1,S,S) -> FobOutput
        (``point_log_prior``: see `predict_from_support`)."""
        state = self.support_prototypes(self.encode(support_image), support_mask, support_ring)
        return self.predict_from_support(
            state, self.encode(query_image), point_log_prior=point_log_prior
        )


def model_for_config(config: FobConfig) -> nn.Module:
    """The network a config describes: `Fob`, or `official.OfficialFob` for the authors'
    architecture (``config.architecture == "official"``)."""
    if config.architecture == "official":
        from .official import OfficialFob

        return OfficialFob(config=config)
    return Fob(config=config)


def build_fob(name_or_config: str | FobConfig, **overrides) -> nn.Module:
    """Build a FoB model from a named config (``"paper"``, ``"compact"``, ``"tiny"``,
    ``"official"``) or a `FobConfig`, with field overrides (e.g. ``encoder_weights="imagenet"``)."""
    return model_for_config(get_config(name_or_config, **overrides))
