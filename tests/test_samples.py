"""Sample data: grids, ground truth, one-slice supports, licence, and the seeded phantom."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.samples import (
    SAMPLE_NAMES,
    load_sample,
    support_from_labels,
    support_slices,
    write_sample,
)
from napari_fob.samples.mni import LICENSE_FILE
from napari_fob.samples.phantom import NAMES, make_abdomen_phantom

SMALL = {"shape": (24, 48, 48), "spacing": (6.6, 5.0, 5.0)}  # same anatomy, fewer voxels


@pytest.fixture(scope="module")
def phantom():
    return load_sample("abdomen-phantom")


@pytest.fixture(scope="module")
def mni():
    return load_sample("mni-brain")


def _check_support(sample):
    slices = support_slices(sample.labels)
    assert sorted(slices) == sorted(sample.names)
    for value, z in slices.items():
        on = np.nonzero((sample.support == value).any(axis=(1, 2)))[0]
        assert on.tolist() == [z]  # exactly one slice per structure
        assert np.array_equal(sample.support[z] == value, sample.labels[z] == value)
        zs = np.nonzero((sample.labels == value).any(axis=(1, 2)))[0]
        counts = (sample.labels == value).sum(axis=(1, 2))[zs]
        assert abs(z - np.sum(zs * counts) / counts.sum()) <= 1.0  # through the centre of mass
    assert set(np.unique(sample.support)) <= {0, *sample.names}


def test_mni_brain(mni):
    assert mni.image.data.dtype == np.float32 and mni.image.data.ndim == 3
    assert mni.image.spacing == (2.0, 2.0, 2.0)
    assert mni.labels.shape == mni.image.data.shape
    assert mni.names == {1: "lateral ventricles", 2: "white matter", 3: "grey matter"}
    sizes = {k: int((mni.labels == k).sum()) for k in mni.names}
    # 2 mm voxels are 8 ml per 1000: ventricles ~19 ml, white ~660 ml, grey ~1080 ml.
    assert 1000 < sizes[1] < 5000 and sizes[2] > 40000 and sizes[3] > 60000
    # Real MRI: the T1 contrast of the template holds (white > grey > ventricle CSF).
    mean = {k: mni.image.data[mni.labels == k].mean() for k in mni.names}
    assert mean[2] > mean[3] > mean[1]
    _check_support(mni)
    assert "McConnell Brain Imaging Centre" in mni.description


def test_mni_licence_ships_with_the_data():
    text = LICENSE_FILE.read_text()
    assert "Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre" in text
    assert "Permission to use, copy, modify, and distribute" in text


def test_phantom_sample(phantom):
    assert phantom.image.data.shape == (64, 160, 160)
    assert phantom.image.spacing == (2.5, 1.5, 1.5)
    assert phantom.names == NAMES
    assert phantom.labels.dtype == np.uint8
    for value in phantom.names:
        present = np.nonzero((phantom.labels == value).any(axis=(1, 2)))[0]
        assert 0 < present[0] and present[-1] < 63  # starts and ends inside the volume
    _check_support(phantom)


def test_phantom_anatomy_and_intensities():
    image, labels, names = make_abdomen_phantom(seed=3, **SMALL)
    assert image.dtype == np.float32 and image.shape == labels.shape == SMALL["shape"]
    assert image.min() < -900  # air around the body
    median = {names[k]: float(np.median(image[labels == k])) for k in names}
    assert 40 < median["liver"] < 85 and 30 < median["spleen"] < 70
    assert median["left kidney"] > 95 and median["right kidney"] > 95
    assert image.max() > 400  # bone


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_phantom_organs_start_and_end_inside(seed):
    _, labels, names = make_abdomen_phantom(seed=seed, **SMALL)
    for value in names:
        present = np.nonzero((labels == value).any(axis=(1, 2)))[0]
        assert present.size >= 3, f"seed {seed}: {names[value]} on {present.size} slices"
        assert present[0] > 0 and present[-1] < labels.shape[0] - 1
        # the organ is not on every slice and does not touch the in-plane border
        assert not (labels == value)[:, [0, -1], :].any()
        assert not (labels == value)[:, :, [0, -1]].any()


def test_phantom_is_seeded():
    a_img, a_lab, _ = make_abdomen_phantom(seed=7, **SMALL)
    b_img, b_lab, _ = make_abdomen_phantom(seed=7, **SMALL)
    c_img, c_lab, _ = make_abdomen_phantom(seed=8, **SMALL)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_lab, c_lab)
    overlap = np.sum((a_lab == 1) & (c_lab == 1)) / np.sum((a_lab == 1) | (c_lab == 1))
    assert overlap < 0.95  # the liver's shape/position changes with the seed


def test_support_slice_falls_back_to_a_slice_holding_the_structure():
    labels = np.zeros((5, 4, 4), np.uint8)
    labels[0, 1, 1] = labels[4, 1, 1] = 2  # a "C": the centre of mass (z=2) misses it
    support = support_from_labels(labels)
    assert support_slices(labels) == {2: 0}
    assert np.array_equal(support[0], labels[0]) and not support[1:].any()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_write_sample_files_share_one_grid(tmp_path, name):
    paths = write_sample(name, tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(
        ["image.nii.gz", "labels.nii.gz", "support.nii.gz", "labels.json"]
    )
    images = {k: nib.load(paths[k]) for k in ("image", "labels", "support")}
    for img in images.values():
        assert img.shape == images["image"].shape
        assert np.array_equal(img.affine, images["image"].affine)
    sample = load_sample(name)
    names = json.loads(paths["names"].read_text())
    assert names == {str(k): v for k, v in sample.names.items()}
    labels = np.transpose(np.asarray(images["labels"].dataobj), sample.image.axes)
    assert np.array_equal(labels, sample.labels)
    image = np.transpose(images["image"].get_fdata(), sample.image.axes)
    assert np.array_equal(image, sample.image.data)  # the int16 storage is lossless


def test_seed_only_for_the_phantom():
    with pytest.raises(ValueError, match="no seed"):
        load_sample("mni-brain", seed=1)
    with pytest.raises(ValueError, match="mni-brain, abdomen-phantom"):
        load_sample("knee")


def test_fob_sample_command(tmp_path, capsys):
    assert main(["sample", "mni-brain", "--out", str(tmp_path / "mni")]) == 0
    out = capsys.readouterr().out
    assert "lateral ventricles" in out and str(tmp_path / "mni" / "support.nii.gz") in out
    assert (tmp_path / "mni" / "image.nii.gz").exists()
    assert main(["sample", "lung", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "lung" in err and "mni-brain" in err and "abdomen-phantom" in err
    assert main(["sample", "mni-brain", "--seed", "3", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bundled_phantom_is_the_generators_seed_0(tmp_path):
    # load_sample reads seed 0 from the shipped file (instant in napari's File > Open Sample);
    # it must stay what the generator makes, else re-run scripts/make_phantom_sample.py.
    from napari_fob.samples.bundled import BUNDLED_SEED, load_bundled, save_bundled

    image, labels, _ = make_abdomen_phantom(seed=BUNDLED_SEED)
    stored_image, stored_labels = load_bundled()
    assert stored_image.dtype == np.float32 and stored_labels.dtype == np.uint8
    np.testing.assert_array_equal(stored_labels, labels)
    np.testing.assert_array_equal(stored_image, image)
    assert load_bundled(tmp_path) is None  # without the file, load_sample generates it
    with pytest.raises(ValueError, match="whole HU"):
        save_bundled(tmp_path, image + 0.5, labels)
