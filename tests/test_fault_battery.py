"""The fault battery of issue 16 (part 6): the cases the issue lists that no other test module
covers end to end. Each test writes tiny real files, runs the real CLI (in a subprocess where
exit statuses, signals or resource limits matter) and checks a clear message or a consistent
old/new state. docs/reliability.md's "The fault battery" maps every case to its test."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

for _sub in ("commands", "model"):  # helpers of the tests that sit there
    sys.path.insert(0, str(Path(__file__).parent / _sub))
from test_fob_checkpoint import _flip_tensor_bytes  # noqa: E402
from test_segment import make_case, segment  # noqa: E402

from faults import die_before_step  # noqa: E402
from napari_fob.cli import main  # noqa: E402
from napari_fob.core import atomic  # noqa: E402
from napari_fob.core.io import read_nifti  # noqa: E402
from napari_fob.prompting.generators import MaskRingGenerator  # noqa: E402
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter  # noqa: E402
from napari_fob.session import AnnotationSession, run  # noqa: E402

SEGMENT = ["segment", "--prompts", "mask-ring", "--segmenter", "random-walker", "--quiet"]
RESULT = ["labels.nii.gz", "overview.png", "prompts.json", "report.json"]

# `python -c LIMITED LIMIT ARGS...`: the CLI with writes capped at LIMIT bytes per file. With
# SIGXFSZ ignored a write past the cap fails with EFBIG, as a full disk fails with ENOSPC.
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from napari_fob.cli import main
sys.exit(main(sys.argv[1:]))
"""


