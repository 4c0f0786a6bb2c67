"""The methods the simulated annotator is run with (issue 18, part 1; bench/interaction.py).

Each holds the masks of one structure over its range; ``edit(action)`` does one gesture
(`Action`) and ``commit(z)`` recommits slice z and applies the method's propagation rule:

- `SessionLoop` (``fob``, ``mask-ring``, ``registration``): the product itself. An
  `AnnotationSession` predicts the range from the support; a slice's mask is what the product
  commits for it (the committed labels, or, for a slice still only predicted, what *Commit
  range* would write: the segmenter on its prompts). An action is the point edit
  (`add_point` / `move_point`) and a commit of that slice, after which the session's own
  propagation of corrections re-predicts the predicted slices next to it
  (`napari_fob.session.corrections`).
- `MicroSamStyle`: micro-sam's volume annotator: from the support, slice by slice in both
  directions, the previous slice's mask gives the next slice's prompts: its bounding box grown
  by `BOX_GROW` on each side (for a point segmenter, the box's four corners as the background
  ring, which makes the box the region the structure may fill) and `N_FG` foreground points
  spread over the previous mask's core (`geometry.fg_points_from_mask`, as mask-ring draws
  them). The walk stops at the first slice whose mask has IoU < `STOP_IOU` with the previous
  one (that slice keeps its old mask). After a correction, the walk re-runs outward from the
  corrected slice, up to a slice the user corrected before (never overwritten).
- `PerSlice`: no propagation: every slice but the support starts empty and only the user's
  points make its mask.

numpy / scipy plus the napari_fob library.
"""

from __future__ import annotations

import json

import numpy as np

from _interaction_actions import Action
from napari_fob.core.prompts import PromptSet
from napari_fob.geometry import fg_points_from_mask
from napari_fob.session import AnnotationSession, run
from napari_fob.session.corrections import span
from napari_fob.session.history import Entry, SliceState

BOX_GROW = 0.05  # micro-sam-style: the box of the previous mask, grown by 5 % on each side
N_FG = 10  # micro-sam-style: foreground points from the previous mask's core (as mask-ring's)
STOP_IOU = 0.5  # micro-sam-style: stop where the new mask's IoU with the previous is below this
LABEL = 1
CARRY_REACH = 3  # fob-carry-gesture: slices on each side a gesture reaches (the first value tried)


def empty_prompts(z: int) -> PromptSet:
    return PromptSet(np.zeros((0, 2)), np.zeros((0, 2)), label=LABEL, slice_index=z, origin="user")


def apply(p: PromptSet, action: Action) -> PromptSet:
    """`p` with the gesture done (a point appended, or bg point `index` moved)."""
    rc = np.asarray(action.rc, float).reshape(1, 2)
    if action.kind == "fg":
        return p.copy(fg=np.concatenate([p.fg, rc]), fg_scores=None, origin="user")
    bg = p.bg.copy()
    if action.kind == "bg-move":
        bg[action.index] = rc[0]
    else:
        bg = np.concatenate([bg, rc])
    return p.copy(bg=bg, bg_scores=None, origin="user")


class SessionLoop:
    """The product's loop with `generator` (see the module docstring)."""

    def __init__(
        self, generator, segmenter, volume, window, truth, support_z, zs, *, propagate=True
    ) -> None:
        self.zs, self.support_z = list(zs), int(support_z)
        self.s = AnnotationSession(
            volume, generator=generator, segmenter=segmenter, window=window,
            propagate_corrections=propagate,
        )  # fmt: skip
        self.s.set_support(LABEL, support_z, truth[support_z])
        run(self.s.predict(LABEL, self.zs))
        self._masks: dict[str, np.ndarray] = {}

    def _segment(self, z: int, p: PromptSet) -> np.ndarray:
        key = json.dumps([z, p.to_dict()], sort_keys=True, default=str)
        if key not in self._masks:
            img = self.s.volume[z]
            self._masks[key] = np.asarray(self.s.segmenter.segment(img, p, window=self.s.window))
        return self._masks[key]

    def masks(self) -> dict[int, np.ndarray]:
        s, out = self.s, {}
        for z in self.zs:
            p = s.prompts.get((LABEL, z))
            if s.slice_status(LABEL, z) == "committed" or p is None:
                out[z] = s.labels[z] == LABEL
                if z == self.support_z and not out[z].any():
                    out[z] = s.supports[LABEL][z].copy()
            else:
                out[z] = self._segment(z, p).astype(bool)
        return out

    def bg(self, z: int) -> np.ndarray:
        p = self.s.prompts.get((LABEL, z))
        return np.zeros((0, 2)) if p is None else p.bg

    def edit(self, action: Action) -> None:
        s, z = self.s, action.z
        if (LABEL, z) not in s.prompts:
            s.set_prompts(LABEL, z, empty_prompts(z))
        if action.kind == "bg-move":
            s.move_point(LABEL, z, "bg", action.index, action.rc)
        else:
            s.add_point(LABEL, z, "fg" if action.kind == "fg" else "bg", action.rc)

    def commit(self, z: int) -> None:
        run(self.s.commit(LABEL, [z]))  # and the session's propagation of the correction


