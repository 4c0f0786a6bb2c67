"""`core.dicom_seg`: a DICOM-SEG built from a series written with pydicom, read back with highdicom;
frames follow the source slices whatever the Volume's slicing axis; a changed series is refused."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from dicom_series import ct_values, write_series
from napari_fob.core.dicom_seg import build_dicom_seg, dicom_seg_problem, write_dicom_seg
from napari_fob.core.formats import read_volume


@pytest.fixture
def series(tmp_path):
    info = write_series(tmp_path / "dicom", ct_values(5, 6, 7))
    return info, read_volume(tmp_path / "dicom")


def test_frames_are_the_source_slices_for_any_slicing_axis(tmp_path, series):
    info, _ = series
    volume = read_volume(tmp_path / "dicom", slice_axis=0)  # columns as array axis 0
    labels = np.zeros(volume.array_shape, np.uint8)
    labels[2, 1:4, 0:3] = 5  # the view is (i, k, j): column 2, slices 1..3, rows 0..2
    write_dicom_seg(tmp_path / "x.dcm", labels, volume, names={5: "node"})
    seg = hd.seg.segread(tmp_path / "x.dcm")
    uids = [str(pydicom.dcmread(f).SOPInstanceUID) for f in info["files"]]
    masks = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    expected = np.zeros((5, 6, 7), bool)  # (k, j, i): slices, rows, columns as written
    expected[1:4, 0:3, 2] = True
    assert np.array_equal(masks[..., 0], expected)
    assert seg.get_segment_description(1).segment_label == "node"
    assert seg.PatientID == "" and seg.StudyID == ""  # Type 2, absent in the source: empty


def test_a_changed_series_and_empty_labels_are_refused(tmp_path, series):
    info, volume = series
    with pytest.raises(ValueError, match="hold no structure"):
        build_dicom_seg(np.zeros(volume.array_shape, np.uint8), volume)
    labels = np.ones(volume.array_shape, np.uint8)
    with pytest.raises(ValueError, match="labels shape"):
        build_dicom_seg(labels[:-1], volume)
    other = write_series(tmp_path / "other", ct_values(5, 6, 7))
    first = volume.source["files"][0]
    with open(first, "wb") as f:  # another series' slice under the same name
        f.write(other["files"][0].read_bytes())
    with pytest.raises(ValueError, match="no longer the slice read"):
        build_dicom_seg(labels, volume)
    volume.source["files"][1] = str(tmp_path / "gone.dcm")
    assert "gone.dcm is gone" in dicom_seg_problem(volume)


def test_only_dicom_volumes_qualify(tmp_path, series):
    _, volume = series
    assert dicom_seg_problem(volume) is None
    volume.source = {"format": "nrrd"}
    assert "not a DICOM series" in dicom_seg_problem(volume)