def fob(*args, limit: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    argv = ["-m", "napari_fob.cli"] if limit is None else ["-c", LIMITED, str(limit)]
    return subprocess.run(
        [sys.executable, *argv, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def one_line(stderr: str, command: str = "segment") -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"fob {command}: error: "), stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    return lines[0]


def contents(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def loads_whole(out: Path, image: Path) -> AnnotationSession:
    """Load a result folder as a session: refuses labels and prompts from different saves."""
    return AnnotationSession.load(
        out, read_nifti(image), generator=MaskRingGenerator(), segmenter=RandomWalkerSegmenter()
    )


def labels_in(out: Path) -> set[int]:
    return {int(v) for v in np.unique(np.asarray(nib.load(out / "labels.nii.gz").dataobj))} - {0}


@pytest.fixture
def case(tmp_path):
    return make_case(tmp_path / "case")


@pytest.fixture
def previous(tmp_path, case):
    """A finished result for label 1 in tmp/out, and its files' digests."""
    out = tmp_path / "out"
    assert segment(case["image"], "--support", case["support"], "--out", out, "--labels", "1") == 0
    return out, contents(out)


# ---- --out and the inputs -----------------------------------------------------------------
def test_out_set_to_the_sample_folder_keeps_its_ground_truth(tmp_path, capsys):
    sample = tmp_path / "sample"
    assert main(["sample", "abdomen-phantom", "--out", str(sample), "--quiet"]) == 0
    before = contents(sample)
    assert "labels.nii.gz" in before  # the ground truth, named like a result
    for extra in ([], ["--overwrite"]):
        rc = segment(sample / "image.nii.gz", "--support", sample / "support.nii.gz",
                     "--out", sample, *extra)  # fmt: skip
        assert rc == 2 and "holds the input(s)" in capsys.readouterr().err
    assert contents(sample) == before


@pytest.mark.parametrize("out", ["../../x", "/tmp/napari-fob-escape", "a/../../x"])
def test_a_manifest_out_outside_out_is_refused(tmp_path, capsys, out):
    make_case(tmp_path / "c")
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"image,support,out\nc/image.nii.gz,c/support.nii.gz,{out}\n")
    assert segment("--manifest", manifest, "--out", tmp_path / "out") == 2
    assert "inside --out" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not Path("/tmp/napari-fob-escape").exists()


# ---- a later failure leaves the previous result whole -------------------------------------
def test_a_nan_threshold_leaves_the_previous_result(case, previous, capsys):
    out, before = previous
    rc = segment(case["image"], "--support", case["support"], "--out", out, "--overwrite",
                 "--threshold", "nan")  # fmt: skip
    assert rc == 2 and "--threshold nan" in capsys.readouterr().err
    assert contents(out) == before


@pytest.mark.parametrize("limit", [1_000, 20_000, 60_000])
def test_a_full_disk_leaves_the_previous_result_whole(case, previous, limit):
    """The 2 kB labels, 26 kB prompts and 220 kB overview: the write fails at each in turn."""
    out, before = previous
    result = fob(*SEGMENT, case["image"], "--support", case["support"], "--out", out,
                 "--overwrite", limit=limit)  # fmt: skip
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "File too large" in line and str(out) in line and "disk is full" in line
    assert contents(out) == before  # no temporary file left either
    assert labels_in(out) == {1} and loads_whole(out, case["image"])


def test_a_full_disk_on_a_first_run_leaves_no_result(tmp_path, case):
    result = fob(*SEGMENT, case["image"], "--support", case["support"], "--out",
                 tmp_path / "new", limit=20_000)  # fmt: skip
    assert result.returncode == 1 and str(tmp_path / "new") in one_line(result.stderr)
    assert list((tmp_path / "new").iterdir()) == []


def test_two_writers_leave_one_whole_result(tmp_path, case):
    out = tmp_path / "out"
    args = [*SEGMENT, case["image"], "--support", case["support"], "--out", out]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "napari_fob.cli", *map(str, args), *extra],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for extra in (["--labels", "1"], ["--labels", "2"])
    ]
    codes = sorted(p.wait(timeout=300) for p in procs)
    errs = [p.stderr.read() for p in procs]
    assert codes == [0, 2], errs  # the second is refused: the first's result is there
    assert any("already holds a result" in e for e in errs)
    assert sorted(os.listdir(out)) == RESULT
    assert labels_in(out) in ({1}, {2}) and loads_whole(out, case["image"])
    # with --overwrite both finish; the folder holds the last one whole
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "napari_fob.cli",
                *map(str, args),
                "--overwrite",
                "--labels",
                lab,
            ]
        )  # fmt: skip
        for lab in ("1", "2")
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    report = json.loads((out / "report.json").read_text())
    assert labels_in(out) == {int(k) for k in report["labels"]}
    assert loads_whole(out, case["image"]) and sorted(os.listdir(out)) == RESULT


@pytest.mark.slow  # about 25 s: one forked run per file-system step
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_during_fob_segment_leaves_the_old_or_the_new_result(case, previous):
    """`fob segment --labels 2 --overwrite` over a label-1 result, SIGKILLed before each of
    its file-system steps in turn: the folder then reads as the label-1 or the label-2 result."""
    out, before = previous
    argv = [*SEGMENT, str(case["image"]), "--support", str(case["support"]), "--out", str(out),
            "--overwrite", "--labels", "2"]  # fmt: skip
    seen = set()
    for n in range(1, 80):
        pid = os.fork()
        if pid == 0:
            try:
                die_before_step(n)
                main(argv)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status)
        session = loads_whole(out, case["image"])  # recovers an interrupted commit first
        tag = labels_in(out)
        assert tag in ({1}, {2}), f"step {n}: labels {tag}"
        assert set(session.supports) == tag, f"mixed state after step {n}"
        assert set(json.loads((out / "report.json").read_text())["labels"]) == {str(*tag)}
        seen.add(min(tag))
        if not killed:
            break
        if tag == {2}:  # rolled forward: put the old result back for the next step
            shutil.rmtree(out)
            assert segment(case["image"], "--support", case["support"], "--out", out,
                           "--labels", "1") == 0  # fmt: skip
    assert not killed and seen == {1, 2}
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_ctrl_c_while_writing_is_130_and_keeps_the_previous_result(case, previous):
    out, before = previous
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job's is off\n"
        "import napari_fob.commands.overview as overview\n"
        "def slow(*a, **k):\n"
        "    print('ready', flush=True); time.sleep(60)\n"
        "overview.write_overview = slow\n"
        "from napari_fob.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [*SEGMENT, case["image"], "--support", case["support"], "--out", out, "--overwrite"]
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"  # labels and prompts are staged
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and one_line(err) == "fob segment: error: interrupted"
    assert contents(out) == before


