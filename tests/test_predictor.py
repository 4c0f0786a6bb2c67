"""FobPredictor: caching supports, mapping points back to each slice, misuse errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_fob import geometry
from napari_fob.core.prompts import PromptSet
from napari_fob.model.checkpoint import save_checkpoint
from napari_fob.model.fob import build_fob
from napari_fob.prompting.in_volume import (
    DEFAULT_INWARD_PRIOR,
    DEFAULT_LOCATION_PRIOR,
    support_core,
)
from napari_fob.prompting.predictor import FobPredictor as Predictor
from napari_fob.prompting.predictor import load_predictor


def FobPredictor(model, **options) -> Predictor:  # noqa: N802
    """The predictor with the support's own footprint as its prior: these tests are about the
    additions around it (the registration prior: test_registration_prior.py)."""
    return Predictor(model, **{"prior_source": "support", **options})


def disk(shape, centre, radius) -> np.ndarray:
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def slice_with(mask: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = 0.2 + 0.05 * rng.random(mask.shape)
    return np.where(mask, 0.8, img).astype(np.float32)


@pytest.fixture
def predictor() -> FobPredictor:
    torch.manual_seed(0)
    return FobPredictor(build_fob("tiny"), device="cpu")


def test_predict_returns_prompts_in_each_slices_pixels(predictor):
    m1 = disk((80, 100), (40, 50), 15)
    predictor.set_support(slice_with(m1), m1, slice_index=3)
    shapes = [(120, 90), (50, 70)]
    imgs = [slice_with(disk(s, (s[0] // 2, s[1] // 2), 10)) for s in shapes]
    out = predictor.predict(imgs, slice_indices=[4, 5], label=2)
    assert len(out) == 2
    for ps, shape, z in zip(out, shapes, [4, 5]):
        assert isinstance(ps, PromptSet) and ps.origin == "fob"
        assert (ps.label, ps.slice_index) == (2, z)
        assert ps.bg.shape == (10, 2) and 1 <= len(ps.fg) <= 10
        for pts in (ps.bg, ps.fg):
            assert np.all(pts >= 0) and np.all(pts[:, 0] <= shape[0] - 1)
            assert np.all(pts[:, 1] <= shape[1] - 1)
        assert ps.bg_scores.shape == (10,) and np.all((ps.bg_scores >= 0) & (ps.bg_scores <= 1))
        assert len(ps.fg_scores) == len(ps.fg) and 0 <= ps.evidence <= 1


def test_points_are_the_model_grid_points_mapped_back(predictor):
    m = disk((64, 64), (30, 30), 12)
    predictor.set_support(slice_with(m), m)
    img = slice_with(disk((128, 96), (60, 50), 20))
    (ps,) = predictor.predict([img])
    grid = geometry.resize_to_grid(img, 64)
    with torch.inference_mode():
        sup = predictor._supports[0]
        # no slice index: no location prior, but the band exclusion still applies
        region = predictor.excluded_region(sup, grid)
        prior = predictor.point_log_prior(sup, [None], region[None])
        assert prior is not None and prior.shape == (1, 1, 64, 64)
        out = predictor.model.predict_from_support(
            sup.state,
            predictor.model.encode(torch.from_numpy(grid)[None, None]),
            point_log_prior=prior,
        )
    want = np.clip(geometry.grid_to_slice(out.points[0].numpy(), (128, 96), 64), 0, [127, 95])
    np.testing.assert_allclose(ps.bg, want, rtol=1e-5, atol=1e-4)


def test_fine_ring_moves_the_papers_ring_by_the_models_displacement():
    from napari_fob.prompting.generators import MaskRingGenerator
    from napari_fob.prompting.in_volume import fine_ring_points

    torch.manual_seed(0)
    fine = FobPredictor(build_fob("tiny"), device="cpu", fine_ring=True, band_exclusion=None)
    coarse = FobPredictor(fine.model, device="cpu", band_exclusion=None)
    m = disk((96, 80), (40, 44), 15)
    q = slice_with(disk((96, 80), (44, 40), 13))
    for p in (fine, coarse):
        p.set_support(slice_with(m), m, slice_index=3)
    sup = fine._supports[0]
    # the fine ring of a support is the paper's ring (r=15, eps=2 at 256), as mask-ring draws it
    paper = MaskRingGenerator(n_bg=10)
    paper.set_support(slice_with(m), m)
    np.testing.assert_allclose(
        geometry.grid_to_slice(sup.footprint.fine_ring, m.shape, 256),
        paper.nearest(None).bg,
        atol=1e-6,
    )
    (a,) = fine.predict([q], slice_indices=[5])
    (b,) = coarse.predict([q], slice_indices=[5])
    # same model points; the fine output adds (fine ring - model ring) of the support
    model_pts = geometry.slice_to_grid(b.bg, q.shape, 64)
    moved = sup.footprint.fine_ring + (model_pts - sup.footprint.ring) * 4.0
    np.testing.assert_allclose(a.bg, geometry.grid_to_slice(moved, q.shape, 256), atol=1e-4)
    assert not np.allclose(a.bg, b.bg)
    # the default draws it for committed supports (chain mode) only
    default = FobPredictor(fine.model, device="cpu", band_exclusion=None)
    assert default.fine_ring == "committed"
    default.set_support(slice_with(m), m, slice_index=3)
    (painted,) = default.predict([q], slice_indices=[5])
    default.set_support(slice_with(m), m, slice_index=3, committed=True)
    (committed,) = default.predict([q], slice_indices=[5])
    np.testing.assert_allclose(painted.bg, b.bg, atol=1e-6)
    np.testing.assert_allclose(committed.bg, a.bg, atol=1e-6)
    with pytest.raises(ValueError, match="fine_ring"):
        FobPredictor(fine.model, device="cpu", fine_ring="always")
    dot = np.zeros((900, 900), bool)
    dot[450, 451] = True  # vanishes on the 256 grid: no fine ring, the model's points are used
    assert fine_ring_points(dot, 10) is None


def test_bg_ring_order_follows_the_supports_ring(predictor):
    m = disk((64, 64), (32, 32), 12)
    predictor.set_support(slice_with(m), m)
    ring = predictor._supports[0].footprint.ring
    np.testing.assert_array_equal(
        ring, geometry.ring_points(m, 10, r=6, eps=2)
    )  # support ring in geometry's ordering: channel k = ring position k


def test_batches_give_the_same_answer(predictor):
    m = disk((64, 64), (32, 32), 12)
    predictor.set_support(slice_with(m), m)
    imgs = [slice_with(disk((64, 64), (30 + i, 33), 11)) for i in range(5)]
    a = predictor.predict(imgs, batch_size=2)
    b = predictor.predict(imgs, batch_size=16)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.bg, y.bg, atol=1e-3)


def test_model_runs_without_tf32_convolutions_and_the_setting_is_restored(predictor):
    # TF32 convolutions on CUDA moved points against the CPU's (docs/benchmarks.md, "On a GPU")
    seen = []
    encode = predictor.model.encode

    def recording_encode(x):
        seen.append((torch.backends.cudnn.allow_tf32, torch.is_inference_mode_enabled()))
        return encode(x)

    predictor.model.encode = recording_encode
    m = disk((64, 64), (32, 32), 12)
    for setting in (True, False):
        torch.backends.cudnn.allow_tf32 = setting
        try:
            predictor.set_support(slice_with(m), m)
            predictor.predict([slice_with(m)])
            assert torch.backends.cudnn.allow_tf32 is setting
        finally:
            torch.backends.cudnn.allow_tf32 = True
    assert seen == [(False, True)] * 3  # the second support is the same: its encoding cached


def test_nearest_support_is_used(predictor):
    ma, mb = disk((64, 64), (20, 20), 8), disk((64, 64), (40, 40), 14)
    predictor.set_support(slice_with(ma), ma, slice_index=0)
    predictor.set_support(slice_with(mb), mb, slice_index=10)
    q = slice_with(disk((64, 64), (32, 32), 10))
    out = predictor.predict([q, q, q, q], slice_indices=[1, 4, 5, 9])
    assert [p.meta["support_slice_index"] for p in out] == [0, 0, 0, 10]  # tie at 5 -> lower
    assert not np.allclose(out[0].bg, out[3].bg)
    predictor.set_support(slice_with(mb), mb, slice_index=0)  # same index replaces
    assert predictor.support_indices == [10, 0]
    with pytest.raises(ValueError, match="slice_indices"):
        predictor.predict([q])


def test_misuse_fails_fast(predictor):
    img = np.zeros((32, 32), np.float32)
    with pytest.raises(RuntimeError, match="set_support"):
        predictor.predict([img])
    with pytest.raises(ValueError, match="empty"):
        predictor.set_support(img, np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="shape"):
        predictor.set_support(img, np.ones((31, 32), bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor.set_support(img + 200, np.ones((32, 32), bool))
    m = disk((32, 32), (16, 16), 6)
    predictor.set_support(slice_with(m), m)
    with pytest.raises(ValueError, match="query image 1"):
        predictor.predict([img, np.zeros((3, 4, 5), np.float32)])
    with pytest.raises(ValueError, match="slice_indices"):
        predictor.predict([img], slice_indices=[1, 2])
    predictor.clear_supports()
    with pytest.raises(RuntimeError, match="set_support"):
        predictor.predict([img])


@pytest.mark.usefixtures("without_shipped_model")
def test_load_predictor(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", build_fob("tiny"))
    pred = load_predictor(str(path), device="cpu")
    assert pred.grid_size == 64 and str(pred.device) == "cpu"
    with pytest.raises(FileNotFoundError, match="fob-compact.pt"):
        load_predictor("default", device="cpu")


def test_importing_predictor_and_config_loads_neither_torch_nor_napari():
    code = (
        "import sys, napari_fob.prompting.predictor, napari_fob.model\n"
        "napari_fob.model.get_config('tiny')\n"
        "bad = [m for m in ('torch', 'napari', 'qtpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_location_prior_holds_points_near_the_support_ring_by_dz():
    torch.manual_seed(0)
    plain = {"band_exclusion": None}  # the prior alone
    tight = FobPredictor(build_fob("tiny"), device="cpu", location_prior=(0.05, 0.0), **plain)
    free = FobPredictor(build_fob("tiny"), device="cpu", location_prior=None, **plain)
    free.model.load_state_dict(tight.model.state_dict())
    m = disk((64, 64), (32, 32), 12)
    q = slice_with(disk((64, 64), (36, 30), 9))
    for p in (tight, free):
        p.set_support(slice_with(m), m, slice_index=10)
    ring = tight._supports[0].footprint.ring
    (held,) = tight.predict([q], slice_indices=[14])
    (unheld,) = free.predict([q], slice_indices=[14])
    # a 0.05-px prior pins the coarse points (which seed SPR) to the support ring; the random
    # tiny model's SPR then moves them by at most its offset radius
    with torch.inference_mode():
        sup = tight._supports[0].state
        x = torch.from_numpy(q)[None, None]
        sig = torch.tensor([tight.prior_sigma(10, 14)])
        from napari_fob.model.fob import location_log_prior

        prior = location_log_prior(torch.from_numpy(ring.astype(np.float32)), sig, 64)
        out = tight.model.predict_from_support(sup, tight.model.encode(x), point_log_prior=prior)
    np.testing.assert_array_equal(out.coarse_points[0].numpy(), np.round(ring))
    np.testing.assert_allclose(held.bg, out.points[0].numpy(), atol=1e-4)
    assert not np.allclose(held.bg, unheld.bg)
    # the width grows with |dz| and is given in pixels of a 256 grid
    p = FobPredictor(build_fob("tiny"), device="cpu", location_prior=(1.0, 0.5))
    assert p.prior_sigma(10, 10) == pytest.approx(0.25)  # tiny grid 64: 1 px at 256 = 0.25
    assert p.prior_sigma(10, 2) == pytest.approx((1 + 0.5 * 8) / 4)
    assert p.prior_sigma(None, 2) == float("inf") == p.prior_sigma(3, None)
    with pytest.raises(ValueError, match="location_prior"):
        FobPredictor(build_fob("tiny"), device="cpu", location_prior=(0.0, 1.0))


def test_inference_prior_is_the_tuned_default_whatever_the_training_prior():
    # the prior a model was trained with seeds SPR in training; inference uses the width tuned
    # on the tuning phantoms unless asked for the training one with "model"
    trained = build_fob("tiny", heat_loss="softmax-ce", location_prior=(2.0, 0.25))
    assert FobPredictor(trained, device="cpu").location_prior == DEFAULT_LOCATION_PRIOR
    assert FobPredictor(trained, device="cpu").inward_prior == DEFAULT_INWARD_PRIOR
    assert FobPredictor(trained, device="cpu", location_prior="model").location_prior == (2.0, 0.25)
    untrained = FobPredictor(build_fob("tiny"), device="cpu", location_prior="model")
    assert untrained.location_prior == DEFAULT_LOCATION_PRIOR
    assert DEFAULT_LOCATION_PRIOR == (1.0, 0.75) and DEFAULT_INWARD_PRIOR == 1.0


def test_evidence_is_the_calibrated_confidence_and_falls_where_the_structure_ends(predictor):
    from napari_fob.prompting.confidence import calibrated

    m = disk((64, 64), (32, 32), 12)
    predictor.set_support(slice_with(m), m, slice_index=0)
    present = slice_with(disk((64, 64), (32, 32), 11))
    ended = slice_with(np.zeros((64, 64), bool))
    a, b = predictor.predict([present, ended], slice_indices=[1, 2])
    band = [p.meta["confidence_features"]["band"] for p in (a, b)]
    assert band[0] > 0.7 and band[1] < 0.05  # the footprint's intensity-band overlap
    assert a.evidence == pytest.approx(calibrated(a.meta["confidence_features"]))
    assert a.evidence > 3 * b.evidence
    assert 0 <= a.meta["fg_map_max"] <= 1  # FoB's own map is kept for inspection


def test_location_log_prior_values():
    from napari_fob.model.fob import location_log_prior

    ring = torch.tensor([[2.0, 3.0], [5.0, 5.0]])
    lp = location_log_prior(ring, torch.tensor([1.0, 2.0]), 8)
    assert lp.shape == (2, 2, 8, 8)
    assert lp[0, 0, 2, 3] == 0 and lp[1, 1, 5, 5] == 0
    assert lp[0, 0, 2, 5] == pytest.approx(-2.0) and lp[1, 0, 2, 5] == pytest.approx(-0.5)
    flat = location_log_prior(ring, torch.tensor([float("inf")]), 8)
    assert torch.all(flat == 0)


def test_foreground_threshold_relative_to_the_maps_maximum():
    torch.manual_seed(0)
    model = build_fob("tiny")
    with torch.no_grad():
        model.fg_map.offset.fill_(-20.0)  # C = sigmoid(10 cos - 20) < 0.9 everywhere
    fixed = FobPredictor(model, device="cpu", fg_relative=None, fg_core=None)
    relative = FobPredictor(model, device="cpu", fg_core=None)  # the map's own rule
    assert relative.fg_relative == 0.7
    m = disk((64, 64), (32, 32), 14)
    for p in (fixed, relative):
        p.set_support(slice_with(m), m, slice_index=0)
    q = slice_with(disk((64, 64), (33, 31), 13))
    (a,) = fixed.predict([q], slice_indices=[1])
    (b,) = relative.predict([q], slice_indices=[1])
    assert len(a.fg) == 1  # nothing passes T = 0.9: the paper's rule falls back to the argmax
    assert len(b.fg) > 1 and np.all(b.fg_scores >= 0.7 * b.meta["fg_map_max"] - 1e-6)
    with pytest.raises(ValueError, match="fg_relative"):
        FobPredictor(model, device="cpu", fg_relative=1.5)


def test_foreground_points_spread_over_the_support_core_where_the_query_agrees():
    """A large bright structure whose map C peaks on a small patch: with `fg_core` the points
    spread over the support mask's core inside the query's structure region, with C at least
    half its maximum; without, they bunch where C is highest. A query where the structure has
    left the footprint falls back to the map's own rule."""
    torch.manual_seed(0)
    model = build_fob("tiny")
    core = FobPredictor(model, device="cpu")
    plain = FobPredictor(model, device="cpu", fg_core=None)
    assert core.fg_core == 0.75 and plain.fg_core is None
    m = disk((64, 64), (32, 32), 20)
    for p in (core, plain):
        p.set_support(slice_with(m), m, slice_index=0)
    sup = core._supports[0]
    assert sup.footprint.depth is not None and plain._supports[0].footprint.depth is None
    q = slice_with(disk((64, 64), (33, 31), 19))
    (a,) = core.predict([q], slice_indices=[3])
    (b,) = plain.predict([q], slice_indices=[3])
    region = core.excluded_region(sup, q)
    inner = support_core(sup.footprint.depth, 0.75, core.prior_sigma(0, 3))
    assert inner.any() and not (inner & ~sup.footprint.mask).any()
    rc = np.round(a.fg).astype(int)  # the tiny grid equals the slice: 64 x 64
    assert inner[rc[:, 0], rc[:, 1]].all() and region[rc[:, 0], rc[:, 1]].all()
    assert np.all(a.fg_scores >= 0.5 * a.meta["fg_map_max"] - 1e-6)
    assert len(a.fg) == model.config.n_fg and not np.allclose(a.fg[: len(b.fg)], b.fg)
    # the structure moved off the footprint: no candidates, the map's rule as without
    away = slice_with(disk((64, 64), (10, 10), 6))
    (c,) = core.predict([away], slice_indices=[9])
    (d,) = plain.predict([away], slice_indices=[9])
    np.testing.assert_array_equal(c.fg, d.fg)
    # a committed support (chain mode) keeps the map's rule: its errors would be carried on
    core.set_support(slice_with(m), m, slice_index=5, committed=True)
    plain.set_support(slice_with(m), m, slice_index=5, committed=True)
    assert core._supports[-1].footprint.depth is None
    (e,) = core.predict([q], slice_indices=[6])
    (f,) = plain.predict([q], slice_indices=[6])
    np.testing.assert_array_equal(e.fg, f.fg)
    with pytest.raises(ValueError, match="fg_core"):
        FobPredictor(model, device="cpu", fg_core=1.0)


