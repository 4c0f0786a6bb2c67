"""scripts/tune_real_fg.py: its rows' syntax, the test split it refuses, and one real row."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(
        "tune_real_fg", ROOT / "scripts" / "tune_real_fg.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_parse():
    script = _script()
    rows = script.parse_rows("a=default:fg_core=0.75,floor=0; b=real-mri:band_exclusion=none")
    assert rows == {
        "a": ("default", {"fg_core": 0.75}, 0.0),
        "b": ("real-mri", {"band_exclusion": None}, None),
    }


def test_a_test_structure_is_refused_before_anything_runs():
    script = _script()
    with pytest.raises(ValueError, match="Caudate_L.*test structure"):
        script.main(["--names", "Primary_Motor_Cortex_L,Caudate_L"])


def test_the_floor_and_the_swap_reach_the_points(capsys):
    import napari_fob.prompting.in_volume as in_volume

    script = _script()
    args = script.argparse.Namespace(
        atlas="hcpex", rows="off=default:floor=0;high=default:floor=0.9", swap=True,
        axes="2", stride=12, names="Primary_Motor_Cortex_L",
    )  # fmt: skip
    report = script.run(args)
    assert in_volume.FG_CORE_FLOOR == 0.0  # put back
    assert set(report) == {
        "registration", "off", "high", "off ring, registration points",
        "high ring, registration points", "registration ring, off points",
        "registration ring, high points",
    }  # fmt: skip
    # a high floor leaves fewer candidates, so other points; the ring is the same
    assert report["off"]["ring_error"] == report["high"]["ring_error"]
    assert report["off"]["fg_outside"] != report["high"]["fg_outside"]
    # the points decide fg_outside, the ring decides ring_error
    swapped = report["off ring, registration points"]
    assert swapped["fg_outside"] == report["registration"]["fg_outside"]
    assert swapped["ring_error"] == report["off"]["ring_error"]
    assert "| registration |" in script.table(report)