# ---- damaged inputs -----------------------------------------------------------------------
def test_a_crc_damaged_nii_gz_is_refused_by_the_cli(tmp_path, case):
    data = bytearray(case["image"].read_bytes())
    data[-8] ^= 0xFF  # the gzip CRC-32: nibabel alone loads every voxel
    case["image"].write_bytes(bytes(data))
    assert nib.load(case["image"]).get_fdata().shape == (72, 64, 28)
    result = fob(*SEGMENT, case["image"], "--support", case["support"], "--out", tmp_path / "o")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert str(case["image"]) in line and "gzip" in line
    assert not (tmp_path / "o" / "labels.nii.gz").exists()


def test_a_truncated_uncompressed_nifti_is_named(tmp_path, case):
    image = nib.load(case["image"])
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine), tmp_path / "i.nii")
    raw = (tmp_path / "i.nii").read_bytes()
    (tmp_path / "i.nii").write_bytes(raw[: len(raw) // 2])
    result = fob(*SEGMENT, tmp_path / "i.nii", "--support", case["support"], "--out",
                 tmp_path / "o")  # fmt: skip
    line = one_line(result.stderr)
    assert result.returncode == 2 and str(tmp_path / "i.nii") in line and "damaged" in line


def test_an_rgb_nifti_is_refused(tmp_path, case):
    image = nib.load(case["image"])
    data = np.asarray(image.dataobj)
    nib.save(nib.Nifti1Image(np.stack([data] * 3, -1), image.affine), tmp_path / "rgb.nii.gz")
    result = fob(*SEGMENT, tmp_path / "rgb.nii.gz", "--support", case["support"], "--out",
                 tmp_path / "o")  # fmt: skip
    assert result.returncode == 2
    assert "expected a 3D volume" in one_line(result.stderr)


def test_an_rgb24_nifti_is_refused(tmp_path, case):
    image = nib.load(case["image"])
    rgb = np.zeros(image.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, image.affine), tmp_path / "rgb.nii.gz")
    result = fob(*SEGMENT, tmp_path / "rgb.nii.gz", "--support", case["support"], "--out",
                 tmp_path / "o")  # fmt: skip
    assert result.returncode == 2
    assert "expected one real number per voxel" in one_line(result.stderr)


# ---- damaged or foreign checkpoints -------------------------------------------------------
def _sam_text(path: Path) -> None:
    path.write_text("not weights")


def _sam_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"model": {"weight": [0.0, 1.0]}}))  # plain pickle, no zip


def _sam_other(path: Path) -> None:
    import torch

    torch.save({"weight": torch.zeros(2)}, path)


@pytest.mark.parametrize("make", [_sam_text, _sam_pickle, _sam_other],
                         ids=["text", "pickle", "other-state-dict"])  # fmt: skip
def test_a_bad_sam_checkpoint_is_one_clear_message(tmp_path, case, capsys, make):
    make(tmp_path / "sam.pth")
    rc = segment(case["image"], "--support", case["support"], "--out", tmp_path / "o",
                 "--segmenter", "sam", "--sam-checkpoint", tmp_path / "sam.pth")  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and f"SAM checkpoint {tmp_path / 'sam.pth'}" in one_line(err)
    assert not (tmp_path / "o" / "labels.nii.gz").exists()


