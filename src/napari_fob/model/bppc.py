"""Background Prompt Prototypes Construction (Sec. 3.3) and the point/feature ops FoB shares.

Imports torch only. Points are ``(B, N, 2)`` float tensors of ``(row, col)`` in pixels of the
``S x S`` model grid; features are ``(B, C, h, w)`` with ``S = stride * h``. Grid and feature
pixels are aligned at pixel centres: feature pixel ``j`` covers grid ``[j*stride, (j+1)*stride)``,
so a grid coordinate ``p`` is at feature coordinate ``(p + 0.5) / stride - 0.5``. Everything here
is differentiable in the points and the features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_maps(points: torch.Tensor, size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Unnormalised Gaussians (peak 1), Eq. 2: (B,N,2) (row, col) -> (B,N,h,w) float.

    ``G[b,n,u,v] = exp(-((u - row)^2 + (v - col)^2) / (2 sigma^2))``, all in the same pixel
    units as ``points`` and ``size``.
    """
    h, w = size
    rows = torch.arange(h, dtype=points.dtype, device=points.device).view(1, 1, h, 1)
    cols = torch.arange(w, dtype=points.dtype, device=points.device).view(1, 1, 1, w)
    d2 = (rows - points[..., 0, None, None]) ** 2 + (cols - points[..., 1, None, None]) ** 2
    return torch.exp(-d2 / (2.0 * float(sigma) ** 2))


def grid_to_feature(points: torch.Tensor, stride: float) -> torch.Tensor:
    """Grid pixel coordinates -> feature pixel coordinates (pixel centres aligned)."""
    return (points + 0.5) / stride - 0.5


def masked_average_pool(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """MAP, Eq. 3: weighted mean of features per weight map.

    Args:
        features: (B, C, h, w) float.
        weights: (B, N, h, w) float, non-negative.
    Returns:
        (B, N, C): ``sum_uv F(u,v) W_n(u,v) / sum_uv W_n(u,v)`` (denominator floored at 1e-6,
        so an all-zero map gives a zero prototype instead of NaN).
    """
    num = torch.einsum("bchw,bnhw->bnc", features, weights)  # (B, N, C)
    den = weights.sum(dim=(-2, -1)).clamp_min(1e-6)[..., None]  # (B, N, 1)
    return num / den


def point_prototypes(
    features: torch.Tensor, points: torch.Tensor, *, grid_size: int, sigma: float
) -> torch.Tensor:
    """Gaussian-weighted prototypes at points, Eqs. 2-3: (B,C,h,w), (B,N,2) -> (B,N,C).

    The Gaussians are drawn at feature resolution (centre and sigma divided by the stride)
    instead of upsampling the features to the grid: the same weighted mean up to the bilinear
    upsampling kernel, at 1/stride^2 of the memory.
    """
    h, w = features.shape[-2:]
    stride = grid_size / w
    centres = grid_to_feature(points, stride)
    weights = gaussian_maps(centres, (h, w), sigma / stride)
    return masked_average_pool(features, weights)


def mask_prototype(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked average of features over a grid-scale mask: (B,C,h,w), (B,S,S) -> (B,C).

    The mask is area-downsampled to the feature grid (fractional weights at the border).
    """
    weights = F.interpolate(mask[:, None].float(), size=features.shape[-2:], mode="area")
    return masked_average_pool(features, weights)[:, 0]


def normalise_for_grid_sample(points: torch.Tensor, grid_size: int) -> torch.Tensor:
    """(row, col) grid pixels -> grid_sample's (x, y) in [-1, 1] for ``align_corners=False``.

    ``x = 2 (col + 0.5) / S - 1``: pixel centre 0 maps to ``-1 + 1/S``, the grid's left edge to
    -1. This holds for a feature map of any stride that tiles the grid, because grid_sample
    normalises by the map's own extent, which is the grid's extent.
    """
    xy = points.flip(-1)  # grid_sample wants (x, y) = (col, row)
    return 2.0 * (xy + 0.5) / float(grid_size) - 1.0


def sample_points(features: torch.Tensor, points: torch.Tensor, *, grid_size: int) -> torch.Tensor:
    """Bilinear feature sampling at points: (B,C,h,w), (B,N,2) grid (row, col) -> (B,N,C).

    Points outside the grid read the nearest border feature (``padding_mode="border"``): a
    point pushed slightly off the image still sees real features, not zeros.
    """
    grid = normalise_for_grid_sample(points, grid_size)[:, :, None, :]  # (B, N, 1, 2)
    out = F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[..., 0].transpose(1, 2)  # (B, C, N) -> (B, N, C)


def inner_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """The outermost ``width`` pixels inside a mask: (B,S,S) {0,1} -> (B,S,S) float {0,1}.

    ``mask - erode(mask, (2 width + 1) square)``; the RAC positive region of Eq. 16. A mask
    thinner than the band is returned whole.
    """
    m = mask[:, None].float()
    eroded = -F.max_pool2d(-m, kernel_size=2 * width + 1, stride=1, padding=width)
    return (m - eroded).clamp_min(0.0)[:, 0]