class CarryGesture(SessionLoop):
    """Experiment (``fob-carry-gesture``, not a product feature): no re-prediction; a moved
    background point moves the same ring point (index k is the same place around the
    structure on every slice) of the predicted neighbours in the correction's run
    (`corrections.span`) by the same displacement, weighted 1 - |dz| / (CARRY_REACH + 1)."""

    def __init__(self, *args) -> None:
        super().__init__(*args, propagate=False)

    def edit(self, action: Action) -> None:
        s, z = self.s, action.z
        p = s.prompts.get((LABEL, z))
        moved = action.kind == "bg-move" and p is not None
        old = p.bg[action.index].copy() if moved else None
        super().edit(action)
        if old is None:
            return
        delta = np.asarray(action.rc, float) - old
        h, w = s.shape[1:]
        entry = Entry(f"carry the gesture on {z}", LABEL)
        for k in span(s, LABEL, z):
            weight = 1.0 - abs(k - z) / (CARRY_REACH + 1)
            q = s.prompts.get((LABEL, k))
            if weight <= 0 or q is None or len(q.bg) != len(p.bg):
                continue
            bg = q.bg.copy()
            bg[action.index] = np.clip(bg[action.index] + weight * delta, 0, [h - 1, w - 1])
            state = SliceState(q.copy(bg=bg), "predicted", s.confidence(LABEL, k))
            s.record(entry, (LABEL, k), state)
        s.finish(entry)


class _Masks:
    """Masks and prompts per slice, segmented with `segmenter` (the non-session methods)."""

    def __init__(self, segmenter, volume, window, truth, support_z, zs) -> None:
        self.segmenter, self.volume, self.window = segmenter, volume, window
        self.zs, self.support_z = list(zs), int(support_z)
        self.prompts: dict[int, PromptSet] = {}
        self.mask: dict[int, np.ndarray] = {support_z: np.asarray(truth[support_z], bool)}
        self.fixed = {int(support_z)}  # the support and the slices the user corrected

    def segment(self, z: int, p: PromptSet) -> np.ndarray:
        return np.asarray(self.segmenter.segment(self.volume[z], p, window=self.window), bool)

    def masks(self) -> dict[int, np.ndarray]:
        blank = np.zeros(self.volume.shape[1:], bool)
        return {z: self.mask.get(z, blank) for z in self.zs}

    def bg(self, z: int) -> np.ndarray:
        p = self.prompts.get(z)
        return np.zeros((0, 2)) if p is None else p.bg

    def edit(self, action: Action) -> None:
        z = action.z
        p = apply(self.prompts.get(z, empty_prompts(z)), action)
        self.prompts[z], self.mask[z] = p, self.segment(z, p)
        self.fixed.add(z)

    def commit(self, z: int) -> None:
        """The slice's mask is already its segmentation; propagation is the method's."""


class PerSlice(_Masks):
    """No propagation (see the module docstring)."""


def box_prompts(prev: np.ndarray, z: int) -> PromptSet:
    """micro-sam-style prompts from the previous slice's (H, W) bool mask."""
    rows, cols = np.nonzero(prev)
    h, w = prev.shape
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    dr, dc = max(1.0, BOX_GROW * (r1 - r0 + 1)), max(1.0, BOX_GROW * (c1 - c0 + 1))
    r0, r1 = max(0.0, r0 - dr), min(h - 1.0, r1 + dr)
    c0, c1 = max(0.0, c0 - dc), min(w - 1.0, c1 + dc)
    ring = [(r0, c0), (r0, c1), (r1, c1), (r1, c0)]  # the box as the region, seeds at corners
    fg = fg_points_from_mask(prev, N_FG)
    return PromptSet(fg, np.array(ring, float), label=LABEL, slice_index=z, origin="mask-ring")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


class MicroSamStyle(_Masks):
    """micro-sam's propagation and re-propagation (see the module docstring)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.propagate(self.support_z)

    def propagate(self, start: int) -> None:
        lo, hi = self.zs[0], self.zs[-1]
        for step in (-1, 1):
            prev, z = self.mask[start], start + step
            while lo <= z <= hi and z not in self.fixed and prev.any():
                p = box_prompts(prev, z)
                m = self.segment(z, p)
                if iou(m, prev) < STOP_IOU:
                    break
                self.prompts[z], self.mask[z] = p, m
                prev, z = m, z + step

    def commit(self, z: int) -> None:
        self.propagate(z)
