"""The annotator's "propagate corrections" box (issue 18, part 2): committing a corrected slice
re-predicts its predicted neighbours in a real worker, shown as "re-predicted" in the review
list; unchecked, the commit changes that slice alone."""

from __future__ import annotations

import numpy as np
import pytest
from test_annotator import LIVER
from test_annotator import annotator as annotated  # noqa: F401  the fixture, reused

from napari_fob.session.corrections import REPREDICTED

pytestmark = pytest.mark.gui


def corrected_commit(widget, qtbot, z: int) -> None:
    bg = widget.session.prompts[(LIVER, z)].bg
    widget.session.move_point(LIVER, z, "bg", 0, bg[0] + np.sign(bg[0] - bg.mean(axis=0)) * 3)
    widget.jump_to(z)
    widget.commit_slice()
    qtbot.waitUntil(lambda: not widget.busy and widget.jobs.queued is None, timeout=60_000)


@pytest.mark.parametrize("propagate", [True, False])
def test_a_corrected_commit_repredicts_in_the_background(
    annotated,  # noqa: F811  the fixture imported above
    qtbot,
    monkeypatch,
    propagate,
):
    widget = annotated  # the loop of test_annotator, but with real worker threads
    monkeypatch.delenv("NAPARI_FOB_NOTHREADS", raising=False)
    zc = widget.test_info["support_z"]
    widget._c.z_from.setValue(zc - 4)
    widget._c.z_to.setValue(zc)
    assert not widget._c.propagate.isChecked()  # off by default (it did not pay, tune split)
    widget._c.propagate.setChecked(propagate)
    widget.predict()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    corrected_commit(widget, qtbot, zc - 3)
    s = widget.session
    assert s.propagate_corrections is propagate
    again = sorted(z for (lab, z), p in s.prompts.items() if REPREDICTED in p.meta)
    rows = {e.z: e.status for e in widget._review.entries}
    assert rows[zc - 3] == "committed"
    if propagate:  # zc-4 (the range's end) and zc-2 are nearer the correction than the support
        assert again == [zc - 4, zc - 2]
        assert [rows[z] for z in again] == ["re-predicted"] * 2 and rows[zc - 1] == "predicted"
        assert s.undo() and not any(REPREDICTED in p.meta for p in s.prompts.values())
        assert s.slice_status(LIVER, zc - 3) == "committed"
    else:
        assert again == [] and "re-predicted" not in rows.values()
