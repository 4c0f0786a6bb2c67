"""scripts/tune_inference.py: its rows are the product's settings, and bad options are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import tune_inference  # noqa: E402

from napari_fob.prompting.in_volume import (  # noqa: E402
    DEFAULT_BAND_EXCLUSION,
    DEFAULT_FG_CORE,
    DEFAULT_INWARD_PRIOR,
    DEFAULT_LOCATION_PRIOR,
)


def test_the_product_row_runs_the_predictors_defaults():
    rows = tune_inference.variants("default", [5.0, 20.0], [(1.0, 0.5, 2.0)], [0.5, 0.75])
    product = [name for name in rows if name.endswith("(the product)")]
    assert product == ["+ foreground from the support's core 0.75 (the product)"]
    p = rows[product[0]].predictor
    assert p.location_prior == DEFAULT_LOCATION_PRIOR and p.inward_prior == DEFAULT_INWARD_PRIOR
    assert p.band_exclusion == DEFAULT_BAND_EXCLUSION and p.fg_core == DEFAULT_FG_CORE
    assert p.fine_ring is False  # painted supports only in this table, as in the product
    old = rows["band exclusion with location prior (1, 0.5), inward penalty 2"].predictor
    assert old.location_prior == (1.0, 0.5) and old.inward_prior == 2.0 and old.fg_core is None
    alone = rows["network alone"].predictor
    assert alone.location_prior is None and alone.band_exclusion is None and alone.fg_core is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--priors", "1,1"], "expected 'a,b,k'"),
        (["--seeds", "0,200"], "tuning seeds must not be benchmark"),
    ],
)
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        tune_inference.main(argv)
    assert message in capsys.readouterr().err
