"""BPPC and the shared point ops against direct reference computations."""

from __future__ import annotations

import numpy as np
import torch

from napari_fob import geometry
from napari_fob.model import bppc


def test_gaussian_maps_match_the_numpy_heatmaps():
    pts = torch.tensor([[[3.0, 5.5], [10.2, 1.0]]])
    got = bppc.gaussian_maps(pts, (16, 12), 2.5)[0].numpy()
    want = geometry.gaussian_heatmaps(pts[0].numpy(), (16, 12), sigma=2.5)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, 3, 5:7].max() < 1.0 and abs(got[1, 10, 1] - np.exp(-0.04 / 12.5)) < 1e-6


def test_map_is_the_gaussian_weighted_mean():
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 6, 7)
    pts = torch.tensor([[[1.0, 2.0], [4.5, 6.0]], [[0.0, 0.0], [5.0, 3.3]]])
    got = bppc.point_prototypes(feats, pts, grid_size=7, sigma=1.5)  # stride 7/7 = 1
    for b in range(2):
        for n in range(2):
            g = np.zeros((6, 7))
            for u in range(6):
                for v in range(7):
                    d2 = (u - pts[b, n, 0].item()) ** 2 + (v - pts[b, n, 1].item()) ** 2
                    g[u, v] = np.exp(-d2 / (2 * 1.5**2))
            want = (feats[b].numpy() * g).sum(axis=(1, 2)) / g.sum()
            np.testing.assert_allclose(got[b, n].numpy(), want, rtol=1e-5, atol=1e-6)


def test_point_prototypes_scale_centre_and_sigma_by_the_stride():
    torch.manual_seed(1)
    feats = torch.randn(1, 3, 8, 8)
    pts = torch.tensor([[[13.5, 3.5]]])  # grid 32, stride 4: feature coordinate (3.0, 0.5)
    got = bppc.point_prototypes(feats, pts, grid_size=32, sigma=4.0)
    weights = bppc.gaussian_maps(torch.tensor([[[3.0, 0.5]]]), (8, 8), 1.0)
    torch.testing.assert_close(got, bppc.masked_average_pool(feats, weights))


def test_mask_prototype_averages_inside_the_mask():
    feats = torch.arange(16.0).view(1, 1, 4, 4)
    mask = torch.zeros(1, 8, 8)
    mask[0, :4, :4] = 1  # grid 8 -> features 4: covers feature pixels [0:2, 0:2]
    assert bppc.mask_prototype(feats, mask).item() == (0 + 1 + 4 + 5) / 4


def test_sample_points_reads_the_pixel_under_a_point_not_zero():
    torch.manual_seed(2)
    feats = torch.randn(1, 4, 8, 8) + 5.0  # far from zero everywhere
    stride, grid = 4, 32
    # feature pixel (i, j)'s centre is grid coordinate (i + 0.5) * stride - 0.5
    ij = [(0, 0), (3, 5), (7, 7), (2, 6)]
    pts = torch.tensor([[[(i + 0.5) * stride - 0.5, (j + 0.5) * stride - 0.5] for i, j in ij]])
    got = bppc.sample_points(feats, pts, grid_size=grid)[0]
    for k, (i, j) in enumerate(ij):
        torch.testing.assert_close(got[k], feats[0, :, i, j])
    # half-way between two pixel centres along a row: their mean (bilinear)
    mid = torch.tensor([[[(3 + 0.5) * stride - 0.5, (5 + 1.0) * stride - 0.5]]])
    half = bppc.sample_points(feats, mid, grid_size=grid)[0, 0]
    torch.testing.assert_close(half, 0.5 * (feats[0, :, 3, 5] + feats[0, :, 3, 6]))


def test_normalised_coordinates_cover_the_grid_in_x_y_order():
    pts = torch.tensor([[[-0.5, -0.5], [31.5, 31.5], [0.0, 15.5]]])
    xy = bppc.normalise_for_grid_sample(pts, 32)
    torch.testing.assert_close(xy[0, 0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(xy[0, 1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(xy[0, 2], torch.tensor([0.0, -1.0 + 1.0 / 32]))  # (x=col, y=row)


def test_inner_band_is_mask_minus_its_erosion():
    mask = torch.zeros(1, 20, 20)
    mask[0, 4:16, 5:15] = 1
    band = bppc.inner_band(mask, 2)
    want = mask.clone()
    want[0, 6:14, 7:13] = 0
    torch.testing.assert_close(band, want)
