"""``fob segment`` on non-finite voxels, bad thresholds and supports outside --slices (issue 16,
part 4): a clear message and exit 2, or a warning with the count and a result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_segment import make_case, segment

from napari_fob.cli import main
from napari_fob.core.io import read_nifti, write_image


def with_nan(case, where) -> None:
    image = read_nifti(case["image"])
    data = np.array(image.data)
    data[where] = np.nan
    write_image(case["image"], data, image)


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1.5"])
def test_threshold_outside_0_1_is_refused_before_models_load(tmp_path, capsys, value):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    # a missing FoB checkpoint would fail later: the threshold is checked first
    argv = ["--prompts", "fob", "--fob-checkpoint", tmp_path / "none.pt"]
    code = segment(case["image"], "--support", case["support"], "--out", out,
                   f"--threshold={value}", *argv)  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--threshold" in err and "[0, 1]" in err and "Traceback" not in err
    assert not out.exists()


def test_supports_outside_slices_are_refused(tmp_path, capsys):
    case = make_case(tmp_path / "case")  # supports on slice 14
    out = tmp_path / "out"
    assert segment(case["image"], "--support", case["support"], "--out", out,
                   "--slices", "0:10") == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "outside --slices 0:10" in err and "label 1 on slice(s) 14" in err
    assert "label 2 on slice(s) 14" in err
    assert not (out / "labels.nii.gz").exists()


def test_nan_voxels_outside_the_support_warn_once_with_the_count(tmp_path, capsys):
    case = make_case(tmp_path / "case")
    with_nan(case, (slice(0, 5), 0, slice(0, 3)))  # 15 NaN voxels, far from the organs
    out = tmp_path / "out"
    argv = ["segment", "--prompts", "mask-ring", "--segmenter", "random-walker"]  # not --quiet
    assert main([*argv, str(case["image"]), "--support", str(case["support"]),
                 "--out", str(out), "--slices", "8:20"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "fob segment: warning:" in err and err.count("NaN or inf") == 1 and "15 of its" in err
    report = json.loads((out / "report.json").read_text())
    assert report["nonfinite_voxels"] == 15
    assert np.isfinite([report["window"]["low"], report["window"]["high"]]).all()
    assert report["labels"]["1"]["slices_with_voxels"]


@pytest.mark.parametrize("window", ["auto", "0,200"])
def test_nan_inside_the_support_is_refused_naming_label_and_slice(tmp_path, capsys, window):
    case = make_case(tmp_path / "case")
    with_nan(case, (14, 32, 28))  # the centre of organ 1 on the support slice
    out = tmp_path / "out"
    assert segment(case["image"], "--support", case["support"], "--out", out,
                   "--window", window) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "support of label 1 on slice 14: 1 of its" in err and "NaN or inf" in err
    assert "Traceback" not in err and not (out / "labels.nii.gz").exists()
