"""Shapes of every config, input checks and encoder weight loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from napari_fob.model.encoder import Encoder
from napari_fob.model.fob import Fob, FobOutput, build_fob


def check_output(out: FobOutput, b: int, s: int, n: int, c: int, h: int) -> None:
    assert out.heatmaps.shape == out.proposals.shape == (b, n, s, s)
    assert out.coarse_points.shape == (b, n, 2) and out.points.shape == (b, n, 2)
    assert out.fg_prob.shape == out.fg_logits.shape == (b, s, s)
    assert out.bg_prototypes.shape == (b, n, c) and out.fg_prototype.shape == (b, c)
    assert out.support_features.shape == out.query_features.shape == (b, c, h, h)
    assert 0 <= out.alpha.item() <= 1
    assert float(out.fg_prob.min()) >= 0 and float(out.fg_prob.max()) <= 1


def test_tiny_forward_shapes(tiny_batch):
    model = build_fob("tiny")
    b = tiny_batch
    out = model(b["support_image"], b["support_mask"], b["support_ring"], b["query_image"])
    check_output(out, 2, 64, 10, 16, 16)
    assert len(out.refined_points) == 3
    assert isinstance(model, Fob) and model.grid_size == 64


def test_compact_forward_shapes():
    torch.manual_seed(0)
    model = build_fob("compact").eval()
    s = 256
    mask = torch.zeros(2, s, s)
    mask[:, 100:150, 90:160] = 1
    ring = torch.rand(2, 10, 2) * s
    with torch.inference_mode():
        out = model(torch.rand(2, 1, s, s), mask, ring, torch.rand(2, 1, s, s))
    check_output(out, 2, s, 10, 128, 32)


def test_paper_builds_and_gives_layer3_features_at_quarter_scale():
    model = build_fob("paper").eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params > 25_000_000  # ResNet-101 up to layer3 alone is ~27M
    with torch.inference_mode():
        feats = model.encoder(torch.rand(1, 1, 64, 64))
    assert feats.shape == (1, 512, 16, 16)  # 1/4 scale: 64x64 features for a 256 input


def test_support_is_broadcast_over_queries(tiny_batch):
    torch.manual_seed(0)
    model = build_fob("tiny").eval()
    b = tiny_batch  # both batch items are the same episode
    with torch.inference_mode():
        feats = model.encode(b["support_image"])
        one = model.support_prototypes(feats[:1], b["support_mask"][:1], b["support_ring"][:1])
        two = model.support_prototypes(feats, b["support_mask"], b["support_ring"])
        queries = model.encode(b["query_image"])
        out = model.predict_from_support(one, queries)
        full = model.predict_from_support(two, queries)
    torch.testing.assert_close(out.points, full.points)
    torch.testing.assert_close(out.heatmaps, full.heatmaps)
    assert one.expand(2).bg_prototypes.shape == (2, 10, 16)


@pytest.mark.parametrize(
    "args",
    [
        dict(support_image=torch.rand(1, 3, 64, 64)),
        dict(query_image=torch.rand(1, 1, 32, 32)),
        dict(support_mask=torch.zeros(1, 64, 32)),
        dict(support_ring=torch.zeros(1, 9, 2)),
    ],
)
def test_wrong_shapes_raise_value_error(args):
    model = build_fob("tiny")
    base = dict(
        support_image=torch.rand(1, 1, 64, 64),
        support_mask=torch.zeros(1, 64, 64),
        support_ring=torch.zeros(1, 10, 2),
        query_image=torch.rand(1, 1, 64, 64),
    )
    with pytest.raises(ValueError, match="Fob|Encoder"):
        model(**(base | args))


def test_named_pretrained_weights_missing_raise(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        build_fob("compact", encoder_weights="imagenet")
    with pytest.raises(ValueError, match="do not exist"):
        build_fob("compact", encoder_weights="coco-deeplab")
    with pytest.raises(FileNotFoundError, match="not found"):
        build_fob("compact", encoder_weights=str(tmp_path / "nope.pth"))


def test_weights_from_a_deeplab_style_file(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    state = {f"backbone.{k}": v for k, v in ref.state_dict().items()}
    state["classifier.4.weight"] = torch.zeros(3)  # heads are ignored
    path = tmp_path / "deeplab.pth"
    torch.save(state, path)
    model = build_fob("compact", encoder_weights=str(path))
    torch.testing.assert_close(
        model.encoder.backbone.layer2[0].conv1.weight, ref.layer2[0].conv1.weight
    )
    torch.save({"backbone.conv1.weight": ref.conv1.weight}, path)
    with pytest.raises(ValueError, match="missing"):
        build_fob("compact", encoder_weights=str(path))


def test_encoder_repeats_grey_and_normalises():
    enc = Encoder(name="tiny", out_channels=4)
    grey = torch.full((1, 1, 8, 8), 0.5)
    x = (grey.expand(-1, 3, -1, -1) - enc.mean) / enc.std
    torch.testing.assert_close(enc(grey), enc.reduce(enc.backbone(x)))


def test_peak_confidence_per_heatmap_loss():
    from napari_fob.model.fob import peak_confidence

    maps = torch.full((1, 2, 16, 16), -10.0)
    maps[0, 0, 5, 5] = 10.0  # one sharp peak
    maps[0, 1] = 0.0  # flat: no preferred place
    maps[0, 1, 8, 8] = 0.01
    sharp, flat = peak_confidence(maps, "softmax-ce", 1.0)[0].tolist()
    assert sharp > 0.99 and flat < 0.15
    mse = torch.zeros(1, 2, 8, 8)
    mse[0, 0, 1, 1], mse[0, 1, 2, 2] = 0.7, 1.6
    torch.testing.assert_close(peak_confidence(mse, "mse", 4.0), torch.tensor([[0.7, 1.0]]))


def test_peak_confidence_at_given_points():
    from napari_fob.model.fob import peak_confidence

    maps = torch.full((1, 1, 9, 9), -30.0)
    maps[0, 0, 2, 2] = 10.0
    at_peak = peak_confidence(maps, "softmax-ce", 1.0, torch.tensor([[[2.0, 2.0]]]))
    away = peak_confidence(maps, "softmax-ce", 1.0, torch.tensor([[[7.0, 7.0]]]))
    assert float(at_peak) > 0.99 and float(away) < 1e-6
    mse = torch.zeros((1, 1, 4, 4))
    mse[0, 0, 1, 2] = 0.6
    got = peak_confidence(mse, "mse", 4.0, torch.tensor([[[1.2, 1.8]]]))
    assert float(got) == pytest.approx(0.6)
