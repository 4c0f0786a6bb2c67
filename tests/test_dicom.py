"""DICOM series read by `read_volume`, on series written with pydicom's Dataset API
(tests/dicom_series.py): order, spacing, HU and world coordinates checked against the tags by
hand, and against SimpleITK/GDCM's reading of the same series; bad series refused by name."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_series import ct_values, expected_ras, series_geometry, write_series
from napari_fob.core.formats import read_volume
from napari_fob.core.io import read_labels, write_labels


def world(volume, k, j, i):
    """World RAS of array voxel (k, j, i) through the Volume's affine (file order i, j, k)."""
    file_index = np.array([0, 0, 0, 1.0])
    for array_axis, value in enumerate((k, j, i)):
        file_index[volume.axes[array_axis]] = value
    return (volume.affine @ file_index)[:3]


VOXELS = [(0, 0, 0), (3, 5, 4), (1, 2, 3), (2, 5, 0)]


def test_an_oblique_series_in_shuffled_files(tmp_path):
    stored = ct_values()
    info = write_series(tmp_path / "ct", stored, slope=0.5, intercept=-1000)
    volume = read_volume(tmp_path / "ct")
    assert volume.data.shape == (4, 6, 5) and volume.data.dtype == np.float32
    assert np.array_equal(volume.data, stored * 0.5 - 1000)  # HU, slices in position order
    assert volume.spacing == pytest.approx((2.5, 0.7, 0.9))  # not SliceThickness (7)
    for k, j, i in VOXELS:
        assert world(volume, k, j, i) == pytest.approx(expected_ras(info, k, j, i), abs=1e-6)
    assert volume.source["series_uid"] == info["uid"]
    assert volume.source["files"] == [str(p) for p in info["files"]]


def test_slices_stored_against_the_normal_and_a_sagittal_orientation(tmp_path):
    stored = ct_values()
    row, col = (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)  # sagittal: normal = row x col = (-1, 0, 0)
    step = series_geometry(row, col, -1.5)  # each file further *against* the normal
    info = write_series(tmp_path / "sag", stored, row=row, col=col, step=step, intercept=0)
    volume = read_volume(tmp_path / "sag")
    assert np.array_equal(volume.data, stored[::-1])  # sorted along the normal
    assert volume.spacing == pytest.approx((1.5, 0.7, 0.9))
    for k, j, i in VOXELS:
        assert world(volume, k, j, i) == pytest.approx(expected_ras(info, 3 - k, j, i))


def test_the_same_world_grid_as_simpleitk_and_a_nifti_written_from_it(tmp_path):
    """A series and the NIfTI another library (SimpleITK/GDCM) converts it to agree."""
    write_series(tmp_path / "ct", ct_values(), slope=2.0, intercept=-1024)
    volume = read_volume(tmp_path / "ct")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "itk.nii.gz"))
    other = read_volume(tmp_path / "itk.nii.gz")
    assert np.allclose(other.affine, volume.affine, atol=1e-4)
    assert np.array_equal(other.data, volume.data)
    # and a labels file for the series is accepted on that NIfTI's grid and vice versa
    labels = (volume.data > 0).astype(np.uint8)
    write_labels(tmp_path / "labels.nii.gz", labels, like=volume)
    assert np.array_equal(read_labels(tmp_path / "labels.nii.gz", like=other), labels)


def test_labels_written_for_a_series_have_its_world_coordinates(tmp_path):
    info = write_series(tmp_path / "ct", ct_values())
    volume = read_volume(tmp_path / "ct")
    labels = np.zeros(volume.data.shape, np.uint8)
    labels[3, 5, 4] = 2
    write_labels(tmp_path / "labels.nii.gz", labels, like=volume)
    img = sitk.ReadImage(str(tmp_path / "labels.nii.gz"))  # read by another library
    index = tuple(int(v) for v in np.argwhere(sitk.GetArrayFromImage(img) == 2)[0][::-1])
    lps = np.array(img.TransformIndexToPhysicalPoint(index))
    assert lps * [-1, -1, 1] == pytest.approx(expected_ras(info, 3, 5, 4), abs=1e-3)
    assert np.allclose(nib.load(tmp_path / "labels.nii.gz").affine, volume.affine, atol=1e-4)
    back = read_labels(tmp_path / "labels.nii.gz", like=volume)
    assert np.array_equal(back, labels)
    meta = volume.to_metadata()
    assert meta["source"]["format"] == "dicom"  # the metadata the napari layer carries


