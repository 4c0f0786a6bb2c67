"""``fob segment``: outputs on the image grid, many volumes, torchrun split, bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.core.io import Volume, read_labels, read_nifti, write_image, write_labels
from napari_fob.core.metrics import dice

AFFINE = np.array([[-1.5, 0, 0, 60.0], [0, 1.5, 0, -50.0], [0, 0, 2.5, -40.0], [0, 0, 0, 1]])


def make_case(folder, *, shift: int = 0, affine=AFFINE):
    """A two-organ phantom as image/support/ground-truth NIfTI files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    zz, yy, xx = np.mgrid[:28, :64, :72]
    organ1 = ((zz - 14) / 7.5) ** 2 + ((yy - 32) / 13.0) ** 2 + ((xx - 28 - shift) / 11.0) ** 2
    organ2 = ((zz - 14) / 5.0) ** 2 + ((yy - 32) / 7.0) ** 2 + ((xx - 54) / 5.0) ** 2
    truth = (organ1 <= 1).astype(np.uint8) + 2 * (organ2 <= 1)
    image = (truth * 60 + np.random.default_rng(shift).normal(0, 4, truth.shape)).astype(np.float32)
    vol = Volume.from_array(image, affine=affine)
    support = np.zeros_like(truth)
    support[14] = truth[14]
    paths = {k: folder / f"{k}.nii.gz" for k in ("image", "support", "truth")}
    write_image(paths["image"], image, vol)
    write_labels(paths["support"], support, vol)
    write_labels(paths["truth"], truth, vol)
    (folder / "labels.json").write_text(json.dumps({"1": "big", "2": "small"}))
    return paths


def segment(*argv) -> int:
    base = ["segment", "--prompts", "mask-ring", "--segmenter", "random-walker", "--quiet"]
    return main([*base, *map(str, argv)])


def test_segment_writes_the_four_files_on_the_image_grid(tmp_path):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    assert segment(case["image"], "--support", case["support"], "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.nii.gz",
        "overview.png",
        "prompts.json",
        "report.json",
    ]
    image = read_nifti(case["image"])
    written = nib.load(out / "labels.nii.gz")
    assert written.shape == nib.load(case["image"]).shape
    assert np.allclose(written.affine, AFFINE)
    labels = read_labels(out / "labels.nii.gz", like=image)
    truth = read_labels(case["truth"], like=image)
    for lab in (1, 2):
        assert dice(labels == lab, truth == lab) > 0.75
    report = json.loads((out / "report.json").read_text())
    assert report["segmenter"]["kind"] == "random-walker" and report["notices"] == []
    assert report["prompts"]["kind"] == "mask-ring"
    assert set(report["timings_s"]) >= {"read", "predict", "commit", "save", "overview", "total"}
    assert report["labels"]["1"]["name"] == "big" and report["labels"]["1"]["confidence"]
    sidecar = json.loads((out / "prompts.json").read_text())
    assert sidecar["names"] == {"1": "big", "2": "small"}
    assert (out / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fob_segment_with_registration_prompts(tmp_path):
    case = make_case(tmp_path / "case", shift=0)
    out = tmp_path / "out"
    argv = ["--support", case["support"], "--out", out, "--prompts", "registration"]
    assert segment(case["image"], *argv) == 0  # the last --prompts wins
    report = json.loads((out / "report.json").read_text())
    assert report["prompts"]["kind"] == "registration"
    image = read_nifti(case["image"])
    labels = read_labels(out / "labels.nii.gz", like=image)
    truth = read_labels(case["truth"], like=image)
    for lab in (1, 2):
        assert dice(labels == lab, truth == lab) > 0.75
    sidecar = json.loads((out / "prompts.json").read_text())
    assert "registration" in json.dumps(sidecar)


def test_labels_slices_and_chain_options(tmp_path):
    case = make_case(tmp_path / "case")
    out = tmp_path / "out"
    argv = ["--support", case["support"], "--out", out, "--labels", "1", "--slices", "10:18"]
    assert segment(case["image"], *argv, "--mode", "chain", "--window=-20,140") == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["labels"]) == ["1"]
    assert report["labels"]["1"]["slices_with_voxels"] == list(range(10, 18))
    assert report["window"] == {"low": -20.0, "high": 140.0, "source": "user"}


