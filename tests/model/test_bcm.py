"""BCM pieces (Eqs. 4-7) against direct computations."""

from __future__ import annotations

import math

import torch

from napari_fob.model import bcm


def test_suppression_formula_eq4():
    torch.manual_seed(0)
    fq = torch.randn(2, 6, 3, 4)
    p = torch.randn(2, 6)
    cos = bcm.cosine_map(fq, p)
    got = bcm.suppress_foreground(fq, cos)
    for b in range(2):
        for u in range(3):
            for v in range(4):
                f = fq[b, :, u, v]
                c = (f @ p[b]) / (f.norm() * p[b].norm())
                torch.testing.assert_close(cos[b, u, v], c)
                torch.testing.assert_close(got[b, :, u, v], (1 - c) * f)


def test_proposals_eq5():
    torch.manual_seed(1)
    mod = bcm.ProposalModule(channels=8, n_points=5, feature_size=3)
    protos, fsup = torch.randn(2, 5, 8), torch.randn(2, 8, 3, 3)
    got = mod(protos, fsup)
    ps = mod.w_s(protos + bcm.ring_position_encoding(5, 8))  # P W_s, (B, Np, C)
    a = torch.tanh(mod.attn(ps)) + 1
    fq = torch.einsum("dc,bchw->bdhw", mod.w_q.weight[:, :, 0, 0], fsup + mod.query_pos)
    want = torch.einsum("bnc,bchw->bnhw", a * ps, fq) / math.sqrt(8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_ring_position_encoding_distinguishes_and_wraps():
    enc = bcm.ring_position_encoding(10, 16)
    assert torch.cdist(enc, enc).fill_diagonal_(1.0).min() > 0.1  # all codes differ
    d = torch.cdist(enc, enc)
    torch.testing.assert_close(d[0, 1], d[9, 0])  # the last point neighbours the first


def test_masked_attention_adds_a_per_key_bias_eq6_eq7():
    torch.manual_seed(2)
    layer = bcm.MaskedAttentionLayer(channels=8, n_points=4, heads=2, ffn=16).eval()
    tokens, phi = torch.randn(1, 6, 8), torch.randn(1, 4, 2, 3)
    got = layer(tokens, phi)
    bias = torch.relu(
        torch.einsum("n,bnhw->bhw", layer.bias_conv.weight[0, :, 0, 0], phi) + layer.bias_conv.bias
    ).flatten(1)  # (B, L)
    q, k, v = layer.qkv(tokens).chunk(3, dim=-1)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        logits = q[0, :, sl] @ k[0, :, sl].T / 2.0 + bias[0][None, :]
        heads.append(torch.softmax(logits, -1) @ v[0, :, sl])
    x = layer.norm1(layer.proj(torch.cat(heads, -1)) + tokens[0])
    want = layer.norm2(layer.ffn(x) + x)
    torch.testing.assert_close(got[0], want, rtol=1e-4, atol=1e-5)
    assert bias.abs().sum() > 0  # the bias is not dead at this seed: the test checks it


def test_foreground_map_is_scaled_cosine_logits():
    fmap = bcm.ForegroundMap(channels=4, adaptive_threshold=False)
    cos = torch.tensor([[[0.5, 1.0], [-1.0, 0.0]]])
    torch.testing.assert_close(fmap(cos, torch.zeros(1, 4, 2, 2)), 10 * cos - 5)
    adaptive = bcm.ForegroundMap(channels=4, adaptive_threshold=True)
    feats = torch.randn(1, 4, 2, 2)
    t = adaptive.threshold(feats.mean(dim=(-2, -1)))
    torch.testing.assert_close(adaptive(cos, feats), 10 * cos - 5 - 10 * t[:, :, None])
