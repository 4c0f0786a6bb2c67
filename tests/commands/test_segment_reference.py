"""``fob segment --reference-image REF --reference-labels LABELS``: supports from another scan.

The reference and the queries are phantoms of different seeds (different subjects), written
with nibabel on other voxel sizes and orientations than each other."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.core.formats import read_support, read_volume
from napari_fob.core.metrics import dice
from napari_fob.samples.phantom import make_abdomen_phantom


def _write(folder, seed, shape, spacing, *, flip=False):
    """A phantom as image.nii.gz + labels.nii.gz + labels.json, stored (X, Y, Z) LPS, or with
    every axis reversed (RAS storage) when `flip`."""
    folder.mkdir(parents=True, exist_ok=True)
    image, labels, names = make_abdomen_phantom(seed=seed, shape=shape, spacing=spacing)
    dz, dy, dx = spacing
    affine = np.diag([dx, dy, dz, 1.0])  # i -> left, j -> posterior, k -> superior
    data, lab = np.transpose(image, (2, 1, 0)), np.transpose(labels, (2, 1, 0))
    if flip:
        data, lab = data[::-1, ::-1, ::-1], lab[::-1, ::-1, ::-1]
        affine = affine @ np.array([[-1, 0, 0, data.shape[0] - 1], [0, -1, 0, data.shape[1] - 1],
                                    [0, 0, -1, data.shape[2] - 1], [0, 0, 0, 1]])  # fmt: skip
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(np.ascontiguousarray(lab), affine), folder / "labels.nii.gz")
    (folder / "labels.json").write_text(json.dumps({str(k): v for k, v in names.items()}))
    return folder / "image.nii.gz", folder / "labels.nii.gz"


@pytest.fixture(scope="module")
def subjects(tmp_path_factory):
    root = tmp_path_factory.mktemp("subjects")
    ref = _write(root / "ref", 0, (36, 80, 80), (3.0, 2.8, 2.8))
    q1 = _write(root / "q1", 1, (30, 72, 88), (3.6, 3.1, 2.6), flip=True)
    q2 = _write(root / "q2", 2, (40, 84, 84), (2.7, 2.7, 2.7))
    return root, ref, q1, q2


def segment(*argv) -> int:
    return main(["segment", "--segmenter", "random-walker", "--quiet", *map(str, argv)])


def _extent(labels_path, label):
    labels = read_support(
        labels_path, like=read_volume(str(labels_path).replace("labels", "image"))
    )
    zs = np.flatnonzero((labels == label).any(axis=(1, 2)))
    return int(zs[0]), int(zs[-1]) + 1


def test_fob_from_a_reference_of_another_subject_and_orientation(subjects, tmp_path):
    root, (ref_img, ref_lab), (q_img, q_lab), _ = subjects
    a, b = _extent(q_lab, 1)
    out = tmp_path / "out"
    argv = [q_img, "--reference-image", ref_img, "--reference-labels", ref_lab, "--labels", "1"]
    assert segment(*argv, "--slices", f"{a}:{b}", "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.nii.gz", "overview.png", "prompts.json", "report.json", "summary.csv",
    ]  # fmt: skip
    written = nib.load(out / "labels.nii.gz")
    assert written.shape == nib.load(q_img).shape and np.allclose(
        written.affine, nib.load(q_img).affine
    )
    query = read_volume(q_img)
    truth = read_support(q_lab, like=query) == 1
    assert dice(read_support(out / "labels.nii.gz", like=query) == 1, truth) > 0.3
    report = json.loads((out / "report.json").read_text())
    assert report["supports_from"] == "reference" and report["reference_image"] == str(ref_img)
    assert (
        report["prompts"]["location_prior"] is None and report["prompts"]["band_exclusion"] is None
    )
    entry = report["labels"]["1"]
    assert entry["name"] == "liver" and entry["support_slices"] == []
    assert entry["predicted_slices"] == list(range(a, b))
    assert len(entry["reference"]["parts"]) == 3 and entry["reference"]["extent"]["rule"] == "given"
    assert 0 <= entry["mean_confidence"] <= 1
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["label"], r["status"], r["supports_from"], r["extent_rule"]) for r in rows] == [
        ("1", "ok", "reference", "given")
    ]


def test_auto_extent_says_how_sure(subjects, tmp_path):
    root, (ref_img, ref_lab), _, (q_img, q_lab) = subjects
    out = tmp_path / "out"
    argv = [q_img, "--reference-image", ref_img, "--reference-labels", ref_lab, "--labels", "3"]
    assert segment(*argv, "--prompts", "mask-ring", "--out", out) == 0
    extent = json.loads((out / "report.json").read_text())["labels"]["3"]["reference"]["extent"]
    a, b = _extent(q_lab, 3)
    assert extent["rule"] == "body-relative"
    assert abs(extent["slices"][0] - a) <= 5 and abs(extent["slices"][1] - b) <= 5
    # the phantoms' bodies fill the field of view along z: the rule says it cannot be sure
    assert extent["sure"] is False and "field of view" in extent["reason"]
    row = next(csv.DictReader((out / "summary.csv").open()))
    assert row["extent_sure"] == "False" and row["extent_note"] == extent["reason"]
    # the summary is an output like the others: kept without --overwrite, never an input
    again = [*argv, "--prompts", "mask-ring", "--out", tmp_path / "again"]
    assert segment(*again, "--summary", out / "summary.csv") == 2
    assert segment(*again, "--summary", q_img) == 2
    assert segment(*again, "--summary", out / "summary.csv", "--overwrite") == 0


def test_manifest_mixes_reference_and_support_rows_and_shards_like_torchrun(
    subjects, tmp_path, monkeypatch
):
    root, (ref_img, ref_lab), (q1, _), (q2, q2_lab) = subjects
    support = tmp_path / "support.nii.gz"
    lab = nib.load(q2_lab)
    data = np.asarray(lab.dataobj).copy()
    keep = data.shape[2] // 2
    data[:, :, :keep] = 0
    data[:, :, keep + 1 :] = 0
    nib.save(nib.Nifti1Image(data, lab.affine), support)
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "image,support,reference_image,reference_labels,out\n"
        f"{q1},,{ref_img},{ref_lab},one\n"
        f"{q2},{support},,,two\n"
        f"{q2},,{ref_img},{ref_lab},three\n"
    )
    argv = [
        "--manifest",
        manifest,
        "--prompts",
        "mask-ring",
        "--labels",
        "2",
        "--out",
        tmp_path / "o",
    ]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert segment(*argv) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["summary.rank1.csv", "two"]
    monkeypatch.setenv("RANK", "0")
    assert segment(*argv) == 0
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["one", "summary.rank0.csv", "summary.rank1.csv", "three", "two"]
    rank0 = list(csv.DictReader((tmp_path / "o" / "summary.rank0.csv").open()))
    assert [(r["out"][-5:], r["supports_from"]) for r in rank0] == [
        ("o/one", "reference"), ("three", "reference")
    ]  # fmt: skip
    rank1 = list(csv.DictReader((tmp_path / "o" / "summary.rank1.csv").open()))
    assert [(r["supports_from"], r["extent_rule"]) for r in rank1] == [("support", "auto")]
    report = json.loads((tmp_path / "o" / "two" / "report.json").read_text())
    assert report["support"] == str(support)


def _two_d(tmp_path):
    path = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), path)
    return path


def _four_d(tmp_path):
    path = tmp_path / "fourd.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 10, 3), np.float32), np.eye(4)), path)
    return path


def _sagittal(tmp_path, ref_img, ref_lab):
    """The reference stored with its third voxel axis running left-right (sagittal slices)."""
    paths = []
    for src, name in ((ref_img, "sag_image.nii.gz"), (ref_lab, "sag_labels.nii.gz")):
        img = nib.load(src)
        data = np.transpose(np.asarray(img.dataobj), (2, 1, 0))  # (k, j, i)
        perm = np.zeros((4, 4))
        perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1  # new (a, b, c) -> old (c, b, a)
        nib.save(nib.Nifti1Image(np.ascontiguousarray(data), img.affine @ perm), tmp_path / name)
        paths.append(tmp_path / name)
    return paths


def _other_grid(tmp_path, ref_img):
    path = tmp_path / "other_grid.nii.gz"
    img = nib.load(ref_img)
    nib.save(
        nib.Nifti1Image(np.zeros(img.shape[:2] + (img.shape[2] - 1,), np.uint8), img.affine), path
    )
    return path


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("label absent", "hold no voxel of label 9"),
        ("slice axis", "the reference's slices are taken along left-right"),
        ("2D reference", "a 2D image has no extent to split"),
        ("4D reference", "expected a 3D volume (or 4D with a single volume)"),
        ("labels off grid", "is not on the grid of --reference-image"),
        ("labels alone", "--reference-labels was given alone"),
        ("with support", "--support and --reference-image both given"),
        ("registration", "registration walks from a support within one scan"),
        ("chain", "--mode chain walks from supports painted on the scan itself"),
    ],
)
def test_bad_references_exit_2_with_one_paragraph(subjects, tmp_path, capsys, problem, expected):
    root, (ref_img, ref_lab), (q_img, q_lab), _ = subjects
    extra = ["--prompts", "mask-ring"]
    if problem == "label absent":
        extra += ["--labels", "9"]
    elif problem == "slice axis":
        ref_img, ref_lab = _sagittal(tmp_path, ref_img, ref_lab)
    elif problem == "2D reference":
        ref_img = ref_lab = _two_d(tmp_path)
    elif problem == "4D reference":
        ref_img = ref_lab = _four_d(tmp_path)
    elif problem == "labels off grid":
        ref_lab = _other_grid(tmp_path, ref_img)
    elif problem == "with support":
        extra += ["--support", q_lab]
    elif problem == "registration":
        extra = ["--prompts", "registration"]
    elif problem == "chain":
        extra += ["--mode", "chain"]
    refs = ["--reference-image", ref_img, "--reference-labels", ref_lab]
    if problem == "labels alone":
        refs = refs[2:]
    rc = segment(q_img, *refs, *extra, "--out", tmp_path / "out")
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expected in err
    assert "Traceback" not in err and err.startswith("fob segment: error:")
    assert not (tmp_path / "out" / "labels.nii.gz").exists()


def test_a_batch_killed_mid_way_keeps_the_summary_of_the_volumes_it_finished(subjects, tmp_path):
    """SIGKILL while the second volume is segmented (a real kill of a forked child): the
    summary already holds the first volume's rows, written as one file; no second row."""
    import os

    from napari_fob.commands import segment as segment_cmd

    root, (ref_img, ref_lab), (q1, _), (q2, _) = subjects
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "image,reference_image,reference_labels,out\n"
        f"{q1},{ref_img},{ref_lab},one\n{q2},{ref_img},{ref_lab},two\n"
    )
    argv = ["--manifest", manifest, "--prompts", "mask-ring", "--labels", "2"]
    pid = os.fork()
    if pid == 0:  # the child: killed as the second volume starts
        real, calls = segment_cmd._segment_one, [0]

        def second_is_killed(job, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), 9)
            return real(job, *args, **kwargs)

        segment_cmd._segment_one = second_is_killed
        try:
            segment(*argv, "--out", tmp_path / "o")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [r["out"][-3:] for r in rows] == ["one"] and rows[0]["supports_from"] == "reference"
    assert not (tmp_path / "o" / "two").exists()
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]  # no temp left
