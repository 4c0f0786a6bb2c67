"""The session with the real model parts: tiny FoB prompts and a tiny SAM segmenter."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.prompting.generators import make_generator
from napari_fob.session import AnnotationSession, run
from test_session import assert_same, phantom, snapshot


@pytest.fixture
def session():
    import torch

    from napari_fob.model.fob import build_fob
    from napari_fob.segmenters.sam import SamSegmenter
    from napari_fob.segmenters.sam_models import build_tiny_sam

    torch.manual_seed(0)
    image, truth = phantom()
    s = AnnotationSession(
        image,
        generator=make_generator("fob", model=build_fob("tiny"), device="cpu"),
        segmenter=SamSegmenter.from_model(build_tiny_sam(0), model_id="tiny-0", device="cpu"),
        window=(-20.0, 140.0),
    )
    s.set_support(1, 16, truth[16] == 1)
    s.truth = truth
    return s


def test_fob_predict_sam_commit_undo_redo(session, tmp_path):
    start = snapshot(session)
    done = run(session.predict(1, [13, 14, 18], batch_size=2))
    assert done == [13, 14, 18]
    assert all(session.prompts[(1, z)].origin == "fob" for z in done)
    assert all(session.confidence(1, z) is not None for z in done)
    predicted = snapshot(session)
    run(session.commit(1, done))
    committed = snapshot(session)
    assert all(session.slice_status(1, z) == "committed" for z in done)
    assert set(np.unique(session.labels)) <= {0, 1}
    session.move_point(1, 14, "fg", 0, (40.0, 34.0))
    misses = session.segmenter.cache.misses
    run(session.commit(1, [14]))
    assert session.segmenter.cache.misses == misses  # the embedding of slice 14 was reused
    assert session.undo() and session.undo()  # the recommit, then the point move
    assert_same(snapshot(session), committed)
    assert session.undo()
    assert_same(snapshot(session), predicted)
    assert session.undo()
    assert_same(snapshot(session), start)
    session.redo()
    assert_same(snapshot(session), predicted)
    session.save(tmp_path)
    loaded = AnnotationSession.load(
        tmp_path, session.volume, generator=session.generator, segmenter=session.segmenter
    )
    assert_same(snapshot(loaded), snapshot(session))
    assert loaded.window == session.window


def test_fob_chain_mode_commits_outward(session):
    done = run(session.predict(1, [14, 15, 17], mode="chain"))
    assert sorted(done) == [14, 15, 17]
    assert [session.slice_status(1, z) for z in done] == ["committed"] * 3


def test_fob_auto_extent_stops_where_the_organ_ends(session):
    # FoB's evidence is the calibrated confidence of its (registered) footprint, whose
    # presence term is the footprint's intensity-band overlap, so even a random-init model
    # walks out towards the organ's ends and never past them
    from napari_fob.prompting.confidence import AUTO_THRESHOLD

    done = run(session.predict(1, "auto"))
    organ = np.flatnonzero((session.truth == 1).any(axis=(1, 2)))  # slices 8..24
    assert organ[0] <= min(done) <= organ[0] + 4 and organ[-1] - 4 <= max(done) <= organ[-1]
    assert sorted({*done, 16}) == list(range(min(done), max(done) + 1))  # 16: the support
    for z in done:
        assert session.confidence(1, z) >= AUTO_THRESHOLD
    for z in (min(done, default=16) - 1, max(done, default=16) + 1):
        if 0 <= z < session.shape[0] and z != 16:
            assert session.confidence(1, z) < AUTO_THRESHOLD and (1, z) not in session.prompts
    low = run(session.predict(1, "auto", threshold=0.01))
    assert min(low) <= min(done) and max(low) >= max(done)  # a lower threshold goes further
