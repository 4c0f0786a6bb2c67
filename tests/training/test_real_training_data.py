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
from napari_fob.training.manifest import TrainVolume  # noqa: E402


def test_a_supervoxel_touching_the_test_mask_is_removed_and_the_rest_relabelled():
    pseudo = np.zeros((4, 12, 12), np.int32)
    pseudo[:, :, :4], pseudo[:, :, 4:8], pseudo[:, :, 8:] = 3, 5, 9
    test = np.zeros(pseudo.shape, bool)
    test[1, 5, 3] = True  # inside label 3, one voxel from label 5
    out = make_real_data.held_out_pseudo(pseudo, test, margin=1)
    assert set(np.unique(out)) == {0, 1}  # 3 and 5 removed, 9 kept as 1
    assert np.array_equal(out > 0, pseudo == 9)


def test_no_episode_of_the_real_training_data_targets_a_test_structure():
    from napari_fob.samples import real_anatomy

    if not real_anatomy.available():
        pytest.fail("the real-anatomy data needs the bench extra: pip install -e '.[bench]'")
    from napari_fob.training.supervoxels import body_mask, supervoxels

    image = np.asarray(real_anatomy.load_template()[0])[::3, ::3, ::3]
    test = make_real_data.test_mask()[::3, ::3, ::3]
    raw = np.rint(image * 1000).astype(np.int16)
    pseudo = supervoxels(raw, mask=body_mask(raw), size_mm3=4_000.0 / 27)
    kept = make_real_data.held_out_pseudo(pseudo, test, margin=1)
    assert 0 < kept.max() < pseudo.max()  # some removed, some left to train on
    near = ndi.binary_dilation(test, iterations=1)
    volume = TrainVolume("mni", image, image, pseudo=kept)
    data = EpisodeDataset([volume], config=EpisodeConfig(grid_size=64, min_area=20, max_dz=4))
    labels = {int(data.sample(i)["label"]) for i in range(60)}
    assert len(labels) > 3
    for label in labels:
        assert not (near & (kept == label)).any(), label
