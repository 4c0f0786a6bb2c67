"""Run the session's long generators off the GUI thread, with a napari progress bar.

Every long operation of `AnnotationSession` (predict, commit, SAM precompute) is a generator that
yields progress and returns its result. `start` runs such a generator in a napari
`GeneratorWorker` (a Qt thread) and calls back **on the main thread** for each progress step, at
the end and on errors, so callbacks may touch layers. With the environment variable
``NAPARI_FOB_NOTHREADS=1`` the same generator runs synchronously (for tests and debugging) and
the same callbacks fire in the same order.

Imports napari's Qt threading helpers; used only by the dock widgets.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress

NOTHREADS_ENV = "NAPARI_FOB_NOTHREADS"


def threads_disabled() -> bool:
    """True when ``NAPARI_FOB_NOTHREADS`` asks for synchronous runs ("1", "true", "yes")."""
    return os.environ.get(NOTHREADS_ENV, "").strip().lower() in ("1", "true", "yes")


def step_of(item: Any) -> tuple[int | None, int | None, str]:
    """(done, total, message) of a yielded item: a session `Progress`, a (done, total) pair or
    anything else (counted as one step)."""
    if hasattr(item, "done") and hasattr(item, "total"):
        return int(item.done), int(item.total), str(getattr(item, "message", "") or "")
    if isinstance(item, tuple) and len(item) >= 2:
        return int(item[0]), int(item[1]), str(item[2]) if len(item) > 2 else ""
    return None, None, ""


class _Bar:
    """A napari progress bar (activity dock) fed from yielded progress items."""

    def __init__(self, description: str, show: bool) -> None:
        self._bar = progress(total=0, desc=description) if show else None
        self._done = 0

    def update(self, item: Any) -> None:
        bar = self._bar  # a local: updating the bar may process events that close it
        if bar is None:
            return
        done, total, message = step_of(item)
        if message:
            bar.set_description(message)
        if total is not None and total != bar.total:
            bar.total = total
        if done is None:
            done = self._done + 1
        if done > self._done:
            step, self._done = done - self._done, done
            bar.update(step)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Job:
    """One running (or finished) generator; `cancel()` stops it at its next yield."""

    def __init__(self, worker: Any | None, bar: _Bar) -> None:
        self.worker = worker
        self._bar = bar
        self.cancelled = False
        self.finished = worker is None

    def cancel(self) -> None:
        """Ask the generator to stop at its next yield (what it already did is kept)."""
        self.cancelled = True
        if self.worker is not None and not self.finished:
            self.worker.quit()

    @property
    def running(self) -> bool:
        return not self.finished


def start(
    make_generator: Callable[[], Generator[Any, Any, Any]],
    *,
    description: str,
    on_progress: Callable[[Any], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_end: Callable[[], None] | None = None,
    show_progress: bool = True,
) -> Job:
    """Run the generator made by `make_generator` and report back on the main thread.

    Args:
        make_generator: a no-argument callable returning the generator (it is called inside the
            worker thread, so building it may be slow too).
        description: the progress bar's title.
        on_progress: called with each yielded item (e.g. ``Progress(done, total, message)``).
        on_done: called with the generator's return value when it finished normally.
        on_error: called with the exception when it raised (not called on cancel).
        on_end: called last in every case (finished, failed or cancelled).
        show_progress: whether to show a napari progress bar.

    Returns:
        a `Job`; with threads disabled it has already finished when `start` returns.
    """
    bar = _Bar(description, show_progress)

    def progress_cb(item: Any) -> None:
        # The callback first: updating napari's bar may process Qt events, and with them the
        # worker's end, which must come after every progress report.
        if on_progress is not None:
            on_progress(item)
        bar.update(item)

    if threads_disabled():
        job = Job(None, bar)
        try:
            gen = make_generator()
            while True:
                try:
                    item = next(gen)
                except StopIteration as stop:
                    if on_done is not None:
                        on_done(stop.value)
                    break
                if getattr(item, "apply", None) is not None:
                    item.apply()  # a label write: on this (the main) thread, in order
                progress_cb(item)
        except Exception as exc:  # reported like the threaded path does
            if on_error is None:
                raise
            on_error(exc)
        finally:
            bar.close()
            if on_end is not None:
                on_end()
        return job

    # Result and error are handed over through `finished`, the worker's last signal: Qt does
    # not keep the order of signals that reach different receivers, so a "returned" handler
    # could run before the last "yielded" one.
    # Label writes (`Progress.apply`) are queued by the worker and applied here, on the main
    # thread, in order: before each progress report and, for those still queued, when the
    # worker ends (before a cancelled generator is closed, so its undo step holds them).
    outcome: dict[str, Any] = {}
    writes: deque[Callable[[], None]] = deque()

    def queued(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            if getattr(item, "apply", None) is not None:
                writes.append(item.apply)
            yield item

    def apply_writes() -> None:
        while writes:
            writes.popleft()()

    def drive() -> Generator[Any, Any, Any]:
        try:
            outcome["gen"] = gen = make_generator()
            outcome["result"] = yield from queued(gen)
        except Exception as exc:  # reported on the main thread by `finished`
            outcome["error"] = exc

    worker = create_worker(drive, _start_thread=False)
    job = Job(worker, bar)

    def progress_if_running(item: Any) -> None:
        if not job.finished:
            apply_writes()
            progress_cb(item)

    def finished() -> None:
        job.finished = True
        bar.close()
        try:
            apply_writes()
        except Exception as exc:  # a write that failed is reported like the job's errors
            outcome.setdefault("error", exc)
        if job.cancelled and "gen" in outcome:
            # Run the generator's cleanup now (e.g. a commit records what it already wrote
            # for undo) instead of whenever the abandoned generator is collected.
            outcome["gen"].close()
        try:
            if "error" in outcome:
                if on_error is None:
                    raise outcome["error"]
                on_error(outcome["error"])
            elif "result" in outcome and not job.cancelled and on_done is not None:
                on_done(outcome["result"])
        finally:
            if on_end is not None:
                on_end()

    worker.yielded.connect(progress_if_running)
    worker.finished.connect(finished)
    worker.start()
    return job
