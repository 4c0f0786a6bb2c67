"""The review order (issue 18, part 3): the slices that need a look, lowest confidence first."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run
from napari_fob.session.review import needs_look, step_in, worst_first


def test_worst_first_orders_by_confidence_unknown_first_ties_by_slice():
    rows = [
        SimpleNamespace(z=3, confidence=0.7, needs_review=True),
        SimpleNamespace(z=1, confidence=0.2, needs_review=True),
        SimpleNamespace(z=8, confidence=0.1, needs_review=False),  # nothing to look at
        SimpleNamespace(z=6, confidence=None, needs_review=True),
        SimpleNamespace(z=2, confidence=0.7, needs_review=True),
    ]
    order = worst_first(rows)
    assert order == [6, 1, 2, 3]
    assert step_in(order, 0, 1) == 6 and step_in(order, 0, -1) == 3
    assert step_in(order, 1, 1) == 2 and step_in(order, 3, 1) is None
    assert step_in([], 0, 1) is None
    with pytest.raises(ValueError, match="step"):
        step_in(order, 1, 0)


def test_a_session_review_starts_at_its_least_confident_slice():
    zz, yy, xx = np.mgrid[:24, :48, :48]
    # a blob that fades towards its ends: the evidence falls with the distance from the support
    truth = ((yy - 24) / 10) ** 2 + ((xx - 24) / 10) ** 2 <= 1
    truth = truth & (np.abs(zz - 12) <= 9)
    noise = np.random.default_rng(0).normal(0, 4, truth.shape)
    image = (truth * (90 - 3 * np.abs(zz - 12)) + 5 + noise).astype(np.float32)
    s = AnnotationSession(
        image,
        generator=MaskRingGenerator(grid_size=96, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(0.0, 100.0),
    )
    s.set_support(1, 12, truth[12])
    run(s.predict(1, range(4, 21), threshold=0.3))
    order = needs_look(s, 1)
    confidences = [s.confidence(1, z) for z in order]
    assert sorted(order) == [z for z in range(4, 21) if z != 12]
    assert confidences == sorted(confidences) and confidences[0] < confidences[-1]
    worst = order[0]
    assert abs(worst - 12) == 8  # the far end, where the blob has faded most
    run(s.commit(1, [worst]))  # committed below the threshold: still to look at, first
    assert needs_look(s, 1)[0] == worst
    s.thresholds[1] = 0.0  # not doubtful: reviewed and committed, no longer in the order
    assert worst not in needs_look(s, 1) and len(needs_look(s, 1)) == len(order) - 1
