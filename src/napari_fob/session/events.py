"""Progress reports and change events of `AnnotationSession` (no napari, no torch).

Long session operations are generators yielding `Progress`; `run` drives one headless. The GUI
subscribes to `SessionEvents` to refresh its layers after any change.

Writes into the committed labels are never made by the generator itself: a `Progress` may carry
an ``apply`` callable, which whoever drives the generator calls, in order, on the thread that
owns the labels (`run` inline; the widget on napari's main thread, where the labels layer and
the user's brush live), so a stroke painted during a commit is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """Progress of a long operation: `done` of `total` steps and a short message."""

    done: int
    total: int
    message: str = ""
    apply: Callable[[], None] | None = field(default=None, compare=False, repr=False)


def run(
    gen: Generator[Progress, None, T], on_progress: Callable[[Progress], Any] | None = None
) -> T:
    """Drive a session generator to completion and return its result (writes applied inline)."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        if getattr(progress, "apply", None) is not None:
            progress.apply()
        if on_progress is not None:
            on_progress(progress)


class SessionEvents:
    """A plain callback list: ``callback(kind, label, slices)`` after every change.

    ``kind`` is "support", "prompts" or "labels"; ``slices`` the slice indices touched.
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[[str, int, list[int]], Any]] = []

    def on_change(self, callback: Callable[[str, int, list[int]], Any]) -> Callable:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, kind: str, label: int, slices: Iterable[int]) -> None:
        slices = sorted(int(z) for z in slices)
        for callback in list(self._callbacks):
            callback(kind, label, slices)
