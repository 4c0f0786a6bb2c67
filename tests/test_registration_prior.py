"""FoB's registration prior: the footprint the in-volume additions use follows the structure
through the slices (`prior_source="registration"`), and the support prior is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_fob import geometry
from napari_fob.model.fob import build_fob
from napari_fob.prompting.in_volume import check_addition
from napari_fob.prompting.predictor import FobPredictor
from napari_fob.prompting.registration import MaskTracker

SHAPE = (64, 64)


def disk(centre, radius=9) -> np.ndarray:
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2


def moving_volume(step: int = 2, start: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Slices 0..8 of a bright disk that moves `step` px a slice to the right over textured
    tissue."""
    rng = np.random.default_rng(0)
    tissue = 0.2 + 0.1 * rng.random(SHAPE)
    masks = np.stack([disk((32, start + step * z)) for z in range(9)])
    images = np.where(masks, 0.8, tissue[None]).astype(np.float32)
    return images, masks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_tracker_carries_the_mask_through_the_slices_it_was_shown():
    images, masks = moving_volume()
    tracker = MaskTracker()
    tracker.set_support(0, images[0], masks[0])
    for z in range(1, 9):
        tracker.remember(z, images[z])
    carried = tracker.mask_at(0, 8)
    assert iou(carried, masks[8]) > 0.8 > iou(masks[0], masks[8])
    assert tracker.mask_at(0, 0) is not None and iou(tracker.mask_at(0, 0), masks[0]) == 1.0
    with pytest.raises(KeyError, match="slice 9 unseen"):
        tracker.mask_at(0, 9)
    tracker.clear()
    with pytest.raises(KeyError, match="no support on slice 0"):
        tracker.mask_at(0, 8)


def test_registration_prior_pins_the_ring_to_the_carried_footprint():
    torch.manual_seed(0)
    images, masks = moving_volume()
    tight = {"location_prior": (0.05, 0.0), "band_exclusion": None, "fg_core": None}
    reg = FobPredictor(build_fob("tiny"), device="cpu", prior_source="registration", **tight)
    sup = FobPredictor(build_fob("tiny"), device="cpu", prior_source="support", **tight)
    sup.model.load_state_dict(reg.model.state_dict())
    for p in (reg, sup):
        p.set_support(images[0], masks[0], slice_index=0)
    reg.show(list(images[1:9]), list(range(1, 9)))
    support = reg._supports[0]
    foot = reg.query_footprint(support, 8)
    truth = geometry.resize_mask_to_grid(masks[8], reg.grid_size)
    assert iou(foot.mask, truth) > 0.8 > iou(support.footprint.mask, truth)
    assert sup.query_footprint(sup._supports[0], 8) is sup._supports[0].footprint
    (moved,) = reg.predict([images[8]], slice_indices=[8])
    (fixed,) = sup.predict([images[8]], slice_indices=[8])
    true_ring = geometry.ring_points(truth, 10, r=reg.model.config.ring_r)

    def error(ps) -> float:
        return float(np.linalg.norm(ps.bg - true_ring, axis=1).mean())

    # the tight prior holds the points near the footprint: the carried one is the true one
    assert error(moved) < 3.0 < error(fixed)
    assert (reg.prior_source, sup.prior_source) == ("registration", "support")


def test_registration_prior_without_slice_indices_or_on_the_support_is_the_support_prior():
    torch.manual_seed(0)
    images, masks = moving_volume()
    reg = FobPredictor(build_fob("tiny"), device="cpu", prior_source="registration")
    reg.set_support(images[0], masks[0], slice_index=0)
    support = reg._supports[0]
    assert reg.query_footprint(support, None) is support.footprint
    assert reg.query_footprint(support, 0) is support.footprint
    reg.clear_supports()
    reg.set_support(images[0], masks[0])  # no slice index: nothing to walk from
    (ps,) = reg.predict([images[3]])
    assert ps.bg.shape == (10, 2)


