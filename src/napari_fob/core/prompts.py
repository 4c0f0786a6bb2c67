"""`PromptSet`: the prompts of one structure on one slice.

Pure numpy; imports nothing heavy. Points are ``(N, 2)`` float arrays in ``(row, col)`` pixel
units of the original slice (see `napari_fob.geometry` for every conversion to other frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

ORIGINS = ("fob", "user", "mask-ring", "copy", "registration")
T = TypeVar("T")


def _as_points(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"PromptSet.{name}: expected an (N, 2) array of (row, col), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"PromptSet.{name}: points must be finite, got {arr.tolist()}")
    return arr


def _as_scores(name: str, value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"PromptSet.{name}: expected {n} scores, got {arr.shape[0]}")
    return arr


T = TypeVar("T")


@dataclass
class PromptSet:
    """Foreground points and the ordered background ring of one structure on one slice.

    Attributes:
        fg: (Nf, 2) float array of foreground points, each (row, col) in slice pixels.
        bg: (Np, 2) float array of background points, each (row, col), in ring order: index k
            is the same place around the structure on every slice (angle around the centroid
            from a fixed start direction).
        label: the structure's label value (positive integer).
        slice_index: index of the slice along the volume's axis 0, or None for a lone image.
        origin: where the points came from: "fob", "user", "mask-ring" or "copy".
        fg_scores: optional (Nf,) confidence per foreground point.
        bg_scores: optional (Np,) confidence per background point.
        evidence: optional evidence that the structure is on the slice (e.g. the intensity-band
            overlap with the support's footprint, which FoB and the baselines report),
            used to decide where a structure ends.
    """

    fg: np.ndarray
    bg: np.ndarray
    label: int = 1
    slice_index: int | None = None
    origin: str = "fob"
    fg_scores: np.ndarray | None = None
    bg_scores: np.ndarray | None = None
    evidence: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fg = _as_points("fg", self.fg)
        self.bg = _as_points("bg", self.bg)
        self.fg_scores = _as_scores("fg_scores", self.fg_scores, len(self.fg))
        self.bg_scores = _as_scores("bg_scores", self.bg_scores, len(self.bg))
        if int(self.label) <= 0:
            raise ValueError(f"PromptSet.label must be a positive integer, got {self.label}")
        self.label = int(self.label)
        if self.origin not in ORIGINS:
            raise ValueError(f"PromptSet.origin must be one of {ORIGINS}, got {self.origin!r}")

    def copy(self, **changes: Any) -> PromptSet:
        """A deep copy, with the given fields replaced."""
        base = replace(
            self,
            fg=self.fg.copy(),
            bg=self.bg.copy(),
            fg_scores=None if self.fg_scores is None else self.fg_scores.copy(),
            bg_scores=None if self.bg_scores is None else self.bg_scores.copy(),
            meta=dict(self.meta),
        )
        return replace(base, **changes) if changes else base

    def equals(self, other: PromptSet) -> bool:
        """True when both hold the same points, label, slice and origin."""
        return (
            self.label == other.label
            and self.slice_index == other.slice_index
            and self.origin == other.origin
            and self.fg.shape == other.fg.shape
            and self.bg.shape == other.bg.shape
            and bool(np.allclose(self.fg, other.fg))
            and bool(np.allclose(self.bg, other.bg))
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (points as nested lists of (row, col))."""
        out: dict[str, Any] = {
            "label": self.label,
            "slice_index": self.slice_index,
            "origin": self.origin,
            "fg": self.fg.tolist(),
            "bg": self.bg.tolist(),
        }
        if self.fg_scores is not None:
            out["fg_scores"] = self.fg_scores.tolist()
        if self.bg_scores is not None:
            out["bg_scores"] = self.bg_scores.tolist()
        if self.evidence is not None:
            out["evidence"] = float(self.evidence)
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptSet:
        """Inverse of `to_dict`."""
        return cls(
            fg=data.get("fg", []),
            bg=data.get("bg", []),
            label=data["label"],
            slice_index=data.get("slice_index"),
            origin=data.get("origin", "user"),
            fg_scores=data.get("fg_scores"),
            bg_scores=data.get("bg_scores"),
            evidence=data.get("evidence"),
            meta=dict(data.get("meta", {})),
        )


def nearest_slice(candidates: Iterable[T], z: int, key: Callable[[T], int] = int) -> T:
    """The candidate nearest to slice `z` by |dz|; on a tie the lower slice wins.

    The one rule for "the nearest support" everywhere (generators, the predictor, the walks'
    order, the benchmarks): a fixed tie-break, so the same support prompts a slice whichever
    code path asks. `key` gives a candidate's slice index (the candidate itself by default).
    """
    return min(candidates, key=lambda c: (abs(key(c) - z), key(c)))
