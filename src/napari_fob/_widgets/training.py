"""napari dock widget that runs ``fob train`` in a child process and follows it.

The training itself never runs inside napari: a :class:`QProcess` starts
``python -m napari_fob.cli train ...`` and its output is read without blocking the event loop.
The widget shows a progress bar (step / total), the last loss and learning rate, a scrolling log,
Start / Stop, and hands the resulting checkpoint to the annotator widget. Command building and
line parsing live in :mod:`napari_fob.training.process` (Qt-free); this module is the Qt side.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QProcess, QProcessEnvironment, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_fob._widgets.controls import hbox
from napari_fob.training.process import (
    DEVICES,
    LineSplitter,
    TrainingStatus,
    TrainRequest,
    build_command,
    find_checkpoint,
    format_command,
)

LOG_MAX_LINES = 5000  # the log view drops the oldest lines past this
KILL_AFTER_MS = 5000  # Stop sends SIGTERM, then SIGKILL if the child is still alive after this
ANNOTATOR_SETTER = "set_fob_checkpoint"  # annotator method that takes a FoB checkpoint path


class TrainingWidget(QWidget):
    """Start, follow and stop ``fob train``; offer its checkpoint to the annotator.

    Signals: ``checkpoint_ready(str)`` carries the path offered by *Use this checkpoint in the
    annotator* (or :meth:`offer_checkpoint`); ``finished(int)`` the child's exit code when it
    ends (also after Stop).
    """

    checkpoint_ready = Signal(str)
    finished = Signal(int)

    def __init__(self, napari_viewer=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = napari_viewer
        self._status = TrainingStatus()
        # stdout and stderr are read apart so a progress bar redrawn on stderr never glues
        # itself to a PROGRESS line on stdout
        self._splitters = {QProcess.StandardOutput: LineSplitter()}
        self._splitters[QProcess.StandardError] = LineSplitter()
        self._process = QProcess(self)
        self._process.setProcessChannelMode(QProcess.SeparateChannels)
        self._process.readyReadStandardOutput.connect(self._on_stdout)
        self._process.readyReadStandardError.connect(self._on_stderr)
        self._process.finished.connect(self._on_finished)
        self._process.errorOccurred.connect(self._on_process_error)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._process.kill)
        self._build_ui()
        self._update_buttons()

    # ---- UI -------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self._config = QLineEdit()
        self._config.setPlaceholderText("training config (YAML; empty: resume OUT's)")
        self._out = QLineEdit()
        self._out.setPlaceholderText("output folder (empty: the config's)")
        self._iterations = QSpinBox()
        self._iterations.setRange(0, 10_000_000)
        self._iterations.setSpecialValueText("from config")  # 0 means: do not override
        self._device = QComboBox()
        self._device.addItems(DEVICES)
        self._resume = QCheckBox("resume from the last checkpoint")
        browse_config = QPushButton("…")
        browse_config.clicked.connect(lambda: self._on_browse(self._config))
        browse_out = QPushButton("…")
        browse_out.clicked.connect(lambda: self._on_browse(self._out))

        form = QFormLayout()
        form.addRow("Config", hbox(self._config, browse_config))
        form.addRow("Output", hbox(self._out, browse_out))
        form.addRow("Iterations", self._iterations)
        form.addRow("Device", self._device)
        form.addRow("", self._resume)

        self._start = QPushButton("Start")
        self._start.clicked.connect(self.start)
        self._stop = QPushButton("Stop")
        self._stop.clicked.connect(lambda: self.stop())
        self._progress = QProgressBar()
        self._progress.setFormat("%v / %m")
        self._metrics = QLabel("loss –   lr –")
        self._metrics.setWordWrap(True)
        self._log = QPlainTextEdit()
        self._log.setReadOnly(True)
        self._log.setMaximumBlockCount(LOG_MAX_LINES)
        self._live = QLabel()  # the child's live progress bar (tqdm), if it draws one
        self._checkpoint = QLabel("no checkpoint yet")
        self._checkpoint.setWordWrap(True)
        self._use = QPushButton("Use this checkpoint in the annotator")
        self._use.clicked.connect(self.offer_checkpoint)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for widget in (hbox(self._start, self._stop), self._progress, self._metrics, self._log):
            layout.addWidget(widget)
        for widget in (self._live, self._checkpoint, self._use):
            layout.addWidget(widget)

    def _on_browse(self, edit: QLineEdit) -> None:
        if edit is self._out:
            path = QFileDialog.getExistingDirectory(self, "Output folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Config", "", "YAML (*.yaml *.yml)")
        edit.setText(path or edit.text())  # cancelled: keep what was there

    def _update_buttons(self) -> None:
        running = self.is_running()
        self._start.setEnabled(not running)
        self._stop.setEnabled(running)
        self._use.setEnabled(self.checkpoint() is not None)

    # ---- process control -----------------------------------------------------------------
    def request(self) -> TrainRequest:
        """The :class:`TrainRequest` described by the fields (not yet validated)."""
        out, config = self._out.text().strip(), self._config.text().strip()
        return TrainRequest(
            config=Path(config) if config else None,
            out=Path(out) if out else None,
            iterations=self._iterations.value() or None,
            device=self._device.currentText(),
            resume=self._resume.isChecked(),
        )

    def start(self) -> None:
        """Start ``fob train`` with the current fields; errors go to the log, nothing starts."""
        if self.is_running():
            return
        try:
            argv = build_command(self.request())
        except (FileNotFoundError, ValueError) as err:
            self._append_log(f"cannot start: {err}")
            return
        self.start_command(argv)

    def start_command(self, argv: list[str]) -> None:
        """Run ``argv`` (program and arguments) as the training child and follow its output.

        :meth:`start` calls this with the ``fob train`` command; any program printing the same
        ``PROGRESS``/``CHECKPOINT`` lines can be followed.
        """
        if self.is_running():
            raise RuntimeError("a training process is already running; stop it first")
        self._status = TrainingStatus()
        self._splitters = {channel: LineSplitter() for channel in self._splitters}
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # progress must arrive line by line
        env.insert("FOB_PROGRESS_INTERVAL", "1")  # the live line: one redraw a second
        self._process.setProcessEnvironment(env)
        self._append_log(f"$ {format_command(argv)}")
        self._process.start(argv[0], argv[1:])
        self._update_buttons()

    def stop(self, kill_after_ms: int = KILL_AFTER_MS) -> None:
        """Ask the child to stop (SIGTERM), killing it after ``kill_after_ms`` if it lingers.

        The trainer writes checkpoints atomically, so the last one stays valid after a stop.
        """
        if self.is_running():
            self._append_log("stopping …")
            self._process.terminate()
            self._kill_timer.start(kill_after_ms)

    def is_running(self) -> bool:
        """Whether the training child process exists (starting or running)."""
        return self._process.state() != QProcess.NotRunning

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int = KILL_AFTER_MS) -> None:
        """Stop the child and wait for it (blocking, at most ``timeout_ms`` then kill)."""
        if self.is_running():
            self._process.terminate()
            if not self._process.waitForFinished(timeout_ms):
                self._process.kill()
                self._process.waitForFinished(timeout_ms)

    # ---- output --------------------------------------------------------------------------
    def _on_stdout(self) -> None:
        self._read(QProcess.StandardOutput)

    def _on_stderr(self) -> None:
        self._read(QProcess.StandardError)

    def _read(self, channel, flush: bool = False) -> None:
        self._process.setReadChannel(channel)
        data = bytes(self._process.readAll()).decode("utf-8", errors="replace")
        splitter = self._splitters[channel]
        for line in splitter.feed(data) + (splitter.flush() if flush else []):
            self._on_line(line)
        self._live.setText(next((s.transient for s in self._splitters.values() if s.transient), ""))

    def _on_line(self, line: str) -> None:
        event = self._status.feed(line)
        if event is None or event.kind != "PROGRESS":
            self._append_log(line)  # progress lines are shown by the bar, not the log
        status, kind = self._status, (event.kind if event is not None else None)
        if kind == "PROGRESS":
            self._progress.setRange(0, max(status.total, 1))
            self._progress.setValue(min(status.step, max(status.total, 1)))
        if kind in ("PROGRESS", "VALIDATION"):
            loss = "–" if status.loss is None else f"{status.loss:.4g}"
            lr = "–" if status.lr is None else f"{status.lr:.3g}"
            val = "".join(f"   val {k} {v:.4g}" for k, v in status.validation.items())
            self._metrics.setText(f"loss {loss}   lr {lr}{val}")
        if kind == "CHECKPOINT":
            self._checkpoint.setText(f"checkpoint: {status.checkpoint}")
            self._update_buttons()

    def _on_finished(self, exit_code: int, _exit_status=None) -> None:
        for channel in self._splitters:  # whatever arrived after the last readyRead
            self._read(channel, flush=True)
        self._kill_timer.stop()
        self._append_log(f"fob train finished (exit code {exit_code})")
        self._update_buttons()
        self.finished.emit(int(exit_code))

    def _on_process_error(self, error) -> None:
        if error == QProcess.FailedToStart:
            self._append_log(f"fob train failed to start: {self._process.errorString()}")
            self._update_buttons()

    def _append_log(self, line: str) -> None:
        self._log.appendPlainText(line)

    # ---- checkpoint ----------------------------------------------------------------------
    def checkpoint(self) -> Path | None:
        """The checkpoint of the current/last run: reported by the trainer, else found on disk."""
        if self._status.checkpoint is not None and self._status.checkpoint.is_file():
            return self._status.checkpoint
        out = self._out.text().strip()
        return find_checkpoint(out) if out else None

    def offer_checkpoint(self) -> Path | None:
        """Emit ``checkpoint_ready`` and set the annotator's FoB checkpoint when it is docked.

        Returns the checkpoint offered, or ``None`` when there is none yet.
        """
        path = self.checkpoint()
        if path is None:
            self._append_log("no checkpoint to offer yet")
            return None
        self.checkpoint_ready.emit(str(path))
        annotator = self._find_annotator()
        if annotator is None:
            self._append_log(f"checkpoint {path}: no annotator widget docked in this viewer")
        else:
            getattr(annotator, ANNOTATOR_SETTER)(str(path))
            self._append_log(f"annotator now uses {path}")
        return path

    def _find_annotator(self) -> QWidget | None:
        """The docked annotator: the first dock widget with ``set_fob_checkpoint``."""
        docked = self._viewer.window.dock_widgets.values() if self._viewer is not None else ()
        return next((w for w in docked if hasattr(w, ANNOTATOR_SETTER)), None)
