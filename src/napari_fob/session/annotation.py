"""`AnnotationSession`: the state of one annotation job and every operation on it.

The session owns the volume, the support masks, the prompts per (structure, slice), the committed
labels and the undo history. The napari widgets and the ``fob segment`` command both drive it.
Long operations (`predict`, `commit`) are generators that yield `Progress` and return their
result, so the same code runs headless (`run`) or inside a napari worker.

Qt-free: this module must not import napari, qtpy, magicgui or torch (a generator or segmenter
passed in may use torch itself). Saving and loading live in `sidecar.py`, undo records in
`history.py`, prompt walks in `walks.py` (corrections propagate: `corrections.py`), prompt edits
in `edits.py`, progress and events in `events.py`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import Window, normalise, resolve_window
from napari_fob.core.prompts import PromptSet
from napari_fob.prompting.generators import PromptGenerator
from napari_fob.session import edits, walks
from napari_fob.session.events import Progress, SessionEvents, run
from napari_fob.session.history import (
    Entry,
    History,
    PromptChange,
    SliceState,
    SupportChange,
    apply_label_change,
    label_change,
)
from napari_fob.session.slices import PromptsView, SliceTable
from napari_fob.session.supports import check_support

__all__ = ["AnnotationSession", "Progress", "SessionEvents", "run"]


class AnnotationSession:
    """One volume, its supports, prompts and committed labels.

    Args:
        volume: a `core.io.Volume` (its affine is kept for saving) or a (Z, Y, X) array of
            raw intensities; axis 0 is the slice axis.
        generator: a `PromptGenerator` ("fob", "mask-ring", "copy", "registration").
        segmenter: ``segment(image (H, W), promptset, *, window) -> (H, W) bool``, ``describe()``.
        window: the intensity window (a preset name, (low, high) or a `Window`).
        names: structure names by label value.
        labels: initial committed labels (Z, Y, X) integers (copied); zeros when None.
        autosave_dir: when set, the session is saved there after every commit.
        propagate_corrections: a committed correction re-predicts the predicted slices by it.
    """

    def __init__(
        self,
        volume: Any,
        *,
        generator: PromptGenerator,
        segmenter: Any,
        window: Window | str | tuple[float, float] = "auto",
        names: dict[int, str] | None = None,
        labels: np.ndarray | None = None,
        autosave_dir: Path | str | None = None,
        propagate_corrections: bool = False,
    ) -> None:
        data = volume if isinstance(volume, np.ndarray) else getattr(volume, "data", None)
        if data is None or np.ndim(data) != 3:
            raise ValueError(
                f"AnnotationSession: expected a 3D (Z, Y, X) volume, got shape {np.shape(data)}"
            )
        self.source = None if isinstance(volume, np.ndarray) else volume
        self.volume: np.ndarray = np.asarray(data)
        self.window: Window = resolve_window(self.volume, window)
        self.generator = generator
        self.segmenter = segmenter
        self.names: dict[int, str] = {int(k): str(v) for k, v in (names or {}).items()}
        if labels is None:
            self.labels = np.zeros(self.volume.shape, dtype=np.int32)
        else:
            if np.shape(labels) != self.volume.shape:
                raise ValueError(
                    f"AnnotationSession labels: expected shape {self.volume.shape}, "
                    f"got {np.shape(labels)}"
                )
            self.labels = np.array(labels, dtype=np.int32, order="C")
        self.supports: dict[int, dict[int, np.ndarray]] = {}
        self.slices = SliceTable()  # prompts, status and confidence of every (label, z)
        self.thresholds: dict[int, float] = {}
        self.batch_size = 16
        self.propagate_corrections = bool(propagate_corrections)
        self.autosave_dir = None if autosave_dir is None else Path(autosave_dir)
        self.autosave_error: Exception | None = None  # why the last autosave failed, if it did
        self.events = SessionEvents()
        self.history = History()
        self._images01: dict[int, np.ndarray] = {}

    # ---- reading state -------------------------------------------------------------------
    @property
    def prompts(self) -> PromptsView:
        """The prompts of every (label, z) that has some (read-only; edit through the session)."""
        return self.slices.prompts

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.volume.shape)  # type: ignore[return-value]

    def set_window(self, window: Window | str | tuple[float, float]) -> bool:
        """Use another intensity window from now on; True when it changed.

        Windowed slices cached for the old window are dropped. Prompts and labels already made
        keep the window they were made with (recorded in the sidecar when saved).
        """
        new = resolve_window(self.volume, window)
        if (new.low, new.high) == (self.window.low, self.window.high):
            return False
        self.window = new
        self._images01.clear()
        return True

    def image01(self, z: int) -> np.ndarray:
        """Slice `z` windowed to float32 [0, 1], (Y, X); cached."""
        z = self.check_z(z)
        if z not in self._images01:
            self._images01[z] = normalise(self.volume[z], self.window)
        return self._images01[z]

    def slice_status(self, label: int, z: int) -> str:
        """ "none", "predicted", "edited" (prompts changed by the user) or "committed"."""
        return self.slices.status((label, z))

    def confidence(self, label: int, z: int) -> float | None:
        """The generator's evidence for (label, z) when it was predicted (None if never)."""
        return self.slices.confidence((label, z))

    def low_confidence(self, label: int, z: int) -> bool:
        """True when the stored confidence is below the threshold last used for `label`."""
        c = self.confidence(label, z)
        return c is not None and c < self.thresholds.get(int(label), walks.DEFAULT_THRESHOLD)

    def structures(self) -> list[int]:
        """Every label value with a support, prompts or committed voxels, sorted."""
        found = set(self.supports) | {k[0] for k in self.prompts}
        found |= {int(v) for v in np.unique(self.labels) if v > 0}
        return sorted(found)

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    # ---- supports -----------------------------------------------------------------------
    def set_support(self, label: int, z: int, mask2d: np.ndarray, name: str | None = None) -> None:
        """Use the (Y, X) bool `mask2d` as a support of structure `label` on slice `z`."""
        label, z = self.check_label(label), self.check_z(z)
        mask = check_support(self, label, z, mask2d)  # shape, not empty, no NaN/inf under it
        if name is not None:
            self.names[label] = str(name)
        entry = Entry(f"set support {label}@{z}", label)
        self.record_support(entry, label, z, mask)
        self.finish(entry)

    def set_supports_from_volume(self, support_volume: np.ndarray) -> dict[int, list[int]]:
        """Every label/slice with voxels in a (Z, Y, X) integer volume becomes a support.

        Returns {label: [slice indices]}. One undo step per label. Every support is checked
        first (`supports.check_support`: no NaN/inf voxel under it), so a refused volume
        changes nothing.
        """
        support_volume = np.asarray(support_volume)
        if support_volume.shape != self.shape:
            raise ValueError(
                f"support volume: expected shape {self.shape} (the image's), "
                f"got {support_volume.shape}"
            )
        masks: dict[int, dict[int, np.ndarray]] = {}
        for label in (int(v) for v in np.unique(support_volume) if v > 0):
            zs = np.flatnonzero((support_volume == label).any(axis=(1, 2)))
            masks[label] = {
                int(z): check_support(self, label, int(z), support_volume[z] == label) for z in zs
            }
        for label, by_z in masks.items():
            entry = Entry(f"supports of {label}", label)
            for z, mask in by_z.items():
                self.record_support(entry, label, z, mask)
            self.finish(entry)
        return {label: list(by_z) for label, by_z in masks.items()}

    def remove_support(self, label: int, z: int) -> None:
        """Forget the support of `label` on slice `z` (ValueError if there is none)."""
        label, z = int(label), int(z)
        if z not in self.supports.get(label, {}):
            raise ValueError(f"label {label} has no support on slice {z}")
        entry = Entry(f"remove support {label}@{z}", label)
        self.record_support(entry, label, z, None)
        self.finish(entry)

    # ---- prediction and commit (the walks live in walks.py) ---------------------
    def predict(
        self,
        label: int,
        slices: Iterable[int] | str = "auto",
        *,
        mode: str = "fixed",
        threshold: float = walks.DEFAULT_THRESHOLD,
        batch_size: int | None = None,
    ) -> Generator[Progress, None, list[int]]:
        """Predict prompts of `label` on `slices` (or "auto": walk out until evidence < threshold).

        mode "fixed": every slice from the nearest painted support; "chain": outward from the
        supports, each slice prompted from the nearest committed/support mask and committed as
        the walk goes. Yields `Progress`; returns the slices that received prompts. One undo step.
        """
        from napari_fob.session import walks

        return walks.predict(
            self, label, slices, mode=mode, threshold=threshold, batch_size=batch_size
        )

    def commit(
        self,
        label: int,
        slices: Iterable[int],
        *,
        overwrite: bool = False,
        other_structures_as_bg: bool = False,
    ) -> Generator[Progress, None, list[int]]:
        """Segment each slice's prompts and write `label` into `labels` (one undo step).

        A support slice without prompts commits the painted mask itself; other slices without
        prompts are skipped (in the progress message, not in the returned list). Only voxels
        that are 0 or `label` change unless `overwrite`; the slice's previous content of `label`
        is replaced. `other_structures_as_bg`: points inside other committed structures on the
        slice join the background. A corrected slice then re-predicts its predicted neighbours
        (a second undo step, `corrections`; off with ``propagate_corrections=False``).
        """
        from napari_fob.session import walks

        return walks.commit(
            self, label, slices, overwrite=overwrite, other_structures_as_bg=other_structures_as_bg
        )

    def segment_slice(
        self, label: int, z: int, *, other_structures_as_bg: bool = False
    ) -> np.ndarray | None:
        """The (Y, X) bool mask the segmenter makes from (label, z)'s prompts; the support mask
        for a support slice without prompts; None when there is neither."""
        prompts = self.prompts.get((label, z))
        if prompts is None:
            support = self.supports.get(label, {}).get(z)
            return None if support is None else support.copy()
        if other_structures_as_bg:
            extra = [
                np.asarray(geometry.fg_points_from_mask(self.labels[z] == v, 3), np.float64)
                for v in np.unique(self.labels[z])
                if v > 0 and v != label
            ]
            if extra:
                prompts = prompts.copy(bg=np.concatenate([prompts.bg, *extra]), bg_scores=None)
        mask = np.asarray(self.segmenter.segment(self.volume[z], prompts, window=self.window))
        if mask.shape != self.shape[1:]:
            raise ValueError(
                f"segmenter returned a mask of shape {mask.shape} for slice {z}, expected "
                f"{self.shape[1:]}"
            )
        return mask.astype(bool)

    # ---- prompt edits (edits.py), each one undo step ---------------------------------------
    def set_prompts(self, label: int, z: int, promptset: PromptSet) -> None:
        """Replace the prompts of (label, z) with the user's `promptset` (origin "user")."""
        edits.set_prompts(self, label, z, promptset)

    def move_point(self, label: int, z: int, kind: str, index: int, new_rc: Any) -> None:
        """Move point `index` of `kind` ("fg" | "bg") to (row, col) `new_rc`."""
        edits.move_point(self, label, z, kind, index, new_rc)

    def add_point(self, label: int, z: int, kind: str, rc: Any) -> None:
        """Add a point at (row, col) `rc`; a bg point joins the ring where it adds least."""
        edits.add_point(self, label, z, kind, rc)

    def remove_point(self, label: int, z: int, kind: str, index: int) -> None:
        """Delete point `index` of `kind` ("fg" | "bg")."""
        edits.remove_point(self, label, z, kind, index)

    def clear_prompts(self, label: int, z: int) -> None:
        """Drop the prompts of (label, z); status becomes "committed" if labels hold it."""
        edits.clear_prompts(self, label, z)

    # ---- undo / redo --------------------------------------------------------------------
    def undo(self) -> bool:
        """Revert the last action; False when there is nothing to undo."""
        return self._replay(self.history.pop_undo(), forward=False)

    def redo(self) -> bool:
        """Re-apply the last undone action; False when there is nothing to redo."""
        return self._replay(self.history.pop_redo(), forward=True)

    # ---- save / load --------------------------------------------------------------------
    def save(self, out_dir: Path | str, *, overwrite: bool = False) -> dict[str, Path]:
        """Write labels.nii.gz + prompts.json into `out_dir` as one unit; see sidecar.

        A folder already holding a saved result is refused unless `overwrite` is True (the
        autosave passes it for its own folder).
        """
        from napari_fob.session import sidecar

        return sidecar.save_session(self, Path(out_dir), overwrite=overwrite)

    @classmethod
    def load(
        cls, out_dir: Path | str, volume: Any, *, generator: PromptGenerator, segmenter: Any
    ) -> AnnotationSession:
        """Restore a session saved with `save` for the same `volume`."""
        from napari_fob.session import sidecar

        return sidecar.load_session(
            cls, Path(out_dir), volume, generator=generator, segmenter=segmenter
        )

    def autosave(self) -> None:
        """Save into `autosave_dir` after a commit; a failure warns, never raises (sidecar)."""
        from napari_fob.session import sidecar

        self.autosave_error = sidecar.autosave(self)

    # ---- records (the walks, edits and sidecar change the session through these) ---------
    def check_label(self, label: int) -> int:
        """`label` as an int, or a ValueError: structures are positive integers."""
        if int(label) != label or int(label) <= 0:
            raise ValueError(f"label {label!r}: expected a positive integer")
        return int(label)

    def check_z(self, z: int) -> int:
        """`z` as an int, or a ValueError when it is not a slice of the volume."""
        if not 0 <= int(z) < self.shape[0]:
            raise ValueError(f"slice {z}: expected an index in [0, {self.shape[0]})")
        return int(z)

    def record(self, entry: Entry, key: tuple[int, int], after: SliceState) -> None:
        """Change the record of `key` to `after`, noted in `entry` for undo."""
        entry.changes.append(PromptChange(key, self.slices.state(key), after))
        self.slices.put(key, after)

    def record_support(self, entry: Entry, label: int, z: int, mask: np.ndarray | None) -> None:
        """Set (or, with None, remove) a support mask, noted in `entry` for undo."""
        before = self.supports.get(label, {}).get(z)
        entry.changes.append(SupportChange(label, z, before, mask))
        self.restore_support(label, z, mask)

    def restore_support(self, label: int, z: int, mask: np.ndarray | None) -> None:
        """Set or remove a support mask without an undo record (loading, replaying)."""
        if mask is None:
            self.supports.get(label, {}).pop(z, None)
            if label in self.supports and not self.supports[label]:
                del self.supports[label]
        else:
            self.supports.setdefault(label, {})[z] = mask

    def write_mask(
        self, entry: Entry, label: int, z: int, mask: np.ndarray, *, overwrite: bool
    ) -> None:
        """Commit `mask` as `label` on slice `z` (other structures kept unless `overwrite`)."""
        old = self.labels[z]
        new = old.copy()
        new[old == label] = 0  # the slice's previous content of label is replaced
        writable = np.ones_like(mask) if overwrite else new == 0
        new[mask & writable] = label
        change = label_change(z, old, new)
        entry.changes.append(change)
        apply_label_change(self.labels, change, forward=True)
        key = (label, z)
        state = self.slices.state(key)
        self.record(entry, key, SliceState(state.prompts, "committed", state.confidence))

    def finish(self, entry: Entry) -> None:
        """Push `entry` as one undo step and tell the listeners what changed."""
        self.history.push(entry)
        for kind in entry.kinds():
            self.events.emit(kind, entry.label, entry.slices())

    def _replay(self, entry: Entry | None, *, forward: bool) -> bool:
        if entry is None:
            return False
        changes = entry.changes if forward else reversed(entry.changes)
        for c in changes:
            if isinstance(c, PromptChange):
                self.slices.put(c.key, c.after if forward else c.before)
            elif isinstance(c, SupportChange):
                self.restore_support(c.label, c.z, c.after if forward else c.before)
            else:
                apply_label_change(self.labels, c, forward=forward)
        for kind in entry.kinds():
            self.events.emit(kind, entry.label, entry.slices())
        return True
