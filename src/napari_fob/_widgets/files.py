"""File dialogs of the annotator: save / load a session folder, export the labels as NIfTI.

The dialogs only ask for a path; the work is `AnnotatorWidget.save_session`, `load_session` and
`export_labels` (which tests call directly). Imports qtpy (widget side only).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QFileDialog


def ask_save(widget: Any) -> None:
    """Ask for a folder and save the session into it (labels.nii.gz + prompts.json)."""
    path = QFileDialog.getExistingDirectory(widget, "Save session into folder")
    if path:
        widget.save_session(path)


def ask_load(widget: Any) -> None:
    """Ask for a session folder and load it onto the current image."""
    path = QFileDialog.getExistingDirectory(widget, "Load session from folder")
    if path:
        widget.load_session(path)


def ask_export(widget: Any) -> None:
    """Ask for a .nii.gz / .nii path and export the labels on the source grid and affine."""
    path, _ = QFileDialog.getSaveFileName(
        widget, "Export labels", "labels.nii.gz", "NIfTI (*.nii.gz *.nii)"
    )
    if path:
        widget.export_labels(path)