@pytest.fixture(scope="module")
def fob_checkpoint(tmp_path_factory):
    from napari_fob.model.checkpoint import save_checkpoint
    from napari_fob.model.fob import build_fob

    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt", build_fob("tiny"))


def _flipped(path: Path, into: Path) -> Path:
    shutil.copy(path, into)
    _flip_tensor_bytes(into, n=100)
    return into


def _without_model(path: Path, into: Path) -> Path:
    from napari_fob.model import checkpoint as ck

    raw = ck.load_checkpoint(path)
    raw.pop("model")
    return ck.write_checkpoint(into, raw)  # a valid digest: the entry itself is missing


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(_flipped, "does not match the sha256"), (_without_model, "holds no model weights")],
    ids=["100-flipped-bytes", "no-model-entry"],
)
def test_a_bad_fob_checkpoint_is_one_clear_message(tmp_path, case, capsys, fob_checkpoint,
                                                   damage, expected):  # fmt: skip
    bad = damage(fob_checkpoint, tmp_path / "bad.pt")
    rc = segment(case["image"], "--support", case["support"], "--out", tmp_path / "o",
                 "--prompts", "fob", "--fob-checkpoint", bad)  # fmt: skip
    line = one_line(capsys.readouterr().err)
    assert rc == 2 and str(bad) in line and expected in line
    assert not (tmp_path / "o" / "labels.nii.gz").exists()


