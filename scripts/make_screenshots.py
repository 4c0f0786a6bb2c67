"""Take the user guide's screenshots of the annotator opened as users open it.

The sample comes from ``File > Open Sample``, the widget from napari's plugin manager
(``Plugins > napari-fob > FoB annotator``), with the sample's support taken by the widget, and
the worker threads on.

Usage (needs a display; on a headless machine run it under Xvfb):

    QT_QPA_PLATFORM=xcb xvfb-run -a .venv/bin/python scripts/make_screenshots.py --out docs/images

Steps shown: the support painted on one slice, the predicted prompts (rings) on another slice,
the committed labels, a close-up of one ring being corrected, the ring gallery and the 3D
view. ``--prompts`` picks the prompt generator (the shipped FoB model or the mask-ring
baseline); the segmenter is the one the widget picks by itself on this machine (the status line
in the pictures says which).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--sample", default="abdomen-phantom")
    parser.add_argument("--label", type=int, default=1)
    parser.add_argument(
        "--prompts",
        choices=("fob", "mask-ring"),
        default="fob",
        help="prompt generator chosen in the widget (fob: the shipped default model)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import warnings

    warnings.filterwarnings("ignore", message="napari support for the PyQt5")  # no toast
    # torch before any OpenGL context (see napari_fob/_widgets/_mesa_guard.py)
    import napari
    import torch  # noqa: F401
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    from napari_fob._widgets import layers as L

    label = args.label
    viewer = napari.Viewer(title="napari-fob", show=True)
    viewer.window._qt_window.resize(1500, 1000)
    # as a user does it: File > Open Sample, then Plugins > napari-fob > FoB annotator
    viewer.open_sample("napari-fob", args.sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-fob", "FoB annotator")
    widget._c.prompts.setCurrentIndex(1 if args.prompts == "mask-ring" else 0)
    widget._c.label.setValue(label)
    layers = widget.ensure_layers()
    viewer.layers["ground truth"].visible = False  # the pictures show what the annotator made
    support = np.asarray(layers.support.data)
    z_support = L.painted_slices(support, label)[0]

    def wait_idle() -> None:
        for _ in range(20):
            QApplication.processEvents()
        while widget.busy:
            QApplication.processEvents()
            time.sleep(0.02)

    def shot(name: str) -> None:
        for _ in range(10):
            QApplication.processEvents()
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()  # e.g. the PyQt5 deprecation notice
        if name not in ("annotator-ring-closeup.png", "annotator-3d.png"):
            viewer.reset_view()
        for _ in range(10):
            QApplication.processEvents()
        viewer.window._qt_window.grab().save(str(args.out / name))
        print("wrote", args.out / name)

    widget.jump_to(z_support)
    viewer.layers.selection.active = layers.support
    shot("annotator-support.png")

    widget.predict()
    wait_idle()
    z_view = min(z_support + 6, widget._c.z_to.value())
    widget.jump_to(z_view)
    viewer.layers.selection.active = layers.bg
    shot("annotator-prompts.png")

    viewer.camera.zoom *= 1.7
    ring = widget.editor.ring_of(z_view)
    if ring is not None:
        viewer.camera.center = tuple(layers.bg.data_to_world(ring[:-1].mean(axis=0)))
    shot("annotator-ring-closeup.png")
    viewer.reset_view()

    widget.commit_range()
    wait_idle()
    viewer.layers.selection.active = layers.output
    shot("annotator-committed.png")

    widget._tabs.setCurrentIndex(1)  # the gallery: every slice's ring and mask at a glance
    end = time.perf_counter() + 60
    while time.perf_counter() < end and not widget._gallery.drawn():
        QApplication.processEvents()
        time.sleep(0.02)
    shot("annotator-gallery.png")

    viewer.dims.ndisplay = 3  # 3D: the committed labels, no rings
    viewer.layers[args_image_name(viewer)].visible = False  # the labels alone, as a surface
    viewer.reset_view()
    viewer.camera.angles = (0.0, 35.0, 60.0)
    shot("annotator-3d.png")
    widget.close()
    viewer.close()
    return 0


def args_image_name(viewer) -> str:
    """The sample's image layer (the first Image layer)."""
    return next(layer.name for layer in viewer.layers if layer.__class__.__name__ == "Image")


if __name__ == "__main__":
    raise SystemExit(main())
