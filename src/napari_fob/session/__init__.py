"""The annotation session: one volume's supports, prompts, committed labels and undo history.

- `annotation`: `AnnotationSession`, the Qt-free state the widget and the CLI drive;
- `walks`: the slice walks of `predict` (fixed or chained, explicit or automatic extent);
- `edits`: point edits; `history`: undoable entries; `events`: progress and change events;
- `sidecar`: ``prompts.json`` and the session folder on disk.

May import `napari_fob.core`, `napari_fob.geometry`; generators and segmenters are objects it
is handed (their protocols), never imported. No torch, napari or Qt.
"""

from napari_fob.session.annotation import AnnotationSession
from napari_fob.session.events import Progress, run

__all__ = ["AnnotationSession", "Progress", "run"]