# ---- fob train --resume ------------------------------------------------------------------
TRAIN = [
    "--device", "cpu", "--set", "model=tiny", "--set", "episodes.min_area=40",
    "--set", "episodes.label_source=gt", "--set", "train.num_workers=0",
    "--set", "train.checkpoint_every=2", "--set", "val.every=0", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step tiny run on one phantom: its manifest and its folder holding latest.pt."""
    from napari_fob.core.io import Volume, write_image, write_labels
    from napari_fob.samples.phantom import make_abdomen_phantom, phantom_affine

    folder = tmp_path_factory.mktemp("train")
    shape, spacing = (24, 96, 96), (2.5, 1.5, 1.5)
    image, labels, _ = make_abdomen_phantom(seed=0, shape=shape, spacing=spacing)
    like = Volume.from_array(image, affine=phantom_affine(shape, spacing))
    write_image(folder / "img.nii.gz", image, like)
    write_labels(folder / "gt.nii.gz", labels, like)
    manifest = folder / "m.yaml"
    manifest.write_text(
        f"volumes:\n  - {{image: {folder / 'img.nii.gz'}, labels: {folder / 'gt.nii.gz'}, "
        "split: train}\n"
    )
    run_dir = folder / "run"
    args = ["train", "--manifest", manifest, "--out", run_dir, "--iterations", 2, *TRAIN]
    assert main(list(map(str, args))) == 0
    return manifest, run_dir


def _resume(manifest, run_dir, *extra) -> subprocess.CompletedProcess:
    return fob("train", "--manifest", manifest, "--out", run_dir, "--iterations", 4, *TRAIN,
               "--resume", *extra)  # fmt: skip


def test_a_bit_flipped_latest_pt_does_not_resume(tmp_path, trained):
    manifest, run_dir = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    _flipped(run_dir / "latest.pt", copy / "latest.pt")
    before = contents(copy)
    result = _resume(manifest, copy)
    assert result.returncode == 2
    line = one_line(result.stderr, "train")
    assert str(copy / "latest.pt") in line and "sha256" in line
    assert contents(copy)["latest.pt"] == before["latest.pt"]


def test_resume_with_another_model_names_both(tmp_path, trained):
    manifest, run_dir = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    result = _resume(manifest, copy, "--config", copy / "config.yaml", "--set", "model=compact")
    assert result.returncode == 2
    line = one_line(result.stderr, "train")
    assert "--resume" in line and "'tiny'" in line and "'compact'" in line


def test_training_checkpoints_follow_the_umask(trained, tmp_path):
    _, run_dir = trained
    probe = tmp_path / "probe"
    probe.write_text("")
    assert stat.S_IMODE((run_dir / "latest.pt").stat().st_mode) == stat.S_IMODE(
        probe.stat().st_mode
    )


# ---- file modes of fob segment's outputs --------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_segment_outputs_all_get_the_umask_mode(tmp_path, case, umask):
    out = tmp_path / "out"

    def set_umask():  # in the child only: the test process's umask is left alone
        os.umask(umask)

    result = subprocess.run(
        [sys.executable, "-m", "napari_fob.cli", *SEGMENT, str(case["image"]), "--support",
         str(case["support"]), "--out", str(out)],
        capture_output=True, text=True, timeout=300, preexec_fn=set_umask,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == dict.fromkeys(RESULT, 0o666 & ~umask)


# ---- the session's autosave ---------------------------------------------------------------
def _session(tmp_path, autosave_dir):
    from test_session import phantom

    image, truth = phantom()
    s = AnnotationSession(
        image,
        generator=MaskRingGenerator(grid_size=128, r=8),
        segmenter=RandomWalkerSegmenter(),
        window=(-20.0, 140.0),
        autosave_dir=autosave_dir,
    )
    s.set_support(1, 16, truth[16] == 1)
    return s


def test_a_failed_autosave_warns_and_keeps_the_commit(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    s = _session(tmp_path, blocker / "auto")
    run(s.predict(1, [15]))
    with pytest.warns(UserWarning, match=r"autosave into .*a-file/auto failed") as caught:
        run(s.commit(1, [15, 16]))  # returns: the commit is applied, not reported as failed
    assert "the commit is kept" in str(caught[0].message)
    assert (s.labels[15] == 1).any() and s.can_undo and s.autosave_error is not None
    # the next commit into a usable folder autosaves again and clears the error
    s.autosave_dir = tmp_path / "auto"
    run(s.commit(1, [16]))
    assert s.autosave_error is None and (tmp_path / "auto" / "prompts.json").is_file()


def test_a_full_disk_autosave_warns_and_keeps_the_commit(tmp_path):
    """The session's autosave under a file-size cap, in a child (the cap is per process)."""
    script = f"""
import resource, signal, sys, warnings
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_fault_battery import _session
from napari_fob.session import run
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
s = _session(None, Path({str(tmp_path / "auto")!r}))
run(s.predict(1, [15]))
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run(s.commit(1, [15, 16]))
assert (s.labels[15] == 1).any() and s.can_undo
print(caught[0].message)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "autosave into" in result.stdout and "File too large" in result.stdout
    auto = tmp_path / "auto"
    assert not auto.exists() or not [p for p in auto.iterdir() if p.name in RESULT]


def test_a_write_error_names_the_file(tmp_path):
    def fail(handle):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic.write_bytes(tmp_path / "a.json", fail)
    assert caught.value.filename == str(tmp_path / "a.json") and caught.value.errno == 28
    with pytest.raises(OSError) as caught, atomic.ResultFolder(tmp_path / "r", names=("a",)):
        raise OSError(28, "No space left on device")
    assert caught.value.filename == str(tmp_path / "r")
    assert list((tmp_path / "r").iterdir()) == []


def test_a_bad_sam_checkpoint_says_one_thing_even_with_warnings_shown(tmp_path):
    """torch warns about the pickle protocol of a plain pickle before refusing it; the user gets
    the refusal alone (the CLI's one line), not the torch note above it."""
    import warnings

    from napari_fob.segmenters.sam_models import read_weights

    _sam_pickle(tmp_path / "sam.pth")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="not a PyTorch weights file"):
            read_weights(tmp_path / "sam.pth", what="SAM", expected="an official sam_vit_*.pth")
    assert not [w for w in seen if "pickle protocol" in str(w.message)], [
        str(w.message) for w in seen
    ]
