"""The annotator's background work: one main job at a time, plus the SAM precompute.

A main job (load models, then predict or commit) and the SAM embedding precompute never run
together: they share the SAM predictor. Starting a main job while the precompute runs cancels
the precompute and starts the job when it has stopped; the precompute restarts, around the
slice being looked at, when the viewer is idle again. Everything here runs on the main thread;
the generators run in `workers.start`. Imports nothing from Qt directly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from napari_fob._widgets import workers

PREFETCH_RADIUS = 2  # SAM embeddings precomputed for slices within this distance
PREFETCH_SHOW_AFTER_S = 0.5  # the progress row shows a precompute only once it takes this long


def cancelled_message(description: str, last: Any) -> str:
    """What a cancelled job kept: the slices it finished before it stopped."""
    done, total, message = workers.step_of(last) if last is not None else (None, None, "")
    if last is None or message.startswith("Loading models"):
        return f"{description} cancelled before it started: nothing changed."
    if done is None or total is None or total <= 0:
        return f"{description} cancelled: what it finished before stopping is kept."
    return f"{description} cancelled: {done} of {total} slice(s) were done and are kept."


@dataclass
class JobHooks:
    """What the job runner uses of the annotator: its session and models, its messages, its
    busy state and its refresh — handed over one by one, not the widget."""

    session: Callable[[], Any]
    choice: Callable[[], Any]  # the models the form asks for (`BackendChoice`)
    glue: Any  # `SessionGlue`: load_backends(choice), segmenter
    say: Callable[[str], None]
    set_busy: Callable[[bool], None]
    show_backends: Callable[[], None]
    refresh: Callable[[bool], None]  # refresh(only_if_dirty)
    current_slice: Callable[[], int]
    progress: Any = None  # the dock's `ProgressPanel` (start / step / finish), or None


class JobRunner:
    """Runs the session generators of one annotator (see the module docstring)."""

    def __init__(self, hooks: JobHooks) -> None:
        self.w = hooks
        self.job: workers.Job | None = None
        self.prefetch: workers.Job | None = None
        self.queued: tuple[str, Callable, Callable | None] | None = None
        self.prefetch_center: int | None = None
        self.description = ""
        self.last_progress: Any = None
        self.closed = False

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.running

    def close(self) -> None:
        """The dock is closing: stop everything, start nothing more, and let the workers'
        last reports fall on the floor (the widget's layers and editor are gone)."""
        self.closed = True
        self.queued = None
        self.cancel()

    def cancel(self) -> None:
        """Stop the running job and the precompute at their next step."""
        for job in (self.job, self.prefetch):
            if job is not None:
                job.cancel()

    def run(
        self,
        description: str,
        make: Callable[[Any], Generator[Any, None, Any]],
        *,
        on_done: Callable[[Any], None] | None = None,
    ) -> None:
        """Run ``make(session)`` (a session generator) in a worker, after loading the models."""
        w = self.w
        if self.closed:
            return
        if self.busy:
            w.say("Busy: wait for the running job or press Cancel.")
            return
        if self.prefetch is not None and self.prefetch.running:
            self.queued = (description, make, on_done)  # started when the prefetch stops
            self.prefetch.cancel()
            return
        session, choice = w.session(), w.choice()

        def gen() -> Generator[Any, None, Any]:
            yield from w.glue.load_backends(choice)
            return (yield from make(session))

        w.set_busy(True)
        self.description, self.last_progress = description, None
        if w.progress is not None:
            w.progress.start(description)
        self.job = workers.start(
            gen,
            description=description,
            on_progress=self._on_progress,
            on_done=on_done or (lambda result: w.say(f"{description}: {len(result)} slice(s).")),
            on_error=lambda exc: w.say(f"{description} failed: {exc}"),
            on_end=self._on_end,
        )

    def _on_progress(self, item: Any) -> None:
        if self.closed:
            return
        self.last_progress = item
        if self.w.progress is not None:
            self.w.progress.step(item)
        self.w.say(str(getattr(item, "message", "") or (item[2] if len(item) > 2 else "")))
        self.w.show_backends()
        self.w.refresh(True)

    def _on_end(self) -> None:
        if self.closed:
            return
        if self.w.progress is not None:
            self.w.progress.finish()
        if self.job is not None and self.job.cancelled:
            self.w.say(cancelled_message(self.description, self.last_progress))
        self.w.set_busy(False)
        self.w.show_backends()
        self.w.refresh(False)
        self.start_prefetch()

    def start_prefetch(self) -> None:
        """Precompute SAM embeddings around the current slice in the background (if SAM)."""
        w, s = self.w, self.w.session()
        precompute = getattr(w.glue.segmenter, "precompute", None)
        if s is None or precompute is None or self.busy or self.closed:
            return
        if self.prefetch is not None and self.prefetch.running:
            self.prefetch.cancel()
            return  # restarted by _prefetch_ended
        z = w.current_slice()
        near = range(max(0, z - PREFETCH_RADIUS), min(s.shape[0], z + PREFETCH_RADIUS + 1))
        images = {k: s.volume[k] for k in near}
        self.prefetch_center = z
        if w.progress is not None:
            w.progress.start("SAM embeddings", after_s=PREFETCH_SHOW_AFTER_S)
        self.prefetch = workers.start(
            lambda: precompute(images, window=s.window, center=z),
            description="SAM embeddings",
            on_progress=None if w.progress is None else w.progress.step,
            on_end=self._prefetch_ended,
            on_error=lambda exc: w.say(f"SAM precompute failed: {exc}"),
        )

    def _prefetch_ended(self) -> None:
        if self.closed:
            return
        if self.w.progress is not None and not self.busy:
            self.w.progress.finish()
        queued, self.queued = self.queued, None
        if queued is not None:
            description, make, on_done = queued
            self.run(description, make, on_done=on_done)
        elif self.prefetch_center != self.w.current_slice():
            self.start_prefetch()  # the slice changed while it ran