def test_the_product_default_is_the_registration_prior_with_its_own_width():
    from napari_fob.prompting.generators import make_generator
    from napari_fob.prompting.in_volume import (
        DEFAULT_LOCATION_PRIOR,
        DEFAULT_PRIOR_SOURCE,
        DEFAULT_REGISTRATION_PRIOR,
    )

    model = build_fob("tiny")
    default = FobPredictor(model, device="cpu")
    assert (default.prior_source, DEFAULT_PRIOR_SOURCE) == ("registration", "registration")
    assert default.location_prior == DEFAULT_REGISTRATION_PRIOR and default.fine_ring is True
    support = FobPredictor(model, device="cpu", prior_source="support")
    assert support.location_prior == DEFAULT_LOCATION_PRIOR and support.fine_ring == "committed"
    described = make_generator("fob", model=model, device="cpu").describe()
    assert described["prior_source"] == "registration"
    assert described["location_prior"] == list(DEFAULT_REGISTRATION_PRIOR)
    paper = make_generator("fob", model=model, device="cpu", paper_inference=True).describe()
    assert paper["prior_source"] == "support" and paper["location_prior"] is None
    with pytest.raises(ValueError, match="prior_source"):
        make_generator("fob", model=model, device="cpu", prior_source="atlas")


def test_bad_prior_source_and_addition_values_are_named():
    with pytest.raises(ValueError, match="prior_source"):
        FobPredictor(build_fob("tiny"), device="cpu", prior_source="atlas")
    for name, value in [("fg_core", 1.0), ("fg_relative", 0.0), ("inward_prior", "wide")]:
        with pytest.raises(ValueError, match=name):
            check_addition(name, value)
    assert check_addition("band_exclusion", 20) == 20.0 and check_addition("fg_core", None) is None


def test_session_shows_the_walk_every_slice_between_support_and_explicit_targets():
    """Predicting one far slice gives the same prompts as predicting the whole range: the
    session shows the generator the slices in between, so the walk never jumps the gap."""
    from napari_fob.prompting.registration import RegistrationGenerator
    from napari_fob.segmenters import get_segmenter
    from napari_fob.session import AnnotationSession
    from napari_fob.session.events import run

    images, masks = moving_volume(step=4, start=14)  # 32 px in all: too far for one step
    segmenter, _ = get_segmenter("random-walker")
    rings = {}
    for name, targets in (("far", [8]), ("range", list(range(1, 9)))):
        session = AnnotationSession(
            images, generator=RegistrationGenerator(), segmenter=segmenter, window=(0.0, 1.0)
        )
        session.set_support(1, 0, masks[0])
        run(session.predict(1, targets, mode="fixed"))
        rings[name] = session.prompts[(1, 8)].bg
    np.testing.assert_allclose(rings["far"], rings["range"])
    true_ring = RegistrationGenerator().ring(masks[8])
    assert np.linalg.norm(rings["far"] - true_ring, axis=1).mean() < 2.0


def test_supports_handed_over_again_are_not_encoded_again():
    """The session hands its supports to the generator before every prediction; the encoding
    is cached by content, so only a changed support is encoded again."""
    torch.manual_seed(0)
    images, masks = moving_volume()
    predictor = FobPredictor(build_fob("tiny"), device="cpu")
    calls = []
    encode = predictor.model.encode
    predictor.model.encode = lambda x: calls.append(x.shape[0]) or encode(x)
    predictor.set_support(images[0], masks[0], slice_index=0)
    (first,) = predictor.predict([images[3]], slice_indices=[3])
    predictor.clear_supports()
    predictor.set_support(images[0], masks[0], slice_index=0)  # same content: no new encoding
    (again,) = predictor.predict([images[3]], slice_indices=[3])
    assert calls == [1, 1, 1]  # support, query, query
    np.testing.assert_allclose(first.bg, again.bg)
    changed = masks[0].copy()
    changed[32, 5:12] = True
    predictor.set_support(images[0], changed, slice_index=0)  # new content: encoded
    predictor.set_support(images[0], masks[0], slice_index=0, committed=True)  # a new version
    assert calls == [1, 1, 1, 1, 1]
    assert len(predictor.support_indices) == 1


