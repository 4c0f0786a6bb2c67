"""`OfficialFob`: the FoB authors' network exactly, so that their released weights load and run.

Imports torch/torchvision. Written from a reading of github primebo1/FoB_SAM (Apache-2.0),
``models/FoB.py`` and ``models/encoder.py``; no code of theirs is copied. Where their network
departs from this project's `model.fob.Fob` (see docs/method.md, "The authors' checkpoints"):

- the encoder keeps the whole torchvision ResNet-101 (keys ``encoder.backbone.*``): layer3
  (1024 ch at 1/4, DeepLab dilations) -> a 1x1 conv *without bias* to C = 512 gives the
  features; layer4 -> average pool -> fc (1000) -> linear(1000, 1) gives a scalar threshold t
  per image; the input is the z-scored slice repeated to three channels (no ImageNet
  normalisation);
- the foreground map is ``1 - sigmoid(0.5 (-20 cos - t))`` with the *query's* t, at feature
  scale (upsampled by the caller, align_corners=True);
- Eq. 5 has biases on both projections, no 1/sqrt(C), the standard transformer sinusoid
  (base 10000) on the prototypes, and the learnable positional map added to the tokens that
  the masked attention reads as well; attention has one head and the FFN expansion 1;
  their bias ``m_i + m_j`` equals this project's per-key ``m_j`` after the softmax (a constant
  per row), so `bcm.MaskedAttentionLayer` is reused; the head's InstanceNorm is affine;
- SPR is a different module (`OfficialSPR`): a gated, row-normalised graph step, a one-head
  self-attention over the ring, and IDR with a learned scale; points are ``(x, y)`` pixels of
  the 256 grid and features are sampled with ``grid_sample(features, 2 p - 1,
  align_corners=True)``, the pixel-coordinate defect their weights were trained with (the
  samples are zeros except near the image origin). ``grid_defect=False`` normalises properly.

All prototypes are weighted means over the features *bilinearly upsampled to the grid*, as in
their code (`upsampled_average`, computed without materialising the upsampled features).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bcm import HeatmapHead, MaskedAttentionLayer, suppress_foreground
from .config import FobConfig
from .spr import ring_adjacency

#: The fixed cosine scale of their foreground map (ADNet's "scaler").
FG_SCALER = 20.0
#: Added to the denominator of every weighted mean in their code.
MEAN_EPS = 1e-5


def transformer_sinusoid(n: int, channels: int) -> torch.Tensor:
    """The standard transformer position code of positions 0..n-1: (n, C) float32.

    ``pe[k, 2i] = sin(k / 10000^(2i/C))``, ``pe[k, 2i+1] = cos(...)`` (their ring-index code;
    unlike `bcm.ring_position_encoding` it is not periodic around the ring).
    """
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(1e4) / channels)
    )
    code = torch.zeros(n, channels)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq)
    return code


def _interpolation_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """(n_out, n_in): 1-D bilinear resize (align_corners=False) as a matrix."""
    eye = torch.eye(n_in, device=device)[None]  # (1, n_in, n_in): row j is the unit vector e_j
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T


def upsampled_average(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted means over features bilinearly upsampled to the weights' grid.

    Args:
        features: (B, C, h, w).
        weights: (B, N, S, S) non-negative maps at the grid.
    Returns:
        (B, N, C): ``sum up(F) W / (sum W + 1e-5)``. Bilinear upsampling is linear and
        separable, ``up(F) = R_h F R_w^T``, so the sum is taken over ``R_h^T W R_w`` at feature
        scale (the same number, without a (B, C, S, S) tensor).
    """
    h, w = features.shape[-2:]
    s_h, s_w = weights.shape[-2:]
    r_h = _interpolation_matrix(h, s_h, features.device)  # (S, h)
    r_w = _interpolation_matrix(w, s_w, features.device)  # (S, w)
    pulled = r_h.T @ weights.float() @ r_w  # (B, N, h, w)
    num = torch.einsum("bchw,bnhw->bnc", features, pulled)
    return num / (weights.float().sum(dim=(-2, -1))[..., None] + MEAN_EPS)