def test_several_series_the_largest_or_the_one_named(tmp_path, caplog):
    big = write_series(tmp_path / "mixed", ct_values(n=4), description="abdomen")
    small = write_series(tmp_path / "mixed", ct_values(n=3), description="scout", prefix="S")
    with caplog.at_level(logging.WARNING, logger="napari_fob.core.dicom"):
        volume = read_volume(tmp_path / "mixed")
    assert volume.data.shape[0] == 4 and volume.source["series_uid"] == big["uid"]
    assert small["uid"] in caplog.text and "scout" in caplog.text and "--series" in caplog.text
    assert read_volume(tmp_path / "mixed", series=small["uid"]).data.shape[0] == 3
    with pytest.raises(ValueError, match="no series 1.2.3") as err:
        read_volume(tmp_path / "mixed", series="1.2.3")
    assert big["uid"] in str(err.value) and small["uid"] in str(err.value)


def test_one_file_of_a_series_opens_its_series(tmp_path):
    info = write_series(tmp_path / "ct", ct_values())
    volume = read_volume(info["files"][0])
    assert volume.data.shape == (4, 6, 5) and volume.source["series_uid"] == info["uid"]


def test_a_tilted_series_is_refused(tmp_path):
    step = series_geometry((1, 0, 0), (0, 1, 0), 2.0, shift=(0.0, 0.5))  # 14 deg gantry tilt
    write_series(tmp_path / "tilt", ct_values(), row=(1, 0, 0), col=(0, 1, 0), step=step)
    with pytest.raises(ValueError, match=r"tilt.*shift sideways by up to 1.5 mm.*14\.0"):
        read_volume(tmp_path / "tilt")


def test_uneven_spacing_is_refused_naming_the_gap(tmp_path):
    positions = np.array([[0, 0, z] for z in (0.0, 2.0, 4.0, 8.0)])  # a slice missing
    info = write_series(tmp_path / "gap", ct_values(), row=(1, 0, 0), col=(0, 1, 0),
                        positions=positions)  # fmt: skip
    with pytest.raises(ValueError, match=r"gap.*uneven slice spacing.*from 2 to 4 mm") as err:
        read_volume(tmp_path / "gap")
    assert info["files"][2].name in str(err.value) and info["files"][3].name in str(err.value)


def test_bad_folders_are_named_with_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*folder is empty"):
        read_volume(tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes: no DICOM image.*readme.txt"):
        read_volume(tmp_path / "notes")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_volume(tmp_path / "nowhere")
    write_series(tmp_path / "one", ct_values(n=1))
    with pytest.raises(ValueError, match="one: series .* has a single slice"):
        read_volume(tmp_path / "one")


def test_bad_slices_are_named(tmp_path):
    info = write_series(tmp_path / "nopos", ct_values())
    ds = pydicom.dcmread(info["files"][1])
    del ds.ImagePositionPatient
    ds.save_as(info["files"][1])
    with pytest.raises(ValueError, match=f"{info['files'][1].name}: no ImagePositionPatient"):
        read_volume(tmp_path / "nopos")

    info = write_series(tmp_path / "cut", ct_values())
    raw = info["files"][2].read_bytes()
    info["files"][2].write_bytes(raw[:-20])  # truncated pixel data
    with pytest.raises(ValueError, match=f"{info['files'][2].name}: .*cannot be decoded"):
        read_volume(tmp_path / "cut")

    info = write_series(tmp_path / "multi", ct_values(n=2))
    ds = pydicom.dcmread(info["files"][0])
    ds.NumberOfFrames = 3
    ds.save_as(info["files"][0])
    with pytest.raises(ValueError, match="multi-frame DICOM object"):
        read_volume(tmp_path / "multi")

    info = write_series(tmp_path / "echoes", ct_values(n=3),
                        positions=np.zeros((3, 3)) + [0, 0, 5.0])  # fmt: skip
    with pytest.raises(ValueError, match="same position"):
        read_volume(tmp_path / "echoes")
