"""The real-MRI training data holds the test structures out (issue 23, part 1).

`scripts/training/make_real_data.py` removes every supervoxel that touches a test structure;
these tests run its rule on the real template and atlas (the `bench` extra) at a coarse
supervoxel size, and draw episodes from the result through the episode sampler.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "training"))

import make_real_data  # noqa: E402

from napari_fob.training.episodes import EpisodeConfig, EpisodeDataset  # noqa: E402


def test_a_supervoxel_touching_the_test_mask_is_removed_and_the_rest_relabelled():
    pseudo = np.zeros((4, 12, 12), np.int32)
    pseudo[:, :, :4], pseudo[:, :, 4:8], pseudo[:, :, 8:] = 3, 5, 9
    test = np.zeros(pseudo.shape, bool)
    test[1, 5, 3] = True  # inside label 3, one voxel from label 5
    out = make_real_data.held_out_pseudo(pseudo, test, margin=1)
    assert set(np.unique(out)) == {0, 1}  # 3 and 5 removed, 9 kept as 1
    assert np.array_equal(out > 0, pseudo == 9)


def test_no_file_or_episode_of_the_real_training_data_holds_a_test_structure(tmp_path):
    """The script's own output (on a coarse copy of the template): no pseudo-label within the
    margin of a test structure and no test voxel among the ground-truth labels, in any
    orientation or split; and episodes drawn from it never target one."""
    from napari_fob.samples import real_anatomy

    if not real_anatomy.available():
        pytest.fail("the real-anatomy data needs the bench extra: pip install -e '.[bench]'")
    from napari_fob.training.manifest import load_split, read_manifest

    step = 3
    assert make_real_data.main(["--out", str(tmp_path), "--step", str(step),
                                "--size-mm3", "4000", "--margin", "1"]) == 0  # fmt: skip
    test = make_real_data.test_mask()[::step, ::step, ::step]
    near = ndi.binary_dilation(test, iterations=1)
    entries = read_manifest(tmp_path / "manifest.yaml")
    assert sorted(e.split for e in entries) == ["train", "train", "train", "val"]
    volumes = load_split(entries, "train") + load_split(entries, "val")

    def moved(mask, volume):  # the template-grid mask in the volume's slicing orientation
        (axis,) = [a for a in range(3) if np.moveaxis(mask, a, 0).shape == volume.image01.shape]
        return np.moveaxis(mask, axis, 0)

    for volume in volumes:
        assert volume.labels.any() and not (volume.labels.astype(bool) & moved(test, volume)).any()
        if volume.meta["split"] == "train":
            assert volume.pseudo.max() > 0
            assert not (volume.pseudo.astype(bool) & moved(near, volume)).any(), volume.name
    # every episode the sampler can draw is one of its (volume, kind, label, z, z') pairs
    train = load_split(entries, "train")
    data = EpisodeDataset(train, config=EpisodeConfig(
        grid_size=64, min_area=20, max_dz=4, label_source="both", p_cross=0.0))  # fmt: skip
    assert {int(k) for k in data.pairs[:, 1]} == {0, 1}  # pseudo-label and tune episodes
    for v, kind, label in {tuple(int(x) for x in row[:3]) for row in data.pairs}:
        volume = train[v]
        target = (volume.pseudo if kind == 0 else volume.labels) == label
        assert not (target & moved(near if kind == 0 else test, volume)).any(), (v, kind, label)
