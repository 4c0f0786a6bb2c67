"""``fob segment`` on a DICOM series folder (written with pydicom) and on NRRD/MHA (written
with SimpleITK): the labels come out as NIfTI on the source's world grid, checked through
SimpleITK's own reading of the source; ``--series`` picks a series."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from test_segment import segment

from napari_fob.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the DICOM writer
from dicom_series import write_series  # noqa: E402


def phantom():
    """(truth, stored CT values, support): a blob over 8 slices, the support on slice 4."""
    zz, yy, xx = np.mgrid[:8, :32, :36]
    truth = ((zz - 4) / 3.2) ** 2 + ((yy - 16) / 8.0) ** 2 + ((xx - 17) / 9.0) ** 2 <= 1
    noise = np.random.default_rng(0).normal(0, 4, truth.shape)
    stored = (truth * 80 + 1000 + noise).astype(np.int16)
    support = np.zeros(truth.shape, np.uint8)
    support[4] = truth[4]
    return truth.astype(np.uint8), stored, support


def same_grid(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    assert np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    assert np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    assert np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-5)


def itk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def write_like(array: np.ndarray, like: sitk.Image, path: Path) -> Path:
    img = sitk.GetImageFromArray(array)
    img.CopyInformation(like)
    sitk.WriteImage(img, str(path))
    return path


def check_labels(out: Path, source: sitk.Image, truth: np.ndarray) -> None:
    labels = sitk.ReadImage(str(out / "labels.nii.gz"))
    same_grid(labels, source)
    got = sitk.GetArrayFromImage(labels)
    assert (got[truth == 1] == 1).mean() > 0.7 and (got[truth == 0] == 0).mean() > 0.9


def test_segment_a_dicom_folder_with_a_support_converted_by_simpleitk(tmp_path):
    truth, stored, support = phantom()
    write_series(tmp_path / "dicom", stored, pixel_spacing=(0.8, 0.75), intercept=-1024)
    source = itk_series(tmp_path / "dicom")
    sup = write_like(support, source, tmp_path / "support.nii.gz")
    out = tmp_path / "out"
    assert segment(tmp_path / "dicom", "--support", sup, "--out", out) == 0
    check_labels(out, source, truth)
    report = json.loads((out / "report.json").read_text())
    assert report["image"] == str(tmp_path / "dicom")


@pytest.mark.parametrize("name", ["image.nrrd", "image.mha"])
def test_segment_nrrd_and_mha_with_a_support_in_the_same_format(tmp_path, name):
    truth, stored, support = phantom()
    source = sitk.GetImageFromArray(stored)
    source.SetSpacing((0.75, 0.8, 2.5))
    source.SetOrigin((10.0, -20.0, 30.0))
    source.SetDirection([0, 0, 1, 1, 0, 0, 0, 1, 0])  # a permuted grid
    sitk.WriteImage(source, str(tmp_path / name))
    sup = write_like(support, source, tmp_path / ("support" + Path(name).suffix))
    out = tmp_path / "out"
    assert segment(tmp_path / name, "--support", sup, "--out", out) == 0
    check_labels(out, source, truth)


def test_series_chooses_one_of_several(tmp_path, capsys):
    truth, stored, support = phantom()
    other = np.concatenate([stored, stored[:2]])[:, ::-1]  # 10 slices: the default choice
    write_series(tmp_path / "dicom", other, description="other", prefix="A")
    chosen = write_series(tmp_path / "dicom", stored, description="wanted", prefix="B",
                          origin=(0.0, 0.0, 0.0))  # fmt: skip
    (tmp_path / "one").mkdir()
    for path in chosen["files"]:  # SimpleITK's view of the chosen series alone
        (tmp_path / "one" / path.name).write_bytes(path.read_bytes())
    source = itk_series(tmp_path / "one")
    sup = write_like(support, source, tmp_path / "support.nii.gz")
    out = tmp_path / "out"
    assert (
        segment(tmp_path / "dicom", "--support", sup, "--out", out, "--series", chosen["uid"]) == 0
    )
    check_labels(out, source, truth)

    # without --series the larger series is read, with a warning; the support is not on it
    assert segment(tmp_path / "dicom", "--support", sup, "--out", tmp_path / "o2") == 2
    err = capsys.readouterr().err
    assert "IMAGE holds other DICOM series too" in err and chosen["uid"] in err
    base = ["segment", "--prompts", "mask-ring", "--segmenter", "random-walker"]  # not --quiet
    argv = [str(tmp_path / "dicom"), "--support", str(sup), "--out", str(tmp_path / "o3")]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err
    assert "fob segment: warning:" in err and "holds 2 DICOM series" in err

    wrong = ["--support", sup, "--out", tmp_path / "o4", "--series", "1.2.3"]
    assert segment(tmp_path / "dicom", *wrong) == 2
    err = capsys.readouterr().err
    assert "dicom: no series 1.2.3; the folder holds" in err and chosen["uid"] in err


def test_a_folder_without_dicom_is_named(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    sup = tmp_path / "s.nii.gz"
    sup.write_bytes(b"")
    assert segment(tmp_path / "notes", "--support", sup, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "notes: no DICOM image found" in err and "a DICOM series folder" in err
