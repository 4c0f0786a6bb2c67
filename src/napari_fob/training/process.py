"""Qt-free helpers for running ``fob train`` as a child process.

Holds what the napari training widget needs but can be tested without Qt: building the command
line (:class:`TrainRequest`, :func:`build_command`), splitting the child's output into lines
(:class:`LineSplitter`), parsing the machine-readable lines that ``fob train`` prints
(:func:`parse_line`, :class:`TrainingStatus`) and finding the checkpoint a run left behind
(:func:`find_checkpoint`).

Must not import napari, Qt, magicgui or torch: the widget imports this module at start-up and
training itself always runs in another process.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
# Checkpoint file names written by the trainer, in order of preference for the annotator.
CHECKPOINT_NAMES = ("best.pt", "latest.pt")


@dataclass(frozen=True)
class TrainRequest:
    """What to pass to ``fob train``.

    ``config`` is the training config file (YAML; ``None`` only to resume, when ``fob train``
    reads ``OUT/config.yaml``), ``out`` the output folder (``None``: the config's own),
    ``iterations`` overrides the config when given, ``device`` is one of :data:`DEVICES` or
    ``cuda:N``, ``overrides`` are ``key=value`` strings passed as ``--set``.
    """

    config: Path | None
    out: Path | None = None
    iterations: int | None = None
    device: str = "auto"
    resume: bool = False
    overrides: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise ``FileNotFoundError``/``ValueError`` naming the bad field."""
        if self.config is None:
            saved = None if self.out is None else Path(self.out) / "config.yaml"
            if not (self.resume and saved is not None and saved.is_file()):
                raise FileNotFoundError(
                    "training config: none given; a YAML file is needed unless resuming a run "
                    "whose output folder holds config.yaml"
                )
        elif not Path(self.config).is_file():
            raise FileNotFoundError(f"training config {self.config!s} does not exist (a YAML file)")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", self.device):
            raise ValueError(f"device {self.device!r} is not one of {', '.join(DEVICES)} or cuda:N")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {self.iterations}")
        for item in self.overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} is not of the form key=value")


def build_command(request: TrainRequest, *, python: str | None = None) -> list[str]:
    """Return the argv list that runs ``fob train`` for ``request``.

    The interpreter of this process runs ``python -m napari_fob.cli`` rather than a ``fob`` found
    on ``PATH``, so the child uses exactly the installation napari runs from. ``-u`` keeps the
    child's output unbuffered so progress arrives line by line through the pipe.
    """
    request.validate()
    argv = [python or sys.executable, "-u", "-m", "napari_fob.cli", "train"]
    if request.config is not None:
        argv += ["--config", str(request.config)]
    if request.out is not None:
        argv += ["--out", str(request.out)]
    if request.iterations is not None:
        argv += ["--iterations", str(int(request.iterations))]
    argv += ["--device", request.device]
    for item in request.overrides:
        argv += ["--set", item]
    if request.resume:
        argv.append("--resume")
    return argv


