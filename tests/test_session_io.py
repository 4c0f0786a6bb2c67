"""Saving and loading an AnnotationSession: labels NIfTI on the source grid + the JSON sidecar."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from faults import die_before_step
from napari_fob.core.io import Volume, read_nifti, write_image
from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run
from napari_fob.session.sidecar import rle_decode, rle_encode
from test_session import assert_same, phantom, snapshot

OBLIQUE = np.array(
    [[0.0, -1.5, 0.1, 90.0], [1.4, 0.0, 0.0, -120.0], [0.0, 0.2, 2.5, -60.0], [0, 0, 0, 1]]
)


def make_session(volume, **kw) -> AnnotationSession:
    return AnnotationSession(
        volume,
        generator=MaskRingGenerator(grid_size=128, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(-20.0, 140.0),
        names={1: "organ", 2: "other"},
        **kw,
    )


def work(s: AnnotationSession, truth: np.ndarray) -> None:
    s.set_support(1, 16, truth[16] == 1)
    s.set_support(2, 16, truth[16] == 2)
    run(s.predict(1, "auto"))
    run(s.commit(1, [14, 15, 16]))
    s.move_point(1, 18, "fg", 0, (40.5, 33.25))
    run(s.predict(2, [15, 17]))


def test_rle_round_trip():
    rng = np.random.default_rng(1)
    for mask in (rng.random((7, 9)) > 0.5, np.ones((3, 4), bool), np.zeros((5, 5), bool)):
        assert np.array_equal(rle_decode(rle_encode(mask), mask.shape), mask)


@pytest.mark.parametrize("source", ["nifti", "array"])
def test_save_load_round_trip(tmp_path, source):
    image, truth = phantom()
    if source == "nifti":
        write_image(tmp_path / "img.nii.gz", image, Volume.from_array(image, affine=OBLIQUE))
        volume = read_nifti(tmp_path / "img.nii.gz")
    else:
        volume = image
    s = make_session(volume)
    work(s, truth)
    paths = s.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labels.nii.gz", "prompts.json"]

    loaded = AnnotationSession.load(
        tmp_path / "out", volume, generator=MaskRingGenerator(), segmenter=RandomWalkerSegmenter()
    )
    assert_same(snapshot(loaded), snapshot(s))
    assert loaded.names == s.names and loaded.window == s.window
    assert loaded.thresholds == s.thresholds
    for key, p in s.prompts.items():
        q = loaded.prompts[key]
        assert q.equals(p) and q.evidence == p.evidence and q.meta == p.meta
        assert np.array_equal(q.fg, p.fg) and np.array_equal(q.bg, p.bg)  # exact, not close

    written = nib.load(paths["labels"])
    expected_affine = OBLIQUE if source == "nifti" else np.eye(4)
    assert np.allclose(written.affine, expected_affine, atol=1e-4)
    if source == "nifti":
        assert written.shape == nib.load(tmp_path / "img.nii.gz").shape

    data = json.loads(paths["prompts"].read_text())
    assert data["format"] == "napari-fob/prompts" and data["version"] == 1
    assert data["generator"]["kind"] == "mask-ring"
    assert data["segmenter"] == RandomWalkerSegmenter().describe()
    rec = next(r for r in data["slices"] if r["label"] == 1 and r["slice"] == 18)
    assert rec["status"] == "edited" and rec["prompts"]["origin"] == "user"
    assert rec["prompts"]["fg"][0] == [18.0, 40.5, 33.25]  # (z, row, col) voxel coordinates


def test_load_refuses_another_volume_and_a_foreign_file(tmp_path):
    image, truth = phantom()
    s = make_session(image)
    work(s, truth)
    s.save(tmp_path)
    gen, seg = MaskRingGenerator(), RandomWalkerSegmenter()
    with pytest.raises(ValueError, match="shape"):
        AnnotationSession.load(tmp_path, image[:-1], generator=gen, segmenter=seg)
    (tmp_path / "prompts.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="napari-fob/prompts"):
        AnnotationSession.load(tmp_path, image, generator=gen, segmenter=seg)
    with pytest.raises(FileNotFoundError, match="prompts.json"):
        AnnotationSession.load(tmp_path / "nothing", image, generator=gen, segmenter=seg)


def test_autosave_after_each_commit(tmp_path):
    image, truth = phantom()
    s = make_session(image, autosave_dir=tmp_path / "auto")
    s.set_support(1, 16, truth[16] == 1)
    run(s.predict(1, [15]))
    assert not (tmp_path / "auto").exists()  # prompts alone are not autosaved
    run(s.commit(1, [15]))
    saved = nib.load(tmp_path / "auto" / "labels.nii.gz").get_fdata()
    assert saved.sum() == (s.labels == 1).sum()
    assert not [p for p in (tmp_path / "auto").iterdir() if p.name.startswith(".")]


# ---- one unit on disk: refusal, recovery, kill during a save ------------------------------
def _state(image, tag: str, value: int) -> AnnotationSession:
    labels = np.zeros(image.shape, np.int32)
    labels[10 : 12 + value, 20:40, 20:40] = value
    return AnnotationSession(
        image,
        generator=MaskRingGenerator(grid_size=128, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(-20.0, 140.0),
        names={1: tag},
        labels=labels,
    )


def _load(folder, image) -> AnnotationSession:
    return AnnotationSession.load(
        folder, image, generator=MaskRingGenerator(), segmenter=RandomWalkerSegmenter()
    )


def test_a_previous_save_needs_overwrite_and_the_image_is_protected(tmp_path):
    image, _ = phantom()
    _state(image, "A", 1).save(tmp_path / "out")
    with pytest.raises(ValueError, match="already holds a result"):
        _state(image, "B", 2).save(tmp_path / "out")
    assert _load(tmp_path / "out", image).names == {1: "A"}
    _state(image, "B", 2).save(tmp_path / "out", overwrite=True)
    assert _load(tmp_path / "out", image).names == {1: "B"}
    # a session opened on tmp/labels.nii.gz must never replace it with its own labels
    write_image(tmp_path / "labels.nii.gz", image, Volume.from_array(image, affine=np.eye(4)))
    s = make_session(read_nifti(tmp_path / "labels.nii.gz"))
    with pytest.raises(ValueError, match="holds the input"):
        s.save(tmp_path, overwrite=True)
    # beside an image with another name is fine
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "sub" / "ct.nii.gz", image, Volume.from_array(image, affine=np.eye(4)))
    make_session(read_nifti(tmp_path / "sub" / "ct.nii.gz")).save(tmp_path / "sub")


def test_autosave_replaces_its_own_folder(tmp_path):
    image, truth = phantom()
    s = make_session(image, autosave_dir=tmp_path / "auto")
    s.set_support(1, 16, truth[16] == 1)
    run(s.commit(1, [16]))
    run(s.predict(1, [15]))
    run(s.commit(1, [15]))  # a second autosave into the same folder
    assert _load(tmp_path / "auto", image).labels[15].any()


def test_a_session_save_removes_a_stale_segment_report(tmp_path):
    image, _ = phantom()
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "overview.png").write_bytes(b"old")
    (tmp_path / "mine.txt").write_text("kept")
    _state(image, "A", 1).save(tmp_path, overwrite=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["labels.nii.gz", "mine.txt", "prompts.json"]


def test_labels_from_another_save_are_refused(tmp_path):
    image, _ = phantom()
    _state(image, "A", 1).save(tmp_path / "a")
    _state(image, "B", 2).save(tmp_path / "b")
    (tmp_path / "b" / "labels.nii.gz").replace(tmp_path / "a" / "labels.nii.gz")
    with pytest.raises(ValueError, match="not the labels file saved with"):
        _load(tmp_path / "a", image)


def test_saved_files_follow_the_umask(tmp_path):
    import os
    import stat

    image, _ = phantom()
    paths = _state(image, "A", 1).save(tmp_path / "out")
    probe = tmp_path / "probe"
    probe.write_text("")  # an ordinary open(): the mode every output must have
    expected = stat.S_IMODE(probe.stat().st_mode)
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == expected


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_kill_during_save_leaves_the_old_or_the_new_session(tmp_path):
    """A child process saving state B over state A is SIGKILLed before its n-th file-system
    step (create, fsync, rename, unlink), for every n; the folder then loads as A or B, whole."""
    import os
    import signal

    from napari_fob.core import atomic

    image, _ = phantom()
    old, new = _state(image, "A", 1), _state(image, "B", 2)
    out = tmp_path / "out"
    outcomes = []
    for n in range(1, 60):
        old.save(out, overwrite=True)
        pid = os.fork()
        if pid == 0:  # child: die before the n-th file-system step of the save
            try:
                die_before_step(n)
                new.save(out, overwrite=True)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        loaded = _load(out, image)
        tag = loaded.names[1]
        expected = old if tag == "A" else new
        assert np.array_equal(loaded.labels, expected.labels), f"mixed state after step {n}"
        outcomes.append((killed, tag))
        if not killed:
            break
    assert not outcomes[-1][0], "the save never finished"
    assert ("A" in {t for k, t in outcomes if k}) and ("B" in {t for k, t in outcomes if k})
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert atomic.COMMIT_RECORD not in leftovers
