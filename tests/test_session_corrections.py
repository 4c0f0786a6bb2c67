"""Corrections propagate (issue 18, part 2): a corrected, committed slice re-predicts the
predicted slices around it, never a slice the user touched, as one undo step, unless off."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run
from napari_fob.session.corrections import REPREDICTED, span

Z, Y, X = 32, 64, 64


def volume() -> tuple[np.ndarray, np.ndarray]:
    """A drifting, growing ellipse on slices 4..27, so prompts differ from slice to slice."""
    zz, yy, xx = np.mgrid[:Z, :Y, :X]
    cy, cx = 28 + 0.5 * (zz - 16), 30 + 0.3 * (zz - 16)
    truth = ((yy - cy) / (9 + 0.3 * np.abs(zz - 16))) ** 2 + ((xx - cx) / 11) ** 2 <= 1
    truth &= (zz >= 4) & (zz <= 27)
    noise = np.random.default_rng(1).normal(0, 3, truth.shape)
    return (truth * 80 + noise).astype(np.float32), truth


def make_session(propagate: bool = True) -> AnnotationSession:
    image, truth = volume()
    s = AnnotationSession(
        image,
        generator=MaskRingGenerator(grid_size=128, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(-20.0, 120.0),
        propagate_corrections=propagate,
    )
    s.set_support(1, 16, truth[16])
    run(s.predict(1, range(8, 25)))  # 8..24 predicted from the support on 16
    return s


def state(s: AnnotationSession) -> dict:
    return {
        k: (s.slice_status(*k), s.prompts[k].to_dict() if k in s.prompts else None)
        for k in s.slices.keys(1)
    }


def correct(s: AnnotationSession, z: int) -> None:
    """A user's correction: move the first ring point outward by 3 pixels."""
    bg = s.prompts[(1, z)].bg
    s.move_point(1, z, "bg", 0, bg[0] + np.sign(bg[0] - bg.mean(axis=0)) * 3)


@pytest.fixture
def session() -> AnnotationSession:
    s = make_session()
    correct(s, 22)  # edited, not committed: a user-touched slice
    run(s.commit(1, [10]))  # committed as predicted: user-touched too
    return s


def test_the_run_stops_at_supports_touched_slices_and_the_end_of_prediction(session):
    assert span(session, 1, 19) == [17, 18, 20, 21]  # 16 support, 22 edited
    assert span(session, 1, 12) == [11, 13, 14, 15]  # 10 committed, 16 support
    assert span(session, 1, 23) == [24]  # 25 was never predicted
    assert span(session, 1, 19, stop=[20]) == [17, 18]


def test_a_corrected_commit_repredicts_its_side_of_the_run_only(session):
    before = state(session)
    correct(session, 19)
    run(session.commit(1, [19]))
    after = state(session)
    changed = sorted(z for (_, z) in after if after[(1, z)] != before.get((1, z)))
    # 18 (|dz| 1 from 19, 2 from the support), 20 and 21 (the edited 22 is no anchor); 17 is
    # nearer the support and would get its old prompts back; 19 itself is now committed
    assert changed == [18, 19, 20, 21]
    for z in (18, 20, 21):
        p = session.prompts[(1, z)]
        assert session.slice_status(1, z) == "predicted" and p.meta[REPREDICTED] == 19
        assert p.origin == "mask-ring"
    assert session.slice_status(1, 19) == "committed"
    assert session.slice_status(1, 22) == "edited" and session.prompts[(1, 22)].origin == "user"
    assert after[(1, 22)] == before[(1, 22)] and after[(1, 10)] == before[(1, 10)]
    # the re-predicted prompts follow the corrected mask, not the support's
    mask19 = session.labels[19] == 1
    ring21 = session.prompts[(1, 21)].bg
    old21 = np.asarray(before[(1, 21)][1]["bg"])
    centre = np.argwhere(mask19).mean(axis=0)
    assert np.abs(ring21.mean(axis=0) - centre).sum() < np.abs(old21.mean(axis=0) - centre).sum()


def test_one_undo_restores_the_predictions_and_keeps_the_commit(session):
    correct(session, 19)
    edited = state(session)
    labels = session.labels.copy()
    run(session.commit(1, [19]))
    committed = session.labels.copy()
    assert session.undo()
    restored = state(session)
    assert {k: v for k, v in restored.items() if k != (1, 19)} == {
        k: v for k, v in edited.items() if k != (1, 19)
    }
    assert session.slice_status(1, 19) == "committed"
    np.testing.assert_array_equal(session.labels, committed)
    assert session.undo()  # the commit itself
    assert state(session) == edited
    np.testing.assert_array_equal(session.labels, labels)
    assert session.redo() and session.redo()
    assert session.prompts[(1, 20)].meta[REPREDICTED] == 19


def test_uncorrected_commits_and_the_toggle_off_repredict_nothing():
    s = make_session()
    before = state(s)
    run(s.commit(1, [19]))  # committed as predicted: no correction
    assert {k: v for k, v in state(s).items() if k != (1, 19)} == {
        k: v for k, v in before.items() if k != (1, 19)
    }
    off = make_session(propagate=False)
    correct(off, 19)
    before = state(off)
    run(off.commit(1, [19]))
    after = state(off)
    assert [k for k in after if after[k] != before.get(k)] == [(1, 19)]
    assert not any(REPREDICTED in p.meta for p in off.prompts.values())


def test_a_range_commit_bounds_the_run_by_what_it_wrote():
    s = make_session()
    correct(s, 19)
    before = state(s)
    run(s.commit(1, [19, 21]))  # 21 is committed with 19: it ends the run above
    repredicted = sorted(z for (_, z), p in s.prompts.items() if REPREDICTED in p.meta)
    assert repredicted == [18, 20]
    assert s.slice_status(1, 21) == "committed" and REPREDICTED not in s.prompts[(1, 21)].meta
    after = state(s)
    assert all(after[(1, z)] == before[(1, z)] for z in (22, 23, 24))


def test_an_earlier_correction_is_an_anchor_of_the_next():
    s = make_session()
    correct(s, 20)
    run(s.commit(1, [20]))
    correct(s, 24)
    run(s.commit(1, [24]))
    # the verified 20 is an anchor: 21 is nearer it, 22 is a tie (the lower anchor wins), so
    # only 23 comes from 24; 21 and 22 keep their prompts from the first correction
    assert s.prompts[(1, 23)].meta[REPREDICTED] == 24
    assert s.prompts[(1, 21)].meta[REPREDICTED] == 20
    assert s.prompts[(1, 22)].meta[REPREDICTED] == 20