def test_committed_supports_take_the_painted_band_for_evidence(predictor):
    img = np.full((64, 64), 0.1, np.float32)
    img[20:44, 20:44] = 0.8
    img[20:44, 44:60] = 0.3
    painted = np.zeros((64, 64), bool)
    painted[22:42, 22:42] = True
    leaked = np.zeros((64, 64), bool)
    leaked[22:42, 40:58] = True
    predictor.set_support(img, painted, slice_index=10)
    predictor.set_support(img, leaked, slice_index=12)
    (own,) = predictor.predict([img], slice_indices=[13])
    predictor.set_support(img, leaked, slice_index=12, committed=True)
    (ref,) = predictor.predict([img], slice_indices=[13])
    band = [p.meta["confidence_features"]["band"] for p in (own, ref)]
    assert band[0] > 0.9 and band[1] < 0.5 and own.evidence > ref.evidence


def test_inward_prior_makes_moving_into_the_structure_dearer_than_moving_out():
    from napari_fob.prompting.in_volume import inward_depth

    m = disk((64, 64), (32, 32), 10)
    depth = inward_depth(m, 6)
    assert depth[32, 32 + 16] == 0  # on or beyond the ring radius: free
    assert depth[32, 32 + 13] == pytest.approx(3, abs=1)  # 3 px inside the ring radius
    assert depth[32, 32] > 6  # the centre of the support: deepest
    torch.manual_seed(0)
    plain = FobPredictor(build_fob("tiny"), device="cpu", inward_prior=None)
    inward = FobPredictor(build_fob("tiny"), device="cpu", inward_prior=1.0)
    for p in (plain, inward):
        p.set_support(slice_with(m), m, slice_index=0)
    a = plain.point_log_prior(plain._supports[0], [4, None])
    b = inward.point_log_prior(inward._supports[0], [4, None])
    assert a.shape == b.shape == (2, 10, 64, 64)
    ring = inward._supports[0].footprint.ring.round().astype(int)
    k, (r, c) = 0, ring[0]
    # at the ring point the two priors agree; 3 px inwards (towards the centre) costs more
    # with the inward penalty, 3 px outwards the same
    step = np.sign(np.array([32, 32]) - ring[0]) * 3
    inside, outside = (r + step[0], c + step[1]), (r - step[0], c - step[1])
    assert b[0, k, r, c] == a[0, k, r, c]
    assert b[0, k][inside] < a[0, k][inside]
    assert b[0, k][outside] == a[0, k][outside]
    assert torch.all(b[1] == 0)  # no slice index: no location prior
    assert plain.point_log_prior(plain._supports[0], [None]) is None  # no query: no exclusion
    with pytest.raises(ValueError, match="inward_prior"):
        FobPredictor(build_fob("tiny"), device="cpu", inward_prior=0.0)


