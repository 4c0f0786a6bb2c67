"""Background-centric Context Modeling (Sec. 3.4) and the foreground map C.

Imports torch only. Shapes: query features ``(B, C, h, w)``, support background prototypes
``P (B, Np, C)``, support foreground prototype ``(B, C)``; maps are at feature scale here and
upsampled to the grid by `fob.Fob`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_map(features: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each pixel with a prototype: (B,C,h,w), (B,C) -> (B,h,w)."""
    return F.cosine_similarity(features, prototype[:, :, None, None], dim=1, eps=1e-6)


def suppress_foreground(features: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``F_sup = (1 - cos(F_q, p_fg)) * F_q``: (B,C,h,w), (B,h,w) -> (B,C,h,w)."""
    return (1.0 - cos)[:, None] * features


class ForegroundMap(nn.Module):
    """Foreground logits from the cosine map: ``scale * cos + offset`` (minus an optional
    ADNet-style threshold predicted from the pooled query features).

    The paper calls the cosine map itself C and applies a BCE to it (Eq. 19); a cosine is not a
    probability, so, as the public code does, C is ``sigmoid(scale * cos + offset)`` with a
    learnable scale and offset. Output (B,h,w) logits.
    """

    def __init__(self, *, channels: int, adaptive_threshold: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.offset = nn.Parameter(torch.tensor(-5.0))  # cos 0.5 <-> probability 0.5 at init
        self.threshold = nn.Linear(channels, 1) if adaptive_threshold else None

    def forward(self, cos: torch.Tensor, query_features: torch.Tensor) -> torch.Tensor:
        logits = self.scale * cos + self.offset
        if self.threshold is not None:
            pooled = query_features.mean(dim=(-2, -1))  # (B, C)
            logits = logits - self.scale * self.threshold(pooled)[:, :, None]
        return logits


def ring_position_encoding(n: int, channels: int) -> torch.Tensor:
    """Sinusoidal encoding of ring index k = 0..n-1 as an angle: (n, C) float.

    Channel pairs hold sin/cos of ``f * 2 pi k / n`` for integer frequencies f = 1, 2, ...,
    so the code is periodic around the ring (the last point neighbours the first).
    """
    angle = 2 * math.pi * torch.arange(n, dtype=torch.float32)[:, None] / n  # (n, 1)
    freqs = torch.arange(1, channels // 2 + 1, dtype=torch.float32)[None]  # (1, C/2)
    enc = torch.zeros(n, channels)
    enc[:, 0 : 2 * freqs.shape[1] : 2] = torch.sin(angle * freqs)
    enc[:, 1 : 2 * freqs.shape[1] : 2] = torch.cos(angle * freqs)
    return enc


class ProposalModule(nn.Module):
    """Coarse prompt proposals, Eq. 5: ``Phi = (A * P W_s)(W_q xi(F_sup))``, scaled by 1/sqrt(C).

    ``A = tanh(MLP(P W_s)) + 1`` is the prototype-conditioned channel attention of the public
    code (SAFECount); a sinusoidal ring-index code is added to P and a learnable positional map
    to F_sup before the projections, as in the public code. Output (B, Np, h, w).
    """

    def __init__(self, *, channels: int, n_points: int, feature_size: int) -> None:
        super().__init__()
        self.w_s = nn.Linear(channels, channels, bias=False)
        self.w_q = nn.Conv2d(channels, channels, kernel_size=1, bias=False)
        self.attn = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels)
        )
        self.register_buffer(
            "ring_code", ring_position_encoding(n_points, channels), persistent=False
        )
        self.query_pos = nn.Parameter(torch.zeros(1, channels, feature_size, feature_size))
        nn.init.trunc_normal_(self.query_pos, std=0.02)

    def forward(self, prototypes: torch.Tensor, suppressed: torch.Tensor) -> torch.Tensor:
        b, c, h, w = suppressed.shape
        ps = self.w_s(prototypes + self.ring_code)  # (B, Np, C)
        a = torch.tanh(self.attn(ps)) + 1.0  # (B, Np, C), in (0, 2)
        pos = self.query_pos
        if pos.shape[-2:] != (h, w):
            pos = F.interpolate(pos, size=(h, w), mode="bilinear", align_corners=False)
        fq = self.w_q(suppressed + pos).flatten(2)  # (B, C, h*w)
        phi = torch.bmm(a * ps, fq) / math.sqrt(c)  # (B, Np, h*w)
        return phi.view(b, -1, h, w)


class MaskedAttentionLayer(nn.Module):
    """Eqs. 6-7: post-norm transformer layer whose attention logits get a per-key bias
    ``B = ReLU(conv1x1(Phi))`` (one map, broadcast over queries and heads).

    Input tokens (B, L, C) with L = h*w, proposals (B, Np, h, w); output (B, L, C).
    """

    def __init__(self, *, channels: int, n_points: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.bias_conv = nn.Conv2d(n_points, 1, kernel_size=1)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm1 = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(
            nn.Linear(channels, ffn), nn.ReLU(inplace=True), nn.Linear(ffn, channels)
        )
        self.norm2 = nn.LayerNorm(channels)

    def attention_bias(self, proposals: torch.Tensor) -> torch.Tensor:
        """(B, Np, h, w) -> (B, 1, 1, h*w) bias added to every query's logits."""
        return F.relu(self.bias_conv(proposals)).flatten(1)[:, None, None, :]

    def forward(self, tokens: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        qkv = self.qkv(tokens).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.attention_bias(proposals).to(tokens.dtype)
        att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias)
        att = att.transpose(1, 2).reshape(b, n, c)  # (B, L, C)
        x = self.norm1(self.proj(att) + tokens)  # Eq. 6
        return self.norm2(self.ffn(x) + x)  # Eq. 7


class HeatmapHead(nn.Module):
    """Head(.): conv1x1 -> InstanceNorm -> ReLU -> conv1x1: (B,C,h,w) -> (B,Np,h,w).

    ``affine``: the InstanceNorm learns a per-channel scale and shift (the authors' network has
    them, so their weights need it; this project's models do without).
    """

    def __init__(self, *, channels: int, n_points: int, affine: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=1),
            nn.InstanceNorm2d(channels, affine=affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, n_points, kernel_size=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class BCM(nn.Module):
    """Suppression, proposals, masked attention and head: query features -> (Phi, H-hat).

    Inputs: query features (B,C,h,w), cosine map (B,h,w), prototypes P (B,Np,C).
    Outputs at feature scale: proposals Phi (B,Np,h,w) and heatmaps H-hat (B,Np,h,w).
    """

    def __init__(self, *, channels: int, n_points: int, feature_size: int, heads: int, ffn: int):
        super().__init__()
        self.proposals = ProposalModule(
            channels=channels, n_points=n_points, feature_size=feature_size
        )
        self.layer = MaskedAttentionLayer(
            channels=channels, n_points=n_points, heads=heads, ffn=ffn
        )
        self.head = HeatmapHead(channels=channels, n_points=n_points)

    def forward(
        self, query_features: torch.Tensor, cos: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = query_features.shape
        suppressed = suppress_foreground(query_features, cos)  # Eq. 4
        phi = self.proposals(prototypes, suppressed)  # Eq. 5, (B, Np, h, w)
        tokens = suppressed.flatten(2).transpose(1, 2)  # (B, h*w, C)
        modulated = self.layer(tokens, phi)  # Eqs. 6-7
        fm = modulated.transpose(1, 2).reshape(b, c, h, w)
        return phi, self.head(fm)
