"""A training manifest whose image is a DICOM series folder (written with pydicom) and whose
labels are an NRRD written by SimpleITK on the series' grid."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from napari_fob.training.manifest import load_split, read_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the DICOM writer
from dicom_series import ct_values, write_series  # noqa: E402


def test_a_dicom_folder_with_nrrd_labels_trains(tmp_path):
    write_series(tmp_path / "case01", ct_values(), intercept=-1024)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "case01")))
    truth = (ct_values() > 100).astype(np.uint8)
    labels = sitk.GetImageFromArray(truth)
    labels.CopyInformation(reader.Execute())
    sitk.WriteImage(labels, str(tmp_path / "case01.seg.nrrd"))
    (tmp_path / "m.csv").write_text("image,labels\ncase01,case01.seg.nrrd\n")
    (entry,) = read_manifest(tmp_path / "m.csv")
    (vol,) = load_split([entry], "train")
    assert vol.name == "case01" and vol.image_raw.shape == (4, 6, 5)
    assert np.array_equal(vol.image_raw, ct_values() - 1024.0)
    assert np.array_equal(vol.labels, truth)
    assert vol.spacing == pytest.approx((2.5, 0.7, 0.9))
