"""scripts/tune_real_prior.py: its rows' syntax, and the test split it refuses to tune on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(
        "tune_real_prior", ROOT / "scripts" / "tune_real_prior.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_parse():
    script = _script()
    assert script.parse_priors("1,0.25,1; 0.5,0,none;0.5,0,1,fine") == [
        (1.0, 0.25, 1.0, False),
        (0.5, 0.0, None, False),
        (0.5, 0.0, 1.0, True),
    ]


def test_a_test_structure_is_refused_before_anything_runs():
    script = _script()
    with pytest.raises(ValueError, match="Caudate_L.*test structure"):
        script.main(["--names", "Primary_Motor_Cortex_L,Caudate_L", "--priors", "1,0.25,1"])
