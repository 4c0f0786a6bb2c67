"""`AdaptPanel`: "Adapt to this scan", fine-tuning FoB on the open volume before Predict.

The button fine-tunes the FoB model of the annotator's form on the current volume's own
self-supervised episodes for the chosen budget (`napari_fob.training.adapt`, cached by the
scan, the weights, the support and the budget), in the annotator's worker with its progress row
and its Cancel; the adaptation itself runs in one more thread that the worker polls, so Cancel
stops it at its next optimiser step. When it finishes, Predict on this scan uses the adapted
weights until the models of the form change (a new checkpoint, other prompts) or the scan is
adapted again (always from the form's weights, never from an earlier adaptation); another image
prompts with the form's weights (`SessionGlue.generator_for`). Imports qtpy (widget side
only); torch only inside the worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFormLayout, QGroupBox, QPushButton, QSpinBox

from napari_fob._widgets.boundary import reported

# how often the worker reports: each report costs the GUI thread time that the adaptation beside
# it then lacks (measured: docs/training.md, "Adapt to this scan")
POLL_S = 1.0
MAX_BUDGET_S = 600


@dataclass(frozen=True)
class AdaptProgress:
    """A progress report in seconds, not slices: the progress row shows only its message."""

    message: str


def adapt_steps(
    session: Any, label: int, seconds: float, *, poll_s: float = POLL_S
) -> Generator[AdaptProgress, None, Any]:
    """(Worker side) adapt the session's FoB to its volume for `seconds`, from the supports
    of structure `label`; yields `AdaptProgress`; returns the adapted generator
    (`training.adapt.AdaptedGenerator`). Closing the generator (the job's Cancel) stops the
    adaptation."""
    from napari_fob.core.intensity import normalise
    from napari_fob.prompting.generators import FobGenerator
    from napari_fob.training.adapt import AdaptSettings, adapt_cached, adapted_generator

    base = getattr(session.generator, "base", session.generator)
    if not isinstance(base, FobGenerator):
        raise ValueError("Adapt to this scan fine-tunes FoB: choose the FoB prompts first")
    painted = session.supports.get(label) or {}
    if not painted:
        raise ValueError(f"paint structure {label} on a slice first: adaptation needs a support")
    supports = np.zeros(session.shape, np.int32)
    for z, mask in painted.items():
        supports[z][np.asarray(mask, bool)] = label
    volume01 = normalise(session.volume, session.window)
    spacing = tuple(getattr(session.source, "spacing", (1.0, 1.0, 1.0)))
    cancel, outcome = threading.Event(), {}
    state = {"steps": 0}

    def progress(elapsed: float, budget: float, steps: int, loss: float | None) -> None:
        state["steps"] = steps

    def work() -> None:
        try:
            outcome["result"] = adapt_cached(
                base.predictor.model, volume01, supports, spacing=spacing,
                settings=AdaptSettings(seconds=float(seconds)), progress=progress,
                cancel=cancel, device=base.predictor.device,
            )  # fmt: skip
        except Exception as exc:  # handed to the worker, which reports it
            outcome["error"] = exc

    # not a daemon: after a Cancel it finishes its preparation (the cancel is checked after
    # it and before every step), and the interpreter waits for it instead of tearing torch
    # down under it at exit (a C++ abort)
    thread = threading.Thread(target=work, name="fob-adapt", daemon=False)
    t0 = time.perf_counter()
    thread.start()
    try:
        while thread.is_alive():
            thread.join(poll_s)
            elapsed = min(int(time.perf_counter() - t0), int(seconds))
            steps = state["steps"]
            yield AdaptProgress(f"Adapting FoB to this scan: {elapsed} of {seconds:g} s, "
                                f"{steps} steps")  # fmt: skip
    finally:
        cancel.set()  # a Cancel closes this generator: stop at the next step, keep nothing
    if "error" in outcome:
        raise outcome["error"]
    return adapted_generator(base, outcome["result"])  # here: a model copy is not for the GUI


def adapted_message(record: dict) -> str:
    how = "from the cache" if record.get("cache_hit") else f"in {record['seconds']:.0f} s"
    return (
        f"FoB adapted to this scan: {record['steps']} steps {how}; Predict uses the adapted "
        "weights."
    )


class AdaptPanel(QGroupBox):
    """The budget and the button; gets what it uses of the annotator, not the widget.

    Args (keyword-only): run_job(description, make, on_done=) runs a session generator in the
    annotator's worker; prepare(label) readies the session (supports read from the layer);
    glue: the annotator's `SessionGlue` (its ``generator`` is what every job puts on the
    session); label() reads the active structure; say(text) shows a message.
    """

    def __init__(
        self,
        *,
        run_job: Callable[..., None],
        prepare: Callable[[int], Any],
        glue: Any,
        label: Callable[[], int],
        say: Callable[[str], None],
    ) -> None:
        from napari_fob.training.adapt import DEFAULT_SECONDS

        super().__init__("Adapt to this scan")
        self._run_job, self._prepare, self._glue = run_job, prepare, glue
        self._label, self._say = label, say
        form = QFormLayout(self)
        self._budget = QSpinBox()
        self._budget.setRange(0, MAX_BUDGET_S)
        self._budget.setSuffix(" s")
        self._budget.setValue(int(DEFAULT_SECONDS))
        self._button = QPushButton("Adapt to this scan")
        self._button.setToolTip(
            "Fine-tune FoB on this volume's own self-supervised episodes (its supervoxels, the "
            "painted support against its neighbours) for the budget, then Predict with it"
        )
        form.addRow("Budget", self._budget)
        form.addRow(self._button)
        self._button.clicked.connect(lambda _=False: reported(self.adapt, self._say))

    def set_budget(self, seconds: int) -> None:
        self._budget.setValue(int(seconds))

    def set_busy(self, busy: bool) -> None:
        """Grey the button out while a job runs: the worker takes one job at a time."""
        self._button.setEnabled(not busy)

    def adapt(self) -> None:
        """Adapt FoB to the current volume in the annotator's worker."""
        seconds = int(self._budget.value())
        if seconds <= 0:
            raise ValueError("set a budget above 0 s to adapt FoB to this scan")
        label = self._label()
        self._prepare(label)

        def make(session: Any) -> Any:
            return (yield from adapt_steps(session, label, seconds))

        self._run_job("Adapting FoB", make, on_done=self._adopt)

    def _adopt(self, adapted: Any) -> None:
        self._glue.adopt(adapted)  # this scan's session only (`SessionGlue.generator_for`)
        self._say(adapted_message(adapted.adaptation))
