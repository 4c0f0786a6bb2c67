"""``fob segment`` output folders: checked before any work, written as one unit, inputs kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_segment import make_case, segment

from napari_fob.commands import segment_job

RESULT = ["labels.nii.gz", "overview.png", "prompts.json", "report.json"]


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _no_compute(monkeypatch):
    """Make any computation fail loudly: the checks must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("computed before the output folder was checked")

    monkeypatch.setattr("napari_fob.commands.segment.build_models", boom)


def test_out_holding_the_inputs_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    case = make_case(tmp_path / "case")
    before = _contents(tmp_path / "case")
    _no_compute(monkeypatch)
    rc = segment(case["image"], "--support", case["support"], "--out", tmp_path / "case")
    err = capsys.readouterr().err
    assert rc == 2 and "holds the input(s)" in err and str(case["image"]) in err
    assert _contents(tmp_path / "case") == before
    # with --overwrite too: inputs are never written over
    rc = segment(case["image"], "--support", case["support"], "--out", tmp_path, "--overwrite")
    assert rc == 2 and "holds the input(s)" in capsys.readouterr().err


def test_a_previous_result_needs_overwrite(tmp_path, capsys):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    args = [case["image"], "--support", case["support"], "--out", out]
    assert segment(*args) == 0
    first = _contents(out)
    assert segment(*args, "--labels", "1") == 2
    err = capsys.readouterr().err
    assert "already holds a result" in err and "--overwrite" in err
    assert _contents(out) == first
    assert segment(*args, "--labels", "1", "--overwrite") == 0
    assert _listing(out) == RESULT
    assert list(json.loads((out / "report.json").read_text())["labels"]) == ["1"]


def test_other_files_in_out_are_kept(tmp_path):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert segment(case["image"], "--support", case["support"], "--out", out) == 0
    assert _listing(out) == sorted([*RESULT, "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_an_unusable_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch, kind):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("x")
        target = out / "sub"
    elif os.geteuid() == 0:  # root writes into 0500 folders; nobody creates folders in /proc
        target = Path("/proc/napari-fob-out/sub")
    else:
        out.mkdir()
        out.chmod(0o500)
        target = out / "sub"
    _no_compute(monkeypatch)
    try:
        rc = segment(case["image"], "--support", case["support"], "--out", target)
    finally:
        if out.is_dir():
            out.chmod(0o700)
    err = capsys.readouterr().err
    assert rc == 2 and "--out" in err and "Traceback" not in err


def test_a_failure_while_writing_leaves_the_previous_result_whole(tmp_path, monkeypatch):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    args = [case["image"], "--support", case["support"], "--out", out]
    assert segment(*args) == 0
    first = _contents(out)

    def full_disk(path, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("napari_fob.commands.overview.write_overview", full_disk)
    try:  # raised, or turned into an exit status by the CLI's error boundary
        rc = segment(*args, "--labels", "1", "--overwrite")
    except OSError as err:
        assert "No space" in str(err)
        rc = 1
    assert rc != 0
    assert _contents(out) == first  # labels and prompts were written already, but staged


def test_manifest_out_must_stay_inside_out(tmp_path, capsys, monkeypatch):
    make_case(tmp_path / "c")
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,support,out\nc/image.nii.gz,c/support.nii.gz,../../escape\n")
    _no_compute(monkeypatch)
    assert segment("--manifest", manifest, "--out", tmp_path / "out") == 2
    assert "inside --out" in capsys.readouterr().err
    assert not (tmp_path.parent / "escape").exists()


def test_a_batch_goes_past_a_bad_volume_and_reports_it(tmp_path, capsys):
    good, bad = make_case(tmp_path / "good"), make_case(tmp_path / "bad", shift=1)
    bad["image"].write_bytes(bad["image"].read_bytes()[:-40])  # truncated gzip
    argv = [bad["image"], good["image"], "--support", bad["support"], "--support", good["support"]]
    rc = segment(*argv, "--out", tmp_path / "out")
    err = capsys.readouterr().err
    assert rc == 2
    assert "1 of 2 volume(s) failed" in err and str(bad["image"]) in err and "gzip" in err
    assert _listing(tmp_path / "out" / "good_image") == RESULT
    assert not (tmp_path / "out" / "bad_image").exists()


def test_result_folder_refuses_an_input_inside(tmp_path):
    (tmp_path / "img.nii.gz").write_bytes(b"")
    with pytest.raises(segment_job.UsageError, match="holds the input"):
        segment_job.result_folder(tmp_path, [tmp_path / "img.nii.gz"], overwrite=True)
