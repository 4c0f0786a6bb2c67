"""bench/cross_volume.py: the subjects are seeded and not co-registered, atlas registration
recovers them, and the --quick run reports every method."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _module(name):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _blob_scan():
    """A small (I, J, K) scan with two labelled ellipsoids inside a 'head', 2 mm voxels."""
    i, j, k = np.mgrid[:40, :44, :36].astype(float)
    head = ((i - 20) / 17) ** 2 + ((j - 22) / 19) ** 2 + ((k - 18) / 15) ** 2 <= 1
    a = ((i - 14) / 5) ** 2 + ((j - 22) / 7) ** 2 + ((k - 18) / 5) ** 2 <= 1
    b = ((i - 27) / 4) ** 2 + ((j - 18) / 5) ** 2 + ((k - 14) / 4) ** 2 <= 1
    labels = (a * 1 + b * 2).astype(np.int16)
    image = (0.4 * head + 0.4 * a + 0.2 * b).astype(np.float32)
    return image, labels, np.diag([2.0, 2.0, 2.0, 1.0])


def test_subjects_are_seeded_moved_and_recovered_by_registration():
    cs = _module("_cross_subjects")
    image, labels, affine = _blob_scan()
    one = cs.make_subject(
        image, labels, affine, 3, spacing=(2.4, 1.8, 2.2), flip=(True, False, True)
    )
    again = cs.make_subject(
        image, labels, affine, 3, spacing=(2.4, 1.8, 2.2), flip=(True, False, True)
    )
    other = cs.make_subject(
        image, labels, affine, 4, spacing=(2.4, 1.8, 2.2), flip=(True, False, True)
    )
    assert np.array_equal(one.image, again.image) and one.transform == again.transform
    assert one.transform != other.transform
    assert one.affine[0, 0] < 0 and one.affine[2, 2] < 0 and one.affine[1, 1] == 1.8
    assert set(np.unique(one.labels)) == {0, 1, 2}
    from napari_fob.core.metrics import dice

    warped = cs.register_labels(one.image, one.affine, image, affine, labels, mesh=3)
    assert warped.shape == one.labels.shape
    assert dice(warped == 1, one.labels == 1) > 0.6


def test_quick_run_reports_every_method(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cross_volume.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "cross_volume_quick.json").read_text())
    assert report["methods"] == ["fob", "fob-paper", "copy", "atlas-registration", "oracle"]
    assert len(report["rows"]) == 2
    for row in report["rows"]:
        assert all(0.0 <= row[m] <= 1.0 for m in report["methods"])
        assert {"start_error", "end_error", "sure"} <= set(row["auto_extent"])
    summary = report["summary"]["phantom/phantom"]
    assert summary["fob"] > summary["fob-paper"]  # the relative fg threshold, across scans too
    # prompts from each slice's own true mask: above every prompt generator here
    assert summary["oracle"] > max(summary[m] for m in ("fob", "fob-paper", "copy"))
    assert "| phantom/phantom | 2 |" in proc.stdout