def test_structure_region_follows_the_band_from_the_mask_within_reach():
    from napari_fob.core.intensity import structure_region

    img = np.full((64, 64), 0.2, np.float32)
    img[20:44, 10:40] = 0.6  # the structure, grown past the painted outline
    img[20:44, 41:60] = 0.6  # touching tissue of the same intensity, 1 px apart
    img[2:8, 2:8] = 0.6  # same intensity, far away
    painted = np.zeros((64, 64), bool)
    painted[24:40, 14:34] = True
    region = structure_region(img, painted, (0.5, 0.7), reach=40)
    assert region[20:44, 10:40].all()  # the whole structure, beyond the painted outline
    assert not region[2:8, 2:8].any() and not region[41:60, 41:60].any()
    assert not region[20:44, 41:60].any()  # not connected through in-band pixels
    near = structure_region(img, painted, (0.5, 0.7), reach=3)
    assert near[24:40, 11:37].all() and near[21:43, 14:34].all()  # 3 px around the painted
    assert not near[20, 10] and not near[30, 39]
    with pytest.raises(ValueError, match="structure_region"):
        structure_region(img, painted[:10], (0.5, 0.7), reach=3)


def test_band_exclusion_moves_ring_points_off_a_structure_that_grew():
    """A support ring drawn around a small disk, a query where the same bright structure is
    much larger: with the band exclusion no ring point stays on it; without, some do."""
    torch.manual_seed(0)
    small, large = disk((64, 64), (32, 32), 9), disk((64, 64), (32, 32), 16)
    img_s, img_l = slice_with(small), slice_with(large)
    on = FobPredictor(build_fob("tiny"), device="cpu")
    off = FobPredictor(on.model, device="cpu", band_exclusion=None)
    inside = {}
    for name, p in (("on", on), ("off", off)):
        p.set_support(img_s, small, slice_index=0)
        (ps,) = p.predict([img_l], slice_indices=[20])  # far: a prior as wide as the growth
        rc = np.round(ps.bg).astype(int)
        inside[name] = int(large[rc[:, 0], rc[:, 1]].sum())
    sup = on._supports[0]
    region = on.excluded_region(sup, img_l)
    assert region[large].all()  # the grown structure (plus its margin) is excluded
    assert not region[0, 0]
    assert inside["on"] < inside["off"], inside
    with torch.inference_mode():  # the coarse points SPR starts from are all off the region
        prior = on.point_log_prior(sup, [20], region[None])
        out = on.model.predict_from_support(
            sup.state, on.model.encode(torch.from_numpy(img_l)[None, None]), point_log_prior=prior
        )
    coarse = out.coarse_points[0].round().long().numpy()
    assert not region[coarse[:, 0], coarse[:, 1]].any()
    assert on.band_exclusion == 20.0 and off.band_exclusion is None
    with pytest.raises(ValueError, match="band_exclusion"):
        FobPredictor(on.model, device="cpu", band_exclusion=-1.0)