def format_command(argv: list[str]) -> str:
    """Shell-quoted one-line form of ``argv`` (for the log view)."""
    return " ".join(shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class TrainEvent:
    """One machine-readable line: ``kind`` (``"PROGRESS"``, ``"CHECKPOINT"``, …) and its fields.

    Field values stay strings; :class:`TrainingStatus` converts the ones it knows.
    """

    kind: str
    fields: dict[str, str]


def parse_line(line: str) -> TrainEvent | None:
    """Parse ``"KIND key=value key=value ..."``; return ``None`` for any other line.

    ``KIND`` is an upper-case word; every further token must be ``key=value``. A value may hold
    ``=`` (only the first one splits) but no spaces, except a trailing ``path=`` which takes the
    rest of the line so folders with spaces survive. Ordinary log lines (tqdm bars, warnings)
    give ``None``.
    """
    text = line.strip()
    head, _, rest = text.partition(" ")
    if not head or not head.isupper() or not head.replace("_", "").isalpha() or not rest:
        return None
    fields: dict[str, str] = {}
    tokens = rest.split(" ")
    for i, token in enumerate(tokens):
        key, sep, value = token.partition("=")
        if not sep or not key.isidentifier():
            return None
        if key == "path":
            # paths come last and may contain spaces
            fields[key] = " ".join([value, *tokens[i + 1 :]])
            break
        fields[key] = value
    return TrainEvent(kind=head, fields=fields)


class LineSplitter:
    """Turn chunks of a child's output into lines the way a terminal shows them.

    Chunks arrive cut anywhere. A line ends at ``"\\n"``; within it, ``"\\r"`` returns the
    cursor (tqdm redraws its bar that way), so only the last redraw is the line's text. Text that
    a ``"\\r"`` closed but no ``"\\n"`` yet is the *transient* line: a live bar, shown apart so
    it never floods a log.
    """

    def __init__(self) -> None:
        self._pending = ""
        self.transient = ""

    def feed(self, chunk: str) -> list[str]:
        """Add ``chunk``; return the lines it completed (without line breaks, blanks dropped)."""
        *done, self._pending = (self._pending + chunk.replace("\r\n", "\n")).split("\n")
        lines = [_visible(d) for d in done]
        if done:
            # "bar\r" then "\n": the line a terminal leaves is the last redraw
            lines[0] = lines[0] or self.transient
            self.transient = ""
        redraws = self._pending.split("\r")
        if len(redraws) > 1:
            # keep only the last complete redraw; the unfinished tail stays pending
            closed = [r for r in redraws[:-1] if r.strip()]
            if closed:
                self.transient = closed[-1]
            self._pending = redraws[-1]
        return [line for line in lines if line.strip()]

    def flush(self) -> list[str]:
        """Return what is left as a last line (at the end of the process) and reset."""
        tail = _visible(self._pending) or self.transient
        self._pending, self.transient = "", ""
        return [tail] if tail.strip() else []


def _visible(line: str) -> str:
    """What a terminal shows of ``line``: the text after its last non-empty redraw."""
    parts = [p for p in line.split("\r") if p.strip()]
    return parts[-1] if parts else ""


@dataclass
class TrainingStatus:
    """What is known about a run so far, updated line by line with :meth:`feed`.

    Follows the lines of ``napari_fob.training.trainer.emit``: ``PROGRESS step total loss lr``,
    ``VALIDATION step <metric>=...``, ``CHECKPOINT step kind path`` (kind ``latest`` or
    ``best``), ``DONE step path``. ``step``/``total`` are iteration counts, ``loss``/``lr`` the
    last reported values, ``validation`` the last validation metrics, ``checkpoints`` the last
    path per kind, ``done`` whether the run reported its end.
    """

    step: int = 0
    total: int = 0
    loss: float | None = None
    lr: float | None = None
    validation: dict[str, float] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    done: bool = False
    events: list[TrainEvent] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint to offer: ``best`` (validated) if reported, else ``latest``."""
        for kind in ("best", "latest", ""):
            if kind in self.checkpoints:
                return self.checkpoints[kind]
        return None

    def feed(self, line: str) -> TrainEvent | None:
        """Parse one output line and update the status; return the event (or ``None``)."""
        event = parse_line(line)
        if event is None:
            return None
        f = event.fields
        if event.kind == "PROGRESS":
            self.step = int(f.get("step", self.step))
            self.total = int(f.get("total", self.total))
            self.loss = float(f["loss"]) if "loss" in f else self.loss
            self.lr = float(f["lr"]) if "lr" in f else self.lr
        elif event.kind == "CHECKPOINT" and "path" in f:
            self.checkpoints[f.get("kind", "")] = Path(f["path"])
        elif event.kind == "VALIDATION":
            self.validation = {k: float(v) for k, v in f.items() if k != "step" and _is_number(v)}
        elif event.kind == "DONE":
            self.done = True
        self.events.append(event)
        return event


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_checkpoint(out: Path | str) -> Path | None:
    """Return the checkpoint to offer from a training output folder, or ``None`` if none exists.

    Prefers ``best.pt`` (kept by validation) over ``latest.pt``; looks in ``out`` itself (where
    ``fob train`` writes them) and in ``out/checkpoints``.
    """
    root = Path(out)
    for folder in (root, root / "checkpoints"):
        for name in CHECKPOINT_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None
