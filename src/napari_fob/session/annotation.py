"""`AnnotationSession`: the state of one annotation job and every operation on it.

The session owns the volume, the support masks, the prompts per (structure, slice), the committed
labels and the undo history. The napari widgets and the ``fob segment`` command both drive it.
Long operations (`predict`, `commit`) are generators that yield `Progress` and return their
result, so the same code runs headless (`run`) or inside a napari worker.

Qt-free: this module must not import napari, qtpy, magicgui or torch (a generator or segmenter
passed in may use torch itself). Saving and loading live in `sidecar.py`, undo records in
`history.py`, prompt walks in `walks.py`, prompt edits in `edits.py`,
progress and events in `events.py`.
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
from napari_fob.session.edits import PromptEditsMixin
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

__all__ = ["AnnotationSession", "Progress", "SessionEvents", "run"]


class AnnotationSession(PromptEditsMixin):
    """One volume, its supports, prompts and committed labels.

    Args:
        volume: a `core.io.Volume` (its affine is kept for saving) or a (Z, Y, X) array of
            raw intensities; axis 0 is the slice axis.
        generator: a `PromptGenerator` ("fob", "mask-ring", "copy").
        segmenter: a segmenter with ``segment(image (H, W), promptset, *, window) -> (H, W) bool``
            and ``describe() -> dict``.
        window: the intensity window (a preset name, (low, high) or a `Window`).
        names: structure names by label value.
        labels: initial committed labels (Z, Y, X) integers (copied); zeros when None.
        autosave_dir: when set, the session is saved there after every commit.
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
        self.prompts: dict[tuple[int, int], PromptSet] = {}
        self.thresholds: dict[int, float] = {}
        self.batch_size = 16
        self.autosave_dir = None if autosave_dir is None else Path(autosave_dir)
        self.events = SessionEvents()
        self.history = History()
        self._status: dict[tuple[int, int], str] = {}
        self._confidence: dict[tuple[int, int], float] = {}
        self._images01: dict[int, np.ndarray] = {}

    # ---- reading state -------------------------------------------------------------------
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
        z = self._check_z(z)
        if z not in self._images01:
            self._images01[z] = normalise(self.volume[z], self.window)
        return self._images01[z]

    def slice_status(self, label: int, z: int) -> str:
        """ "none", "predicted", "edited" (prompts changed by the user) or "committed"."""
        return self._status.get((int(label), int(z)), "none")

    def confidence(self, label: int, z: int) -> float | None:
        """The generator's evidence for (label, z) when it was predicted (None if never)."""
        return self._confidence.get((int(label), int(z)))

    def low_confidence(self, label: int, z: int) -> bool:
        """True when the stored confidence is below the threshold last used for `label`."""
        c = self.confidence(label, z)
        return c is not None and c < self.thresholds.get(int(label), 0.5)

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
        label, z = self._check_label(label), self._check_z(z)
        mask = np.asarray(mask2d).astype(bool)
        if mask.shape != self.shape[1:]:
            raise ValueError(
                f"support of label {label} on slice {z}: expected a (Y, X) mask of shape "
                f"{self.shape[1:]}, got {mask.shape}"
            )
        if not mask.any():
            raise ValueError(f"support of label {label} on slice {z}: the mask is empty")
        if name is not None:
            self.names[label] = str(name)
        entry = Entry(f"set support {label}@{z}", label)
        self._change_support(entry, label, z, mask.copy())
        self._finish(entry)

    def set_supports_from_volume(self, support_volume: np.ndarray) -> dict[int, list[int]]:
        """Every label/slice with voxels in a (Z, Y, X) integer volume becomes a support.

        Returns {label: [slice indices]}. One undo step.
        """
        support_volume = np.asarray(support_volume)
        if support_volume.shape != self.shape:
            raise ValueError(
                f"support volume: expected shape {self.shape} (the image's), "
                f"got {support_volume.shape}"
            )
        found: dict[int, list[int]] = {}
        for label in (int(v) for v in np.unique(support_volume) if v > 0):
            zs = np.flatnonzero((support_volume == label).any(axis=(1, 2)))
            found[label] = [int(z) for z in zs]
            entry = Entry(f"supports of {label}", label)
            for z in found[label]:
                self._change_support(entry, label, z, support_volume[z] == label)
            self._finish(entry)
        return found

    def remove_support(self, label: int, z: int) -> None:
        """Forget the support of `label` on slice `z` (ValueError if there is none)."""
        label, z = int(label), int(z)
        if z not in self.supports.get(label, {}):
            raise ValueError(f"label {label} has no support on slice {z}")
        entry = Entry(f"remove support {label}@{z}", label)
        self._change_support(entry, label, z, None)
        self._finish(entry)

    # ---- prediction and commit (the walks live in walks.py) ---------------------
    def predict(
        self,
        label: int,
        slices: Iterable[int] | str = "auto",
        *,
        mode: str = "fixed",
        threshold: float = 0.5,
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
        prompts are skipped (reported in the progress message, absent from the returned list).
        Only voxels that are 0 or `label` change unless `overwrite`; the slice's previous
        content of `label` is replaced. With `other_structures_as_bg`, a few points inside each
        other committed structure on the slice are added as background points.
        """
        label = self._check_label(label)
        zs = [self._check_z(z) for z in slices]
        entry = Entry(f"commit {label}", label)
        done: list[int] = []
        try:
            for i, z in enumerate(zs):
                mask = self.segment_slice(label, z, other_structures_as_bg=other_structures_as_bg)
                if mask is None:
                    yield Progress(i + 1, len(zs), f"slice {z}: no prompts, skipped")
                    continue
                self._write_mask(entry, label, z, mask, overwrite=overwrite)
                done.append(z)
                yield Progress(i + 1, len(zs), f"committed slice {z}")
        finally:  # a cancelled commit (generator closed) keeps what it wrote, undoable
            self._finish(entry)
        self.autosave()
        return done

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
        if self.autosave_dir is not None:
            self.save(self.autosave_dir, overwrite=True)

    # ---- internals (also used by walks / sidecar) --------------------------
    def _check_label(self, label: int) -> int:
        if int(label) != label or int(label) <= 0:
            raise ValueError(f"label {label!r}: expected a positive integer")
        return int(label)

    def _check_z(self, z: int) -> int:
        if not 0 <= int(z) < self.shape[0]:
            raise ValueError(f"slice {z}: expected an index in [0, {self.shape[0]})")
        return int(z)

    def _state(self, key: tuple[int, int]) -> SliceState:
        p = self.prompts.get(key)
        return SliceState(
            None if p is None else p.copy(), self.slice_status(*key), self._confidence.get(key)
        )

    def _set_state(self, key: tuple[int, int], state: SliceState) -> None:
        if state.prompts is None:
            self.prompts.pop(key, None)
        else:
            self.prompts[key] = state.prompts.copy()
        if state.status == "none":
            self._status.pop(key, None)
        else:
            self._status[key] = state.status
        if state.confidence is None:
            self._confidence.pop(key, None)
        else:
            self._confidence[key] = float(state.confidence)

    def _change_prompts(self, entry: Entry, key: tuple[int, int], after: SliceState) -> None:
        entry.changes.append(PromptChange(key, self._state(key), after))
        self._set_state(key, after)

    def _change_support(self, entry: Entry, label: int, z: int, mask: np.ndarray | None) -> None:
        before = self.supports.get(label, {}).get(z)
        entry.changes.append(SupportChange(label, z, before, mask))
        self._put_support(label, z, mask)

    def _put_support(self, label: int, z: int, mask: np.ndarray | None) -> None:
        if mask is None:
            self.supports.get(label, {}).pop(z, None)
            if label in self.supports and not self.supports[label]:
                del self.supports[label]
        else:
            self.supports.setdefault(label, {})[z] = mask

    def _write_mask(
        self, entry: Entry, label: int, z: int, mask: np.ndarray, *, overwrite: bool
    ) -> None:
        old = self.labels[z]
        new = old.copy()
        new[old == label] = 0  # the slice's previous content of label is replaced
        writable = np.ones_like(mask) if overwrite else new == 0
        new[mask & writable] = label
        change = label_change(z, old, new)
        entry.changes.append(change)
        apply_label_change(self.labels, change, forward=True)
        key = (label, z)
        self._change_prompts(
            entry, key, SliceState(self.prompts.get(key), "committed", self._confidence.get(key))
        )

    def _finish(self, entry: Entry) -> None:
        self.history.push(entry)
        for kind in entry.kinds():
            self.events.emit(kind, entry.label, entry.slices())

    def _replay(self, entry: Entry | None, *, forward: bool) -> bool:
        if entry is None:
            return False
        changes = entry.changes if forward else reversed(entry.changes)
        for c in changes:
            if isinstance(c, PromptChange):
                self._set_state(c.key, c.after if forward else c.before)
            elif isinstance(c, SupportChange):
                self._put_support(c.label, c.z, c.after if forward else c.before)
            else:
                apply_label_change(self.labels, c, forward=forward)
        for kind in entry.kinds():
            self.events.emit(kind, entry.label, entry.slices())
        return True
