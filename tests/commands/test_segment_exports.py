"""``fob segment``'s labels in the source's format: DICOM-SEG for a DICOM series (read back with
highdicom's reader, checked against the series written with pydicom), ``labels.nrrd`` for an
NRRD with ``--labels-format nrrd`` (read back with pynrrd, checked against the source NRRD's own
header), and labels.nii.gz on the source's grid for the other formats (nibabel / SimpleITK)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_segment import segment
from test_segment_formats import itk_series, phantom, same_grid, write_like

from napari_fob.core.formats import read_volume

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the DICOM writer
from dicom_series import write_series  # noqa: E402


def two_structures():
    """(truth, stored CT values, support): labels 1 and 3 (a gap: segment numbers are 1, 2)."""
    truth, stored, _ = phantom()
    truth = truth.astype(np.uint8)
    small = np.zeros_like(truth)
    small[2:6, 3:7, 28:33] = 3
    stored[small == 3] += 300
    truth = np.where(small == 3, 3, truth)
    support = np.zeros_like(truth)
    support[4] = truth[4]
    return truth, stored, support


def dicom_case(tmp_path, **series):
    truth, stored, support = two_structures()
    info = write_series(tmp_path / "dicom", stored, pixel_spacing=(0.8, 0.75), **series)
    source = itk_series(tmp_path / "dicom")
    (tmp_path / "sup").mkdir()
    sup = write_like(support, source, tmp_path / "sup" / "support.nii.gz")
    (tmp_path / "sup" / "labels.json").write_text(json.dumps({"1": "liver"}))
    return info, sup


def test_a_dicom_series_gets_a_dicom_seg_that_highdicom_reads_back(tmp_path):
    info, sup = dicom_case(tmp_path)  # the default series is oblique
    out = tmp_path / "out"
    assert segment(tmp_path / "dicom", "--support", sup, "--out", out) == 0

    seg = hd.seg.segread(out / "labels.seg.dcm")
    sources = [pydicom.dcmread(f) for f in info["files"]]  # files[k] is slice k along the normal
    uids = [str(ds.SOPInstanceUID) for ds in sources]
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    assert seg.FrameOfReferenceUID == info["frame_uid"]
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert {u for _, _, u in seg.get_source_image_uids()} <= set(uids)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == info["uid"]

    assert seg.get_segment_numbers() == [1, 2]
    first, second = (seg.get_segment_description(n) for n in (1, 2))
    assert (first.segment_label, first.tracking_id) == ("liver", "1")
    assert (second.segment_label, second.tracking_id) == ("label 3", "3")
    assert first.algorithm_type.value == "SEMIAUTOMATIC"
    assert first.algorithm_identification[0].AlgorithmName == "napari-fob FoB + SAM"

    # the per-frame masks are labels.nii.gz, slice by slice, as SimpleITK reads both files
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labels.nii.gz")))  # (k, j, i)
    masks = seg.get_pixels_by_source_instance(uids, assert_missing_frames_are_empty=True)
    assert masks.shape == (*labels.shape, 2)
    assert np.array_equal(masks[..., 0], labels == 1) and np.array_equal(masks[..., 1], labels == 3)
    assert masks[..., 1].sum() > 0

    # the source series is recorded where the outputs are described
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["dicom_seg"] == str(out / "labels.seg.dcm")
    assert report["dicom_series"]["frame_of_reference_uid"] == info["frame_uid"]
    assert report["dicom_series"]["series_uid"] == info["uid"]
    assert report["dicom_seg"]["segments"]["2"] == {"label": 3, "name": None}
    source = json.loads((out / "prompts.json").read_text())["source"]["source"]
    assert source["sop_instance_uids"] == uids
    assert source["files"] == [str(f) for f in info["files"]]
    assert source["frame_of_reference_uid"] == info["frame_uid"]


def test_no_dicom_seg_and_overwrite_removes_the_old_one(tmp_path):
    _, sup = dicom_case(tmp_path)
    out = tmp_path / "out"
    assert segment(tmp_path / "dicom", "--support", sup, "--out", out) == 0
    assert (out / "labels.seg.dcm").is_file()
    argv = ["--support", sup, "--out", out, "--overwrite", "--no-dicom-seg"]
    assert segment(tmp_path / "dicom", *argv) == 0
    assert not (out / "labels.seg.dcm").exists()  # it described the older labels
    assert json.loads((out / "report.json").read_text())["dicom_seg"] is None


def test_a_series_without_frame_of_reference(tmp_path, capsys):
    _, sup = dicom_case(tmp_path, frame_of_reference=False)
    out = tmp_path / "out"
    # by default: the NIfTI is written, the report says why there is no DICOM-SEG
    assert segment(tmp_path / "dicom", "--support", sup, "--out", out) == 0
    assert (out / "labels.nii.gz").is_file() and not (out / "labels.seg.dcm").exists()
    notices = json.loads((out / "report.json").read_text())["notices"]
    assert any("no labels.seg.dcm" in n and "FrameOfReferenceUID" in n for n in notices)
    # asked for: refused before any work
    assert (
        segment(tmp_path / "dicom", "--support", sup, "--out", tmp_path / "o2", "--dicom-seg") == 2
    )
    err = capsys.readouterr().err
    assert "--dicom-seg:" in err and "FrameOfReferenceUID" in err
    assert not (tmp_path / "o2").exists()


def test_dicom_seg_asked_for_a_nifti_is_refused(tmp_path, capsys):
    truth, stored, support = phantom()
    img = sitk.GetImageFromArray(stored.astype(np.float32))
    sitk.WriteImage(img, str(tmp_path / "image.nii.gz"))
    sup = write_like(support, img, tmp_path / "support.nii.gz")
    assert segment(tmp_path / "image.nii.gz", "--support", sup, "--out", tmp_path / "o",
                   "--dicom-seg") == 2  # fmt: skip
    assert "--dicom-seg:" in capsys.readouterr().err


def nrrd_source(path: Path, stored: np.ndarray) -> sitk.Image:
    source = sitk.GetImageFromArray(stored)
    source.SetSpacing((0.75, 0.8, 2.5))
    source.SetOrigin((10.0, -20.0, 30.0))
    c, s = np.cos(0.4), np.sin(0.4)  # oblique: rotated about the second axis, then permuted
    source.SetDirection([0, 0, 1, c, -s, 0, s, c, 0])
    sitk.WriteImage(source, str(path))
    return source


@pytest.mark.parametrize("name", ["image.nrrd", "image.nhdr"])
def test_labels_format_nrrd_writes_labels_nrrd_on_the_source_header(tmp_path, name):
    truth, stored, support = phantom()
    source = nrrd_source(tmp_path / name, stored)
    sup = write_like(support, source, tmp_path / "support.nrrd")
    out = tmp_path / "out"
    assert segment(tmp_path / name, "--support", sup, "--out", out, "--labels-format", "nrrd") == 0

    data, header = nrrd.read(str(out / "labels.nrrd"))  # pynrrd: (i, j, k), the file's order
    _, src = nrrd.read(str(tmp_path / name))
    assert header["space"] == src["space"] == "left-posterior-superior"
    assert np.allclose(header["space directions"], src["space directions"], atol=1e-6)
    assert np.allclose(header["space origin"], src["space origin"], atol=1e-6)
    assert tuple(header["sizes"]) == tuple(src["sizes"])
    nifti = nib.load(out / "labels.nii.gz")
    assert np.array_equal(data, np.asanyarray(nifti.dataobj))  # nibabel: (i, j, k) too
    assert (data[np.transpose(truth, (2, 1, 0)) == 1] == 1).mean() > 0.7
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["labels_nrrd"] == str(out / "labels.nrrd")
    assert report["dicom_series"] is None and report["dicom_seg"] is None


@pytest.mark.parametrize("name", ["image.nii.gz", "image.mha"])
def test_labels_format_nrrd_on_another_format_is_refused(tmp_path, capsys, name):
    _, stored, support = phantom()
    source = nrrd_source(tmp_path / name, stored.astype(np.float32))
    sup = write_like(support, source, tmp_path / "support.nii.gz")
    out = tmp_path / "out"
    assert segment(tmp_path / name, "--support", sup, "--out", out, "--labels-format", "nrrd") == 2
    err = capsys.readouterr().err
    assert "--labels-format nrrd" in err and f"{name} is not an NRRD file" in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["image.nhdr", "image.mhd", "image.mgz"])
def test_labels_nifti_on_the_source_grid_for_other_formats(tmp_path, name):
    truth, stored, support = phantom()
    if name.endswith(".mgz"):  # written with nibabel; file order (i, j, k)
        affine = np.array([[0, 0, -2.5, 30], [-0.75, 0, 0, 12], [0, 0.8, 0, -9], [0, 0, 0, 1.0]])
        file_order = np.transpose(stored, (2, 1, 0)).astype(np.float32)
        nib.save(nib.MGHImage(file_order, affine), tmp_path / name)
        nib.save(nib.MGHImage(np.transpose(support, (2, 1, 0)), affine), tmp_path / "s.mgz")
        sup = tmp_path / "s.mgz"
    else:
        source = nrrd_source(tmp_path / name, stored)
        sup = write_like(support, source, tmp_path / ("support" + Path(name).suffix))
        affine = None
    out = tmp_path / "out"
    assert segment(tmp_path / name, "--support", sup, "--out", out) == 0
    labels = nib.load(out / "labels.nii.gz")
    assert np.allclose(labels.affine, read_volume(tmp_path / name).affine, atol=1e-5)
    if affine is not None:  # and equal to the affine nibabel itself gives the MGH file
        assert np.allclose(labels.affine, affine, atol=1e-5)
    else:  # and on the grid SimpleITK reads from the source
        same_grid(sitk.ReadImage(str(out / "labels.nii.gz")), source)
    got = np.transpose(np.asanyarray(labels.dataobj), (2, 1, 0))
    assert (got[truth == 1] == 1).mean() > 0.7