def test_chain_footprints_are_carried_from_the_painted_support_not_a_committed_mask():
    """In chain mode a committed support gives the network its prototypes, but the footprint is
    the painted support's mask carried to the query: a committed mask's errors (here a leak)
    are not carried on, and the foreground core applies."""
    torch.manual_seed(0)
    images, masks = moving_volume()
    predictor = FobPredictor(build_fob("tiny"), device="cpu")
    predictor.set_support(images[0], masks[0], slice_index=0)
    predictor.show(list(images[1:9]), list(range(1, 9)))
    leaked = masks[5] | disk((20, 50), 8)  # the segmenter's mask on slice 5 leaked
    predictor.set_support(images[5], leaked, slice_index=5, committed=True)
    committed = [s for s in predictor._supports if s.committed][0]
    foot = predictor.query_footprint(committed, 6)
    truth = geometry.resize_mask_to_grid(masks[6], predictor.grid_size)
    assert iou(foot.mask, truth) > 0.8 and foot.depth is not None
    assert committed.footprint.depth is None  # its own footprint has no core
    (ps,) = predictor.predict([images[6]], slice_indices=[6])
    assert ps.meta["support_slice_index"] == 5  # the prototypes are the committed slice's


@pytest.mark.parametrize("how", ["explicit range, support at its end", "auto, two supports"])
def test_batches_never_make_a_walk_jump_over_slices_of_later_batches(how):
    """A target prompted in a later batch is a step of an earlier batch's walk: the session
    shows every slice of the span before the first batch (explicit slices and the inner slices
    of automatic extent), so small batches give the prompts of walking slice by slice."""
    from napari_fob.prompting.registration import RegistrationGenerator
    from napari_fob.segmenters import get_segmenter
    from napari_fob.session import AnnotationSession
    from napari_fob.session.events import run

    rng = np.random.default_rng(1)
    tissue = 0.2 + 0.1 * rng.random((64, 128))
    rr, cc = np.mgrid[:64, :128]
    masks = np.stack([(rr - 32) ** 2 + (cc - 20 - 5 * z) ** 2 <= 81 for z in range(17)])
    images = np.where(masks, 0.8, tissue[None]).astype(np.float32)  # 5 px a slice
    segmenter, _ = get_segmenter("random-walker")
    session = AnnotationSession(
        images, generator=RegistrationGenerator(), segmenter=segmenter, window=(0.0, 1.0)
    )
    session.set_support(1, 16, masks[16])
    if how.startswith("explicit"):
        run(session.predict(1, list(range(0, 16)), mode="fixed", batch_size=4))
        checked = [0, 3]  # the first batch: its walk crosses slices 4..15 of later batches
    else:
        session.set_support(1, 0, masks[0])
        run(session.predict(1, "auto", mode="fixed", batch_size=4, threshold=0.0))
        checked = [9, 10]  # walked from slice 16 through 13..15, slices of the last batch
    ring = RegistrationGenerator().ring
    for z in checked:
        error = np.linalg.norm(session.prompts[(1, z)].bg - ring(masks[z]), axis=1).mean()
        assert error < 2.0, (z, error)


def test_a_refused_support_leaves_the_others_and_paper_inference_refuses_the_prior():
    from napari_fob.prompting.generators import make_generator

    torch.manual_seed(0)
    images, masks = moving_volume()
    predictor = FobPredictor(build_fob("tiny"), device="cpu")
    predictor.set_support(images[0], masks[0], slice_index=0)
    with pytest.raises(ValueError, match="empty"):
        predictor.set_support(images[0], np.zeros(SHAPE, bool), slice_index=0)
    assert predictor.support_indices == [0]
    with pytest.raises(ValueError, match="paper inference has no location prior"):
        make_generator(
            "fob", model=build_fob("tiny"), device="cpu", paper_inference=True,
            prior_source="registration",
        )  # fmt: skip
