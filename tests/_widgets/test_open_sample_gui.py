"""Open the abdomen phantom through the plugin in a real napari viewer and take a screenshot.

With ``FOB_WRITE_DOCS_IMAGES=1`` the screenshot also goes to ``docs/images/sample-abdomen.png``
(the image in docs/data.md); otherwise only into ``tmp_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from napari_fob.samples import support_slices

pytestmark = pytest.mark.gui
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "sample-abdomen.png"


def test_open_abdomen_sample(make_napari_viewer, qtbot, tmp_path):
    from skimage.io import imread

    viewer = make_napari_viewer()
    viewer.open_sample("napari-fob", "abdomen-phantom")

    names = [layer.name for layer in viewer.layers]
    assert names == ["abdomen CT phantom", "ground truth", "support"]
    image, truth, support = (viewer.layers[n] for n in names)
    assert image.data.shape == (64, 160, 160)
    assert tuple(image.scale) == (2.5, 1.5, 1.5)
    assert tuple(truth.scale) == tuple(image.scale) and tuple(support.scale) == tuple(image.scale)
    assert set(np.unique(truth.data)) == {0, 1, 2, 3, 4}
    assert "napari_fob" in support.metadata and truth.metadata["names"]["1"] == "liver"

    liver_slice = support_slices(np.asarray(truth.data))[1]
    viewer.dims.set_current_step(0, liver_slice)
    assert np.asarray(support.data)[liver_slice].any()
    viewer.layers.selection.active = support
    viewer.window._qt_window.resize(1200, 800)
    viewer.window.show()  # the GL canvas renders only once the window is shown
    viewer.reset_view()
    qtbot.wait(200)

    shot = viewer.screenshot(path=str(tmp_path / "sample.png"), canvas_only=True)
    # The canvas shows the volume: many distinct grey levels, not a blank canvas.
    grey = imread(tmp_path / "sample.png")[..., :3].mean(axis=2)
    assert shot.ndim == 3 and len(np.unique(grey.round())) > 50
    if os.environ.get("FOB_WRITE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(path=str(DOCS_IMAGE), canvas_only=False)
