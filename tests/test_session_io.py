"""Saving and loading an AnnotationSession: labels NIfTI on the source grid + the JSON sidecar."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_fob.generators import MaskRingGenerator
from napari_fob.io import Volume, read_nifti, write_image
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run
from napari_fob.session_io import rle_decode, rle_encode
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