def test_support_core_and_its_foreground_candidates():
    from napari_fob.geometry import mask_depth
    from napari_fob.prompting.in_volume import FG_CORE_FLOOR, core_foreground_candidates

    m = disk((64, 64), (32, 32), 20)
    depth = mask_depth(m)
    core = support_core(depth, 0.75)
    assert core.any() and not (core & ~m).any() and core.sum() < support_core(depth, 0.25).sum()
    assert support_core(depth, 0.0).sum() == m.sum()
    # no deeper than the structure may move at this |dz| (the prior's width): only deeper pixels
    assert support_core(depth, 0.0, sigma=15.0).sum() < support_core(depth, 0.0).sum()
    assert not support_core(depth, 0.75, sigma=float("inf")).any()
    prob = np.linspace(0.0, 1.0, 64 * 64).reshape(64, 64)
    cand = core_foreground_candidates(core, np.ones_like(m), prob)
    assert cand is not None and not (cand & ~core).any()
    assert FG_CORE_FLOOR == 0.0 and cand.sum() == core.sum()  # the map does not gate the core
    assert core_foreground_candidates(core, np.zeros_like(m), prob) is None  # nothing agrees
    import napari_fob.prompting.in_volume as in_volume

    in_volume.FG_CORE_FLOOR = 0.5  # a network whose map is trusted inside the structure
    try:
        gated = core_foreground_candidates(core, np.ones_like(m), prob)
        assert gated is not None and gated.sum() < cand.sum()
        assert prob[gated].min() >= 0.5 * prob.max()
    finally:
        in_volume.FG_CORE_FLOOR = FG_CORE_FLOOR
