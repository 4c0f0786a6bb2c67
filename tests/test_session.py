"""AnnotationSession: predict/commit/undo/redo, chain mode, auto extent, overwrite rules, events."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.core.metrics import dice
from napari_fob.core.prompts import PromptSet
from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, Progress, run

Z, Y, X = 32, 80, 80


def phantom() -> tuple[np.ndarray, np.ndarray]:
    """Organ 1: an ellipsoid on slices 8..24 (ends inside the volume); organ 2 beside it."""
    zz, yy, xx = np.mgrid[:Z, :Y, :X]
    organ1 = ((zz - 16) / 8.5) ** 2 + ((yy - 40) / 16.0) ** 2 + ((xx - 34) / 13.0) ** 2 <= 1
    organ2 = ((zz - 16) / 6.0) ** 2 + ((yy - 40) / 9.0) ** 2 + ((xx - 62) / 6.0) ** 2 <= 1
    truth = organ1.astype(np.int32) + 2 * organ2
    noise = np.random.default_rng(0).normal(0, 4, truth.shape)
    return (truth * 60 + noise).astype(np.float32), truth


def snapshot(s: AnnotationSession) -> dict:
    return {
        "labels": s.labels.copy(),
        "prompts": {k: p.to_dict() for k, p in s.prompts.items()},
        "status": {k: s.slice_status(*k) for k in s.slices.keys() if s.slice_status(*k) != "none"},
        "confidence": {
            k: s.confidence(*k) for k in s.slices.keys() if s.confidence(*k) is not None
        },
        "supports": {(lab, z): m.copy() for lab, d in s.supports.items() for z, m in d.items()},
    }


def assert_same(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert a["prompts"] == b["prompts"]
    assert a["status"] == b["status"] and a["confidence"] == b["confidence"]
    assert a["supports"].keys() == b["supports"].keys()
    for k in a["supports"]:
        np.testing.assert_array_equal(a["supports"][k], b["supports"][k])


@pytest.fixture
def session() -> AnnotationSession:
    image, truth = phantom()
    s = AnnotationSession(
        image,
        generator=MaskRingGenerator(grid_size=128, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(-20.0, 140.0),
        names={1: "organ"},
    )
    s.set_support(1, 16, truth[16] == 1)
    s.truth = truth  # the test's ground truth rides along
    return s


def test_predict_fixed_explicit_slices_and_progress(session):
    gen = session.predict(1, [12, 14, 16, 18], mode="fixed")
    progress = []
    done = run(gen, progress.append)
    assert done == [12, 14, 18]  # the support slice itself is never re-predicted
    assert all(isinstance(p, Progress) for p in progress) and progress[-1].done == 3
    for z in done:
        p = session.prompts[(1, z)]
        assert p.origin == "mask-ring" and p.slice_index == z and p.label == 1
        assert p.bg.shape == (10, 2) and session.slice_status(1, z) == "predicted"
        assert session.confidence(1, z) == pytest.approx(p.evidence)
    assert session.slice_status(1, 13) == "none"


def test_auto_extent_stops_where_the_organ_ends(session):
    done = run(session.predict(1, "auto"))  # the calibrated confidence's default cut
    zs = np.flatnonzero((session.truth == 1).any(axis=(1, 2)))
    assert min(done) > 0 and max(done) < Z - 1  # stopped inside the volume, not at its edge
    assert zs[0] <= min(done) and max(done) <= zs[-1]  # never beyond the organ
    assert max(done) - min(done) >= 8  # and walked a good part of it
    below, above = min(done) - 1, max(done) + 1
    for z in (below, above):  # the slice where the walk stopped keeps its confidence only
        assert session.low_confidence(1, z) and (1, z) not in session.prompts
    # a stricter threshold stops earlier
    strict = run(session.predict(1, "auto", threshold=0.3))
    assert len(strict) < len(done)


def test_predict_errors(session):
    with pytest.raises(ValueError, match="no support"):
        run(session.predict(2, "auto"))
    with pytest.raises(ValueError, match="mode"):
        run(session.predict(1, "auto", mode="sideways"))
    with pytest.raises(ValueError, match="slice 99"):
        run(session.predict(1, [99]))


def test_commit_segments_and_undo_redo_restore_exactly(session):
    states = [snapshot(session)]
    done = run(session.predict(1, range(10, 23)))
    states.append(snapshot(session))
    committed = run(session.commit(1, [*done, 16]))
    assert committed == [*done, 16]
    assert all(session.slice_status(1, z) == "committed" for z in committed)
    assert dice(session.labels[10:23] == 1, session.truth[10:23] == 1) > 0.85
    states.append(snapshot(session))
    session.move_point(1, 12, "bg", 0, (3.0, 4.0))
    session.add_point(1, 12, "fg", (40.0, 34.0))
    states.append(snapshot(session))
    assert session.slice_status(1, 12) == "edited" and session.prompts[(1, 12)].origin == "user"

    for expected in reversed(states[:-1]):
        assert session.undo()
        if expected is states[2]:  # two point edits are two undo steps
            assert session.undo()
        assert_same(snapshot(session), expected)
    assert session.undo() and not session.supports  # painting the support was undoable too
    assert not session.can_undo and not session.undo()
    while session.redo():
        pass
    assert_same(snapshot(session), states[-1])


def test_chain_mode_prompts_each_slice_from_its_committed_neighbour(session):
    done = run(session.predict(1, range(12, 21), mode="chain"))
    assert sorted(done) == [12, 13, 14, 15, 17, 18, 19, 20]
    for z in done:
        assert session.slice_status(1, z) == "committed"
        neighbour = z + 1 if z < 16 else z - 1
        assert session.prompts[(1, z)].meta["support_slice"] == neighbour
        assert (session.labels[z] == 1).any()
    # the painted support slice is committed too, as painted
    np.testing.assert_array_equal(session.labels[16] == 1, session.supports[1][16])
    assert session.undo()  # the whole chain is one step
    assert not session.labels.any() and not session.prompts


def test_chain_auto_extent_commits_until_the_organ_ends(session):
    done = run(session.predict(1, "auto", mode="chain"))
    assert 0 < min(done) and max(done) < Z - 1
    assert dice(session.labels == 1, session.truth == 1) > 0.7


def test_commit_never_overwrites_another_structure_unless_asked(session):
    truth = session.truth
    other = np.zeros_like(truth)
    other[14, 30:50, 20:35] = 2  # overlaps organ 1 on slice 14
    session.labels[:] = other
    run(session.predict(1, [14]))
    run(session.commit(1, [14]))
    assert np.array_equal(session.labels == 2, other == 2)
    assert (session.labels[14] == 1).any()
    run(session.commit(1, [14], overwrite=True))
    assert (session.labels[14] == 2).sum() < (other[14] == 2).sum()


def test_recommit_replaces_the_slice_content_of_the_label(session):
    run(session.predict(1, [14]))
    run(session.commit(1, [14]))
    first = session.labels[14] == 1
    assert first.any()
    # the user moves every prompt onto the other organ: label 1 follows, the old voxels go
    organ2 = session.truth[14] == 2
    ring = session.generator.ring(organ2)
    session.set_prompts(1, 14, PromptSet(fg=[np.argwhere(organ2).mean(axis=0)], bg=ring))
    session.labels[14, 0, 0] = 1  # a stray voxel of label 1 is replaced too
    run(session.commit(1, [14]))
    assert session.labels[14, 0, 0] == 0
    assert not (session.labels[14] == 1)[session.truth[14] == 1].any()
    assert dice(session.labels[14] == 1, organ2) > 0.7


def test_commit_skips_slices_without_prompts_and_uses_the_support_mask(session):
    done = run(session.commit(1, [5, 16]))
    assert done == [16]
    assert np.array_equal(session.labels[16] == 1, session.supports[1][16])


def test_point_edits(session):
    run(session.predict(1, [15]))
    p = session.prompts[(1, 15)]
    between = (p.bg[2] + p.bg[3]) / 2
    session.add_point(1, 15, "bg", between)
    assert np.allclose(session.prompts[(1, 15)].bg[3], between)  # inserted into the ring
    session.remove_point(1, 15, "bg", 3)
    assert np.allclose(session.prompts[(1, 15)].bg, p.bg)
    with pytest.raises(ValueError, match="bg point 10"):
        session.move_point(1, 15, "bg", 10, (0, 0))
    with pytest.raises(ValueError, match="kind"):
        session.add_point(1, 15, "middle", (0, 0))
    with pytest.raises(ValueError, match="no prompts"):
        session.add_point(1, 3, "fg", (0, 0))
    session.clear_prompts(1, 15)
    assert (1, 15) not in session.prompts and session.slice_status(1, 15) == "none"
    session.undo()
    assert session.prompts[(1, 15)].equals(p.copy(origin="user"))


def test_events_report_kind_label_and_slices(session):
    seen = []
    session.events.on_change(lambda kind, label, slices: seen.append((kind, label, slices)))
    run(session.predict(1, [14, 18]))
    run(session.commit(1, [14]))
    session.undo()
    assert seen[0] == ("prompts", 1, [14, 18])
    assert ("labels", 1, [14]) in seen[1:3] and ("prompts", 1, [14]) in seen[1:3]
    assert len(seen) == 5


def test_supports_from_volume_and_removal(session):
    support = np.zeros(session.shape, np.int32)
    support[16][session.truth[16] == 2] = 2
    support[10][session.truth[10] == 1] = 1
    found = session.set_supports_from_volume(support)
    assert found == {1: [10], 2: [16]}
    assert sorted(session.supports[1]) == [10, 16]
    session.remove_support(1, 10)
    assert sorted(session.supports[1]) == [16]
    with pytest.raises(ValueError, match="no support on slice 10"):
        session.remove_support(1, 10)
    with pytest.raises(ValueError, match="empty"):
        session.set_support(3, 4, np.zeros((Y, X), bool))
    with pytest.raises(ValueError, match="shape"):
        session.set_supports_from_volume(np.zeros((2, 2, 2)))


def test_other_structures_as_background_points(session):
    session.labels[15][session.truth[15] == 2] = 2
    session.set_prompts(1, 15, PromptSet(fg=[[40, 34]], bg=[[40, 5], [10, 34], [70, 34]], label=1))
    calls = []
    real = session.segmenter.segment

    def spy(image, prompts, **kw):
        calls.append(prompts)
        return real(image, prompts, **kw)

    session.segmenter.segment = spy
    run(session.commit(1, [15], other_structures_as_bg=True))
    assert len(calls[0].bg) > 3
    assert all(session.truth[15][int(r), int(c)] == 2 for r, c in calls[0].bg[3:])


def test_set_window_drops_cached_slices():
    volume = np.linspace(0, 100, 4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    session = AnnotationSession(
        volume,
        generator=MaskRingGenerator(),
        segmenter=RandomWalkerSegmenter(),
        window=(0.0, 100.0),
    )
    before = session.image01(1).copy()
    assert not session.set_window((0.0, 100.0))
    assert session.set_window((0.0, 50.0))
    after = session.image01(1)
    assert session.window.high == 50.0
    assert np.allclose(after, np.clip(before * 2.0, 0.0, 1.0))


def test_chain_marks_committed_masks_so_they_cannot_vouch_for_themselves(session):
    calls = []
    gen = session.generator
    original = gen.set_support

    def recording(image01, mask, *, slice_index=None, committed=False):
        calls.append((slice_index, committed))
        original(image01, mask, slice_index=slice_index, committed=committed)

    gen.set_support = recording
    run(session.predict(1, range(14, 19), mode="chain"))
    painted = set(session.supports[1])
    assert calls and all(committed == (z not in painted) for z, committed in calls)
    assert any(committed for _, committed in calls)


def test_the_slice_table_keeps_prompts_status_and_confidence_together(session):
    run(session.predict(1, [14, 15], mode="fixed"))
    key = (1, 15)
    state = session.slices.state(key)
    assert state.status == "predicted" and state.prompts is not None
    assert state.confidence == session.confidence(*key)
    with pytest.raises(TypeError):
        session.prompts[key] = state.prompts  # read-only: edits go through the session
    session.clear_prompts(*key)
    assert key not in session.prompts and session.slice_status(*key) == "none"
    assert session.confidence(*key) == state.confidence  # the confidence stays with the slice
    assert session.undo() and session.slices.state(key).prompts is not None


def test_commit_writes_labels_only_through_its_consumer(session):
    run(session.predict(1, [14, 15], mode="fixed"))
    items = list(session.commit(1, [14, 15]))  # driven, but the writes not applied
    assert not session.labels.any()
    writes = [item.apply for item in items if item.apply is not None]
    assert len(writes) == 3  # two slices, then the undo step
    for write in writes:
        write()
    assert (session.labels[14] == 1).any() and (session.labels[15] == 1).any()
    assert session.undo() and not session.labels.any()


def test_a_commit_closed_early_keeps_what_was_applied_as_one_undo_step(session):
    run(session.predict(1, [14, 15, 17], mode="fixed"))
    gen = session.commit(1, [14, 15, 17])
    first = next(gen)
    first.apply()
    gen.close()  # Cancel: the widget closes the generator on the main thread
    assert (session.labels[14] == 1).any() and not (session.labels[15] == 1).any()
    assert session.undo() and not session.labels.any()


def test_points_off_the_image_are_refused_so_a_saved_session_always_loads(session):
    run(session.predict(1, [15], mode="fixed"))
    h, w = session.shape[1:]
    with pytest.raises(ValueError, match="on the image"):
        session.add_point(1, 15, "fg", (h + 3.0, 2.0))
    with pytest.raises(ValueError, match="on the image"):
        session.move_point(1, 15, "bg", 0, (float("nan"), 1.0))
    session.add_point(1, 15, "fg", (h - 0.5, 0.0))  # the last pixel's edge is on the image