class OfficialEncoder(nn.Module):
    """(B, 1, S, S) z-scored slices -> features (B, C, S/4, S/4) and thresholds t (B,)."""

    stride = 4

    def __init__(self, *, out_channels: int) -> None:
        super().__init__()
        import torchvision

        self.backbone = torchvision.models.resnet101(
            weights=None, replace_stride_with_dilation=[True, True, False]
        )
        self.reduce = nn.Conv2d(1024, out_channels, kernel_size=1, bias=False)
        self.threshold = nn.Linear(1000, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(
                f"OfficialEncoder: expected (B,1,S,S) slices, got {tuple(images.shape)}"
            )
        net = self.backbone
        # channels-last makes oneDNN's convs several times faster on CPU (same numbers)
        x = images.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer3(net.layer2(net.layer1(x)))  # (B, 1024, S/4, S/4)
        pooled = torch.flatten(net.avgpool(net.layer4(x)), 1)  # (B, 2048)
        return self.reduce(x).contiguous(), self.threshold(net.fc(pooled))[:, 0]


class OfficialProposals(nn.Module):
    """Their Eq. 5: ``Phi = (W_q x)(A * W_s p)^T`` with biases, no scaling, (B, Np, L)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.support_proj = nn.Linear(channels, channels)
        self.query_proj = nn.Linear(channels, channels)
        self.channel_mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels)
        )

    def forward(self, prototypes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        ps = self.support_proj(prototypes)  # (B, Np, C)
        ps = (torch.tanh(self.channel_mlp(ps)) + 1.0) * ps
        return torch.bmm(self.query_proj(tokens), ps.transpose(1, 2)).transpose(1, 2)


class OfficialBCM(nn.Module):
    """Suppression, proposals, masked attention, head: (B,C,h,w) -> Phi, H-hat (B,Np,h,w)."""

    def __init__(self, *, channels: int, n_points: int, feature_size: int, ffn: int) -> None:
        super().__init__()
        self.query_pos = nn.Parameter(torch.zeros(1, channels, feature_size, feature_size))
        self.register_buffer(
            "ring_code", transformer_sinusoid(n_points, channels), persistent=False
        )
        self.proposals = OfficialProposals(channels=channels)
        self.layer = MaskedAttentionLayer(channels=channels, n_points=n_points, heads=1, ffn=ffn)
        self.head = HeatmapHead(channels=channels, n_points=n_points, affine=True)

    def forward(
        self, query_features: torch.Tensor, cos: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = query_features.shape
        x = suppress_foreground(query_features, cos) + self.query_pos  # Eq. 4, plus position
        tokens = x.flatten(2).transpose(1, 2)  # (B, L, C)
        phi = self.proposals(prototypes + self.ring_code, tokens).reshape(b, -1, h, w)
        out = self.layer(tokens, phi).transpose(1, 2).reshape(b, c, h, w)
        return phi, self.head(out)


class OfficialSPR(nn.Module):
    """Their SPR: graph step, ring self-attention, ``iters`` IDR steps on (x, y) grid points."""

    def __init__(self, *, channels: int, n_points: int, offsets: int, iters: int) -> None:
        super().__init__()
        self.iters, self.k = iters, offsets
        self.theta = nn.Linear(channels, channels)
        self.phi = nn.Linear(channels, channels)
        self.w_g = nn.Linear(channels, channels, bias=False)
        self.gate = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.alpha = nn.Parameter(torch.tensor(0.5))  # clamped to [0, 1], as they use it
        self.attn = nn.MultiheadAttention(channels, 1, batch_first=True)
        self.offset = nn.Linear(2 * channels, 2 * offsets)
        self.scale = nn.Sequential(
            nn.Linear(2 * channels, channels), nn.ReLU(), nn.Linear(channels, 1)
        )
        self.weight = nn.Linear(channels, offsets)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(channels) for _ in range(3))
        self.register_buffer("ring", ring_adjacency(n_points), persistent=False)

    def graph(self, queries: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """(B, Np, C) query and support prototypes -> the graph output (B, Np, C)."""
        c = support.shape[-1]
        a_ada = torch.softmax(self.theta(support) @ self.phi(support).transpose(1, 2) / c**0.5, -1)
        alpha = self.alpha.clamp(0.0, 1.0)
        a = alpha * a_ada + (1.0 - alpha) * self.ring
        a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 (not D^-1/2 A D^-1/2)
        return torch.relu(a @ (torch.sigmoid(self.gate(queries)) * self.w_g(queries)))

    def forward(
        self,
        queries: torch.Tensor,
        points_xy: torch.Tensor,
        support: torch.Tensor,
        features: torch.Tensor,
        *,
        grid_size: int,
        grid_defect: bool = True,
    ) -> list[torch.Tensor]:
        """Refine (B, Np, 2) ``(x, y)`` grid points; returns the points after each iteration.

        ``grid_defect``: sample features at ``2 p - 1`` as their code does (p in grid pixels,
        so nearly every sample falls outside the map and reads zero); False normalises the
        points to grid_sample's [-1, 1] (pixel centres aligned).
        """
        b, n, _ = points_xy.shape
        g = self.graph(queries, support)
        q = self.norm1(queries + g)
        q = self.norm2(q + self.attn(q, q, q, need_weights=False)[0])
        pts, out = points_xy.float(), []
        for _ in range(self.iters):
            offsets = self.offset(torch.cat([q, g], dim=-1)).view(b, n, self.k, 2)
            scale = 2.0 * torch.sigmoid(self.scale(torch.cat([q, support], dim=-1)))
            cand = pts[:, :, None] + scale[..., None] * offsets  # (B, Np, k, 2)
            if grid_defect:
                grid, corners = cand * 2.0 - 1.0, True
            else:
                grid, corners = 2.0 * (cand + 0.5) / grid_size - 1.0, False
            sampled = F.grid_sample(
                features, grid.view(b, 1, n * self.k, 2), mode="bilinear", align_corners=corners
            ).view(b, -1, n, self.k)  # (B, C, Np, k)
            w = torch.softmax(self.weight(q), dim=-1)  # (B, Np, k)
            visual = (sampled * w[:, None]).sum(dim=-1).transpose(1, 2)  # (B, Np, C)
            pts = (cand * w[..., None]).sum(dim=2)
            q = self.norm3(q + visual)
            out.append(pts)
        return out


class OfficialFob(nn.Module):
    """The authors' network; the inference around it is `prompting.official_compat`.

    Tensors at the 256 grid: slices (B, 1, S, S) z-scored; weight maps (B, N, S, S); points
    (B, Np, 2) ``(x, y)`` grid pixels.
    """

    def __init__(self, *, config: FobConfig) -> None:
        super().__init__()
        if config.architecture != "official":
            raise ValueError(
                f"OfficialFob: config {config.name!r} is not the 'official' architecture"
            )
        self.config = config
        c, n = config.feature_channels, config.n_bg
        self.encoder = OfficialEncoder(out_channels=c)
        size = config.grid_size // OfficialEncoder.stride
        self.bcm = OfficialBCM(channels=c, n_points=n, feature_size=size, ffn=config.bcm_ffn)
        self.spr = OfficialSPR(
            channels=c, n_points=n, offsets=config.spr_offsets, iters=config.spr_iters
        )

    @property
    def grid_size(self) -> int:
        return self.config.grid_size

    def forward(self, *args: object, **kwargs: object) -> None:
        """Refused: this network runs only inside `prompting.official_compat` (and is not
        trained here: this project's losses and episodes are `Fob`'s)."""
        raise RuntimeError(
            "OfficialFob (the authors' network, for their converted weights) has no episode "
            "forward: run it with prompting.official_compat.OfficialPredictor; to train, use "
            "the 'paper', 'compact' or 'tiny' config"
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) -> features (B, C, S/4, S/4), thresholds t (B,)."""
        s = self.grid_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, s, s):
            raise ValueError(
                f"OfficialFob: slices must be (B, 1, {s}, {s}), got {tuple(images.shape)}"
            )
        return self.encoder(images)

    def foreground(
        self, features: torch.Tensor, fg_prototype: torch.Tensor, threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosine map and foreground probability at feature scale, (B, h, w) each."""
        cos = F.cosine_similarity(features, fg_prototype[:, :, None, None], dim=1)
        prob = 1.0 - torch.sigmoid(0.5 * (-FG_SCALER * cos - threshold[:, None, None]))
        return cos, prob

    def heatmaps(
        self, features: torch.Tensor, cos: torch.Tensor, bg_prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proposals Phi (B, Np, h, w) and heatmaps upsampled to the grid (B, Np, S, S)."""
        phi, hhat = self.bcm(features, cos, bg_prototypes)
        s = self.grid_size
        return phi, F.interpolate(hhat, size=(s, s), mode="bilinear", align_corners=False)

    def refine(
        self,
        query_prototypes: torch.Tensor,
        points_xy: torch.Tensor,
        bg_prototypes: torch.Tensor,
        features: torch.Tensor,
        *,
        grid_defect: bool = True,
    ) -> list[torch.Tensor]:
        """`OfficialSPR` on (B, Np, 2) (x, y) points; the last entry is the output."""
        return self.spr(
            query_prototypes, points_xy, bg_prototypes, features,
            grid_size=self.grid_size, grid_defect=grid_defect,
        )  # fmt: skip
