"""napari_fob.core.atomic: single files and file sets replaced whole, modes from the umask."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from napari_fob.core import atomic

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_fob"


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = atomic.write_text(tmp_path / "a.json", "old")

    def fail(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_bytes(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic.write_text(tmp_path / "nope" / "a.json", "x")


def test_a_failed_result_changes_nothing(tmp_path):
    with atomic.ResultFolder(tmp_path, names=("a", "b")) as unit:
        unit.path("a").write_text("A1")
        unit.path("b").write_text("B1")
    with (
        pytest.raises(RuntimeError),
        atomic.ResultFolder(tmp_path, names=("a", "b"), overwrite=True) as unit,
    ):
        unit.path("a").write_text("A2")
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").read_text() == "A1"
    with pytest.raises(ValueError, match="not one of"):
        atomic.ResultFolder(tmp_path, names=("a",), overwrite=True).__enter__().path("c")


def test_recover_rolls_an_interrupted_commit_forward(tmp_path):
    (tmp_path / "a").write_text("A1")
    (tmp_path / "b").write_text("B1")
    staged = atomic.create_temp(tmp_path / "a")
    staged.write_text("A2")
    record = {"format": atomic.COMMIT_FORMAT, "moves": [[staged.name, "a"]], "remove": ["b"]}
    (tmp_path / atomic.COMMIT_RECORD).write_text(json.dumps(record))
    assert atomic.pending_commit(tmp_path)
    atomic.recover(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert (tmp_path / "a").read_text() == "A2"


def test_check_folder_refusals(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        atomic.check_folder(tmp_path / "f", ("a",), overwrite=True)
    (tmp_path / "a").write_text("")
    with pytest.raises(ValueError, match="already holds a result"):
        atomic.check_folder(tmp_path, ("a",), overwrite=False)
    with pytest.raises(ValueError, match="holds the input"):
        atomic.check_folder(tmp_path, ("x",), overwrite=True, protect=[tmp_path / "f"])
    assert atomic.check_folder(tmp_path / "new" / "deep", ("a",), overwrite=False)


def test_no_other_module_writes_files_by_hand():
    """One helper: no mkstemp, no umask flip, no hand-made temp + rename outside atomic.py."""
    allowed = {"atomic.py"}  # weights.py leaves the rename to pooch, then `atomic.adopt`
    pattern = re.compile(r"mkstemp|os\.umask\(|os\.replace\(")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name not in allowed and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_adopt_gives_a_file_written_elsewhere_the_umask_mode(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # the mode open() gets under this umask
    private = tmp_path / "from-mkstemp"
    private.write_bytes(b"data")
    private.chmod(0o600)
    assert atomic.adopt(private) == private and private.read_bytes() == b"data"
    assert private.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-mkstemp", "plain"]  # no probe left
