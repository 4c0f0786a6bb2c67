"""Take the user guide's screenshots from the real annotator widget on the bundled phantom.

Usage (needs a display; on a headless machine run it under Xvfb):

    QT_QPA_PLATFORM=xcb xvfb-run -a .venv/bin/python scripts/make_screenshots.py --out docs/images

Steps shown: the support painted on one slice, the predicted prompts (rings) on another slice,
the committed labels, and a close-up of one ring being corrected. ``--prompts`` picks the prompt
generator (the shipped FoB model or the mask-ring baseline); the segmenter is the one the widget
picks by itself on this machine (the status line in the pictures says which).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("NAPARI_FOB_NOTHREADS", "1")  # deterministic: no race with the grab


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

    from napari_fob._widgets.annotator import AnnotatorWidget
    from napari_fob.samples import load_sample

    sample = load_sample(args.sample)
    label = args.label
    zs = np.flatnonzero((sample.support == label).any(axis=(1, 2)))
    z_support = int(zs[0])
    viewer = napari.Viewer(title="napari-fob", show=True)
    viewer.window._qt_window.resize(1500, 1000)
    viewer.add_image(
        sample.image.data,
        name=args.sample,
        metadata=sample.image.to_metadata(),
        contrast_limits=(-160, 240) if sample.image.data.min() < -500 else None,
    )
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="FoB annotator", area="right")
    widget._c.name.setText(sample.names.get(label, ""))
    widget._c.prompts.setCurrentIndex(1 if args.prompts == "mask-ring" else 0)
    layers = widget.ensure_layers()
    support = np.zeros(sample.support.shape, np.uint8)
    support[z_support][sample.support[z_support] == label] = label
    layers.support.data = support
    truth_z = np.flatnonzero((sample.labels == label).any(axis=(1, 2)))
    widget._c.z_from.setValue(max(int(truth_z[0]), z_support - 12))
    widget._c.z_to.setValue(min(int(truth_z[-1]), z_support + 12))

    def shot(name: str) -> None:
        for _ in range(10):
            QApplication.processEvents()
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()  # e.g. the PyQt5 deprecation notice
        if name != "annotator-ring-closeup.png":
            viewer.reset_view()
        for _ in range(10):
            QApplication.processEvents()
        viewer.window._qt_window.grab().save(str(args.out / name))
        print("wrote", args.out / name)

    widget.jump_to(z_support)
    viewer.layers.selection.active = layers.support
    shot("annotator-support.png")

    widget.predict()
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
    viewer.layers.selection.active = layers.output
    shot("annotator-committed.png")
    widget.close()
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
