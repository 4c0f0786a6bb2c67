"""Supervoxel pseudo-labels and `fob pseudolabel`."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.core.io import read_labels, read_nifti
from napari_fob.samples.phantom import make_abdomen_phantom
from napari_fob.training.supervoxels import body_mask, relabel_consecutive, supervoxels

SHAPE, SPACING = (24, 96, 96), (2.5, 1.5, 1.5)


@pytest.fixture(scope="module")
def phantom():
    image, labels, _ = make_abdomen_phantom(seed=0, shape=SHAPE, spacing=SPACING)
    return image, labels


def purity(parts: np.ndarray, truth: np.ndarray) -> float:
    """Voxel share of each part's majority ground-truth value, over all parts."""
    total = hit = 0
    for s in range(1, int(parts.max()) + 1):
        values = truth[parts == s]
        total += values.size
        hit += np.bincount(values).max()
    return hit / total


def test_body_mask_keeps_the_body_and_drops_air(phantom):
    image, labels = phantom
    mask = body_mask(image)
    assert mask[labels > 0].all()  # every organ is inside the body
    assert not mask[:, :8, :8].any() and not mask[:, -8:, -8:].any()  # air in the corners
    assert 0.2 < mask.mean() < 0.9


def test_supervoxels_fill_the_mask_with_consecutive_coherent_labels(phantom):
    image, labels = phantom
    mask = body_mask(image)
    sv = supervoxels(image, spacing=SPACING, mask=mask)
    assert sv.shape == image.shape and sv.dtype == np.int32
    assert (sv[~mask] == 0).all() and (sv[mask] > 0).all()
    assert np.array_equal(np.unique(sv[mask]), np.arange(1, sv.max() + 1))
    expected = mask.sum() * np.prod(SPACING) / 25_000
    assert 0.5 * expected <= sv.max() <= 2 * expected
    # Intensity-driven: supervoxels mostly hold one tissue of the ground truth.
    assert purity(sv, labels) > 0.8


def test_supervoxels_are_spacing_aware(phantom):
    image, _ = phantom
    mask = body_mask(image)
    fine = supervoxels(image, spacing=SPACING, mask=mask).max()
    coarse = supervoxels(image, spacing=tuple(2 * s for s in SPACING), mask=mask).max()
    assert coarse > 4 * fine  # same target mm^3 in 8x larger voxels -> ~8x more segments


def test_supervoxels_reject_bad_input(phantom):
    image, _ = phantom
    with pytest.raises(ValueError, match="3D volume"):
        supervoxels(image[0])
    with pytest.raises(ValueError, match="mask is empty"):
        supervoxels(image, mask=np.zeros(image.shape, bool))
    with pytest.raises(ValueError, match="spacing"):
        supervoxels(image, spacing=(1.0, 0.0, 1.0))


def test_relabel_consecutive():
    out = relabel_consecutive(np.array([[0, 7, 7], [3, 0, 9]]))
    assert out.tolist() == [[0, 2, 2], [1, 0, 3]]


def test_pseudolabel_command_writes_nifti_on_the_image_grid(phantom_files, tmp_path, capsys):
    images = [str(img) for img, _ in phantom_files[:2]]
    assert main(["pseudolabel", *images, "--out", str(tmp_path), "--jobs", "2"]) == 0
    for img, _ in phantom_files[:2]:
        name = img.name.removesuffix(".nii.gz")
        out = tmp_path / f"{name}_supervoxels.nii.gz"
        vol = read_nifti(img)
        sv = read_labels(out, like=vol)  # raises if grid or affine differ
        assert sv.shape == vol.data.shape and sv.max() > 5


def test_pseudolabel_command_names_missing_files(tmp_path, capsys):
    assert main(["pseudolabel", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path)]) == 1
    assert "nope.nii.gz" in capsys.readouterr().err
