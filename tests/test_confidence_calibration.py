"""The calibrated per-slice confidence (`prompting.confidence`): its features on simple slices,
the fitting script's refusal of test structures, and on the abdomen phantom: a support painted
off its organ lowers the confidence, automatic extent from the left kidney stops at the
kidney's ends, in fixed and in chain mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_fob.prompting import confidence
from napari_fob.prompting.confidence import FEATURES, calibrated, edge_contrast, slice_features

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(module)
    return module


def disk(radius: float, centre=(64, 64), shape=(128, 128)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def organ_slice(mask: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 0.02, mask.shape)
    return np.clip(0.2 + 0.5 * mask + noise, 0, 1).astype(np.float32)


def test_edge_contrast_sees_an_outline_and_not_a_mask_over_flat_tissue():
    m = disk(20)
    image = organ_slice(m)
    assert edge_contrast(image, m) > 5.0
    assert edge_contrast(1.0 - image, m) < -5.0  # a dark structure: negative, same size
    flat = organ_slice(np.zeros_like(m))
    assert abs(edge_contrast(flat, m)) < 0.5
    assert edge_contrast(image, np.zeros_like(m)) == 0.0


def test_features_of_the_support_itself_and_of_a_slice_where_the_organ_has_gone():
    m = disk(20)
    image = organ_slice(m)
    band = (0.6, 0.8)
    same = slice_features(image, m, image, m, band, dz=1)
    assert set(same) == set(FEATURES)
    assert same["band"] > 0.9 and same["ncc_s"] > 0.99 and same["area"] == 0.0
    assert same["edge_ratio"] == pytest.approx(1.0) and same["shift"] == 0.0
    gone = slice_features(organ_slice(np.zeros_like(m), 1), m, image, m, band, dz=5)
    assert gone["band"] < 0.05 and abs(gone["edge_ratio"]) < 0.2 and gone["level"] > 1.0
    assert gone["dz"] == pytest.approx(np.log(6.0))
    # another slice size: everything is measured at the same grid
    big = slice_features(
        np.kron(image, np.ones((2, 2), np.float32)), np.kron(m, np.ones((2, 2), bool)),
        image, m, band, dz=1,
    )  # fmt: skip
    assert big["edge_ratio"] == pytest.approx(1.0, abs=0.15) and abs(big["area"]) < 0.05


def test_calibrated_is_presence_times_quality_each_a_logistic_map():
    feats = {"band": 0.5, "band_log": np.log(0.55), "edge_ratio": 2.0}
    presence = {"intercept": 0.5, "weights": {"band": 2.0}, "mean": {"band": 0.0},
                "scale": {"band": 0.5}}  # fmt: skip
    quality = {"intercept": -1.0, "weights": {"edge_ratio": -1.0}, "mean": {"edge_ratio": 1.0},
               "scale": {"edge_ratio": 2.0}}  # fmt: skip
    p = 1.0 / (1.0 + np.exp(-(0.5 + 2.0 * 1.0)))
    q = 1.0 / (1.0 + np.exp(-(-1.0 - 1.0 * 0.5)))
    assert calibrated(feats, presence, quality) == pytest.approx(p * q)
    for model in (confidence.PRESENCE, confidence.QUALITY):
        assert set(model["weights"]) <= set(FEATURES)
        assert set(model["weights"]) == set(model["mean"]) == set(model["scale"])
        assert all(s > 0 for s in model["scale"].values())
    assert 0.0 < confidence.AUTO_THRESHOLD < 1.0
    # a report from before band_log existed is scored the same
    full = slice_features(organ_slice(disk(20)), disk(18), organ_slice(disk(20)), disk(20),
                          (0.6, 0.8), dz=3)  # fmt: skip
    old = {k: v for k, v in full.items() if k != "band_log"}
    assert calibrated(old) == pytest.approx(calibrated(full))


def _unit(structure: str, split: str, rng: np.random.Generator) -> dict:
    feats, dice = {}, {}
    for z in range(0, 20):
        inside = 4 <= z <= 15
        band = float(np.clip(rng.normal(0.8 if inside else 0.2, 0.1), 0, 1))
        feats[str(z)] = {name: 0.0 for name in FEATURES} | {
            "band": band,
            "band_log": np.log(band + 0.05),
        }
        if inside and z % 3 == 0:
            dice[str(z)] = float(np.clip(band - 0.1, 0, 1))
    return {
        "method": "fob", "split": split, "plane": "axial", "structure": structure,
        "support": 10, "first": 4, "last": 15, "features": feats, "dice": dice,
    }  # fmt: skip


def test_the_fitting_script_refuses_test_structures_and_fits_tune_ones():
    fit = _bench("fit_confidence")
    rng = np.random.default_rng(0)
    tune = [_unit(f"Area_{k}_{s}", "tune", rng) for k in range(4) for s in "LR"]
    for target in fit.TARGETS:
        with pytest.raises(ValueError, match="test structure"):
            fit.fit([*tune, _unit("Caudate_L", "test", rng)], ("band",), 2, target=target)
        with pytest.raises(ValueError, match="test structure"):  # whatever split it claims
            fit.fit([*tune, _unit("Putamen_R", "tune", rng)], ("band",), 2, target=target)
    report = {"units": [*tune, _unit("Thalamus_L", "test", rng)]}
    assert fit.tune_units(report) == tune
    result = fit.fit(fit.tune_units(report), ("band", "dz"), 2, target="quality")
    assert result["features"] == ["band"]  # dz is constant here: it cannot lower the loss
    assert result["weights"]["band"] > 0
    assert "Thalamus_L" not in result["structures"]
    presence = fit.fit(tune, ("band_log",), 1, target="presence", select=False)
    assert presence["weights"]["band_log"] > 0  # in-extent slices have the higher band


@pytest.fixture(scope="module")
def abdomen():
    from napari_fob.prompting.generators import make_generator
    from napari_fob.samples import load_sample, support_slices
    from napari_fob.segmenters import get_segmenter

    sample = load_sample("abdomen-phantom")
    generator = make_generator("fob", device="cpu")  # the product's generator and model
    return sample, support_slices(sample.labels), generator, get_segmenter("random-walker")[0]


def _session(abdomen, label: int, support_mask=None):
    from napari_fob.session import AnnotationSession

    sample, supports, generator, segmenter = abdomen
    s = AnnotationSession(sample.image, generator=generator, segmenter=segmenter)
    z = supports[label]
    s.set_support(label, z, sample.labels[z] == label if support_mask is None else support_mask)
    return s


LEFT_KIDNEY = 3


def test_auto_extent_from_the_left_kidney_stops_at_its_ends(abdomen):
    # with the band-overlap evidence alone this walk once ran 20 slices on into the spleen
    from napari_fob.session import run

    sample = abdomen[0]
    s = _session(abdomen, LEFT_KIDNEY)
    done = run(s.predict(LEFT_KIDNEY, "auto"))
    organ = np.flatnonzero((sample.labels == LEFT_KIDNEY).any(axis=(1, 2)))  # 8..32
    assert abs(min(done) - organ[0]) <= 2 and abs(max(done) - organ[-1]) <= 2, (done, organ)


def test_chain_mode_measures_the_baselines_from_the_painted_support(abdomen):
    """A committed chain mask is the support of its neighbour, but the confidence measures the
    slice against the painted support that vouches for it (as FoB's does): with the committed
    neighbour as reference |dz| stayed 1, and the chain walked the left kidney to the volume's
    edges (Dice 0.007 in the demo)."""
    from napari_fob.prompting.generators import make_generator
    from napari_fob.session import AnnotationSession, run

    sample, supports, _, segmenter = abdomen
    z = supports[LEFT_KIDNEY]
    s = AnnotationSession(sample.image, generator=make_generator("mask-ring"), segmenter=segmenter)
    s.set_support(LEFT_KIDNEY, z, sample.labels[z] == LEFT_KIDNEY)
    done = run(s.predict(LEFT_KIDNEY, "auto", mode="chain"))
    for k in (z + 6, z - 6):  # each prompted from its committed neighbour
        dz = s.prompts[(LEFT_KIDNEY, k)].meta["confidence_features"]["dz"]
        assert dz == pytest.approx(np.log(7.0)), k
    organ = np.flatnonzero((sample.labels == LEFT_KIDNEY).any(axis=(1, 2)))  # 8..32
    assert organ[0] - 4 <= min(done) and max(done) <= organ[-1] + 4, (done, organ)


def test_a_support_painted_off_the_kidney_lowers_the_confidence(abdomen):
    from napari_fob.session import run

    bench = _bench("confidence")
    sample, supports = abdomen[0], abdomen[1]
    z = supports[LEFT_KIDNEY]
    organ = np.flatnonzero((sample.labels == LEFT_KIDNEY).any(axis=(1, 2)))
    zs = [k for k in range(organ[0], organ[-1] + 1) if k != z]
    right = _session(abdomen, LEFT_KIDNEY)
    wrong = _session(abdomen, LEFT_KIDNEY, bench.shifted_support(sample.labels[z] == LEFT_KIDNEY))
    run(right.predict(LEFT_KIDNEY, zs))
    run(wrong.predict(LEFT_KIDNEY, zs))
    ours = np.mean([right.confidence(LEFT_KIDNEY, k) for k in zs])
    moved = np.mean([wrong.confidence(LEFT_KIDNEY, k) for k in zs])
    # measured 0.40 -> 0.30: lower, though not below the auto-extent cut (docs/benchmarks.md)
    assert moved < 0.85 * ours, (ours, moved)


def test_fob_measures_each_query_against_its_neighbour_on_the_way_to_the_support():
    import torch

    from napari_fob.model.fob import build_fob
    from napari_fob.prompting.predictor import FobPredictor

    torch.manual_seed(0)
    masks = [disk(14, centre=(64, 40 + 4 * z)) for z in range(8)]  # a disk drifting sideways
    images = [organ_slice(m, seed=z) for z, m in enumerate(masks)]
    predictor = FobPredictor(build_fob("tiny"), device="cpu")  # registration prior (default)
    predictor.set_support(images[0], masks[0], slice_index=0)
    out = predictor.predict(images[1:], slice_indices=list(range(1, 8)))
    far = out[-1].meta["confidence_features"]  # slice 7: 28 px from the support's disk
    assert far["ncc_n"] > far["ncc_s"] + 0.2  # slice 6 looks like it, the support does not
    assert far["iou_n"] > 0.5 and far["dz"] == pytest.approx(np.log(8.0))
    assert [p.evidence for p in out] == [calibrated(p.meta["confidence_features"]) for p in out]


def test_the_phantom_extent_script_reads_each_cuts_stop_from_one_walk():
    """scripts/phantom_extent.py (the phantom half of the default cut's choice): a walk stops
    at the first slice below the cut, on each side of the support; the table scores it."""
    spec = importlib.util.spec_from_file_location(
        "phantom_extent", Path(__file__).resolve().parents[1] / "scripts" / "phantom_extent.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    conf = {8: 0.01, 9: 0.07, 10: 0.5, 12: 0.3, 13: 0.05, 14: 0.2}
    assert script.stop(conf, 11, -1, 0.06) == 9 and script.stop(conf, 11, +1, 0.06) == 12
    unit = {"method": "m", "support": 11, "first": 9, "last": 13, "confidence": conf}
    row = next(
        line for line in script.table([unit], ["m"]).splitlines() if line.startswith("| 0.06 ")
    )
    assert row == "| 0.06 | 0.50 |"  # (|9 - 9| + |12 - 13|) / 2