def test_many_volumes_manifest_and_torchrun_split(tmp_path, monkeypatch):
    a, b, c = (make_case(tmp_path / n, shift=i) for i, n in enumerate("abc"))
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,support,out\nc/image.nii.gz,c/support.nii.gz,third\n")
    argv = [a["image"], b["image"], "--support", a["support"], "--support", b["support"]]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert segment(*argv, "--manifest", manifest, "--out", tmp_path / "out") == 0
    # volumes 0 (a) and 2 (c) belong to rank 0; this rank did volume 1 only
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_image"]
    monkeypatch.setenv("RANK", "0")
    assert segment(*argv, "--manifest", manifest, "--out", tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_image", "b_image", "third"]


def _two_d(tmp_path):
    path = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), path)
    return path


def _empty_support(tmp_path, case):
    image = read_nifti(case["image"])
    write_labels(tmp_path / "empty.nii.gz", np.zeros(image.data.shape, np.uint8), image)
    return tmp_path / "empty.nii.gz"


def _other_grid(tmp_path, case):
    other = make_case(tmp_path / "other", affine=np.diag([2.0, 2.0, 3.0, 1.0]))
    return other["support"]


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("no support voxels", "has no non-zero voxels"),
        ("different grid", "is not on the grid of IMAGE"),
        ("unknown label", "--labels 7: no support voxels"),
        ("2D image", "a 2D image has no slices"),
        ("missing SAM checkpoint", "missing weights: no SAM vit_b checkpoint found"),
        ("missing FoB checkpoint", "missing weights"),
        ("no shipped FoB model", "the default FoB model fob-compact.pt is missing"),
        ("support count", "give one --support per IMAGE"),
        ("bad slices", "--slices '3-9'"),
    ],
)
@pytest.mark.usefixtures("without_shipped_model")
def test_bad_input_exits_non_zero_with_one_paragraph(tmp_path, capsys, problem, expected):
    case = make_case(tmp_path / "case")
    image, support, extra = case["image"], case["support"], []
    if problem == "no support voxels":
        support = _empty_support(tmp_path, case)
    elif problem == "different grid":
        support = _other_grid(tmp_path, case)
    elif problem == "unknown label":
        extra = ["--labels", "7"]
    elif problem == "2D image":
        image = _two_d(tmp_path)
    elif problem == "missing SAM checkpoint":
        extra = ["--segmenter", "sam"]
    elif problem == "missing FoB checkpoint":
        extra = ["--prompts", "fob", "--fob-checkpoint", str(tmp_path / "nope.pt")]
    elif problem == "no shipped FoB model":
        extra = ["--prompts", "fob"]  # --fob-checkpoint default
    elif problem == "support count":
        image = f"{image} {image}"
    elif problem == "bad slices":
        extra = ["--slices", "3-9"]
    rc = segment(*str(image).split(), "--support", support, "--out", tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert expected in err
    assert "Traceback" not in err and err.startswith("fob segment: error:")


@pytest.mark.parametrize("name, label", [("mni-brain", "1"), ("abdomen-phantom", "3")])
def test_segment_on_the_samples_writes_on_their_grid(tmp_path, name, label):
    from napari_fob.samples import write_sample

    files = write_sample(name, tmp_path / "in")
    out = tmp_path / "out"
    assert (
        segment(files["image"], "--support", files["support"], "--out", out, "--labels", label) == 0
    )
    source, written = nib.load(files["image"]), nib.load(out / "labels.nii.gz")
    assert written.shape == source.shape and np.allclose(written.affine, source.affine)
    image = read_nifti(files["image"])
    truth = read_labels(files["labels"], like=image) == int(label)
    result = read_labels(out / "labels.nii.gz", like=image)
    assert set(np.unique(result)) == {0, int(label)}
    assert dice(result > 0, truth) > 0.4
    report = json.loads((out / "report.json").read_text())
    assert report["labels"][label]["name"]


def test_segment_job_with_tiny_fob_and_tiny_sam(tmp_path):
    import torch

    from napari_fob.commands.segment_job import segment_volume
    from napari_fob.model.fob import build_fob
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters.sam import SamSegmenter
    from napari_fob.segmenters.sam_models import build_tiny_sam

    torch.manual_seed(0)
    case = make_case(tmp_path / "case")
    report = segment_volume(
        case["image"],
        case["support"],
        tmp_path / "out",
        generator=make_generator("fob", model=build_fob("tiny"), device="cpu"),
        segmenter=SamSegmenter.from_model(build_tiny_sam(0), model_id="tiny-0", device="cpu"),
        labels=[2],
        slices="12:17",
        progress=False,
    )
    assert report["prompts"]["kind"] == "fob" and report["segmenter"]["model_id"] == "tiny-0"
    assert report["labels"]["2"]["predicted_slices"] == [12, 13, 15, 16]
    assert len(report["labels"]["2"]["confidence"]) == 4
    written = nib.load(tmp_path / "out" / "labels.nii.gz")
    assert written.shape == nib.load(case["image"]).shape and np.allclose(written.affine, AFFINE)
    sidecar = json.loads((tmp_path / "out" / "prompts.json").read_text())
    assert {r["prompts"]["origin"] for r in sidecar["slices"] if r["prompts"]} == {"fob"}


def test_fob_prior_option_reaches_the_generator(tmp_path):
    case = make_case(tmp_path / "case")
    out = tmp_path / "support-prior"
    args = ["segment", str(case["image"]), "--support", str(case["support"]), "--slices", "12:15"]
    extra = ["--segmenter", "random-walker", "--quiet", "--labels", "1", "--out", str(out)]
    assert main([*args, *extra, "--fob-prior", "support"]) == 0
    report = json.loads((out / "report.json").read_text())["prompts"]
    assert report["prior_source"] == "support" and report["location_prior"] == [1.0, 0.75]
    bad = subprocess.run(
        [sys.executable, "-m", "napari_fob.cli", *args, *extra, "--fob-prior", "atlas"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--fob-prior: invalid choice: 'atlas'" in bad.stderr


def test_paper_inference_turns_off_the_in_volume_additions(tmp_path):
    case = make_case(tmp_path / "case")
    base = ["segment", "--segmenter", "random-walker", "--quiet", "--labels", "1"]
    args = [case["image"], "--support", case["support"], "--slices", "12:17"]
    reports = {}
    for name, extra in (("ours", []), ("paper", ["--paper-inference"])):
        out = tmp_path / name
        assert main([*base, *map(str, args), "--out", str(out), *extra]) == 0
        reports[name] = json.loads((out / "report.json").read_text())["prompts"]
    assert reports["ours"]["kind"] == reports["paper"]["kind"] == "fob"
    assert reports["ours"]["location_prior"] == [0.5, 0.0]  # around the registered footprint
    assert reports["ours"]["prior_source"] == "registration"
    assert reports["paper"]["prior_source"] == "support"
    assert reports["ours"]["inward_prior"] == 1.0 and reports["ours"]["fg_relative"] == 0.7
    assert reports["ours"]["band_exclusion"] == 20.0 and reports["paper"]["band_exclusion"] is None
    assert reports["ours"]["fine_ring"] is True and reports["paper"]["fine_ring"] is False
    assert reports["ours"]["fg_core"] == 0.75 and reports["paper"]["fg_core"] is None
    assert reports["paper"]["location_prior"] is None
    assert reports["paper"]["inward_prior"] is None and reports["paper"]["fg_relative"] is None
