"""The conventions every `fob` command shares: --version, --verbose / --quiet / --debug, logging
on stderr, the one error boundary in `main` and its exit statuses (2 bad input, 1 environment,
130 Ctrl-C). Run as users meet them: `python -m napari_fob.cli` in a subprocess."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from napari_fob import cli

# The arguments each command needs before the shared flags can be parsed.
REQUIRED = {
    "info": [],
    "sample": ["mni-brain", "--out", "x"],
    "segment": ["image.nii.gz", "--support", "s.nii.gz", "--out", "x"],
    "demo": [],
    "weights": [],
    "pseudolabel": ["v.nii.gz", "--out", "x"],
    "train": [],
    "evaluate": ["--manifest", "m.yaml", "--out", "x"],
}


def fob(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "napari_fob.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def one_paragraph(stderr: str, command: str) -> str:
    """The error message; checks it is one line, starts with 'fob CMD: error:', no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"fob {command}: error: "), stderr
    return lines[0]


def test_every_command_is_registered_with_a_required_args_entry():
    assert set(REQUIRED) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_takes_verbose_quiet_and_debug(command):
    parser = cli.build_parser()
    base = [command, *REQUIRED[command]]
    plain = parser.parse_args(base)
    assert (plain.verbose, plain.quiet, plain.debug) == (False, False, False)
    assert cli.log_level(plain) == logging.WARNING
    quiet = parser.parse_args([*base, "--quiet"])
    assert quiet.quiet and cli.log_level(quiet) == logging.ERROR
    loud = parser.parse_args([*base, "--verbose", "--debug"])
    assert loud.verbose and loud.debug and cli.log_level(loud) == logging.DEBUG


@pytest.mark.parametrize(
    "argv",
    [
        ["weights", "--quiet", "download", "sam-vit-b"],
        ["weights", "download", "sam-vit-b", "--quiet"],
    ],
)
def test_weights_actions_take_the_flags_before_or_after_the_action(argv):
    args = cli.build_parser().parse_args(argv)
    assert args.quiet and not args.verbose


def test_version_from_every_entry_point():
    from napari_fob import __version__

    script = Path(sys.executable).with_name("fob")  # the console script pip installed
    for argv in (
        [sys.executable, "-m", "napari_fob.cli"],
        [sys.executable, "-m", "napari_fob"],
        *([[str(script)]] if script.exists() else []),
    ):
        result = subprocess.run([*argv, "--version"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"fob (napari-fob) {__version__}"


def test_bad_input_is_exit_2_with_one_paragraph(tmp_path):
    result = fob("sample", "lung", "--out", tmp_path / "x")
    line = one_paragraph(result.stderr, "sample")
    assert result.returncode == 2
    assert "'lung'" in line and "mni-brain" in line  # names the input and what was expected


def test_set_of_the_wrong_type_is_refused_naming_the_key(tmp_path):
    for item, expected in (
        ("train.iterations=2.7", "train.iterations: expected a whole number, got 2.7"),
        ("train.amp=1", "train.amp: expected true or false, got 1"),
        ("val.max_slices=many", "val.max_slices: expected a whole number, got 'many'"),
    ):
        result = fob("train", "--set", item, "--out", tmp_path / "run")
        assert result.returncode == 2, result.stderr
        assert expected in one_paragraph(result.stderr, "train")
        assert not (tmp_path / "run").exists()


def test_missing_file_is_exit_1_naming_it(tmp_path):
    result = fob("pseudolabel", tmp_path / "nope.nii.gz", "--out", tmp_path / "sv")
    assert result.returncode == 1
    assert "nope.nii.gz" in one_paragraph(result.stderr, "pseudolabel")
    result = fob("train", "--config", tmp_path / "run.yaml")
    assert result.returncode == 1
    assert "training config not found" in one_paragraph(result.stderr, "train")


def test_unwritable_output_is_exit_1_and_debug_shows_the_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = fob("sample", "mni-brain", "--out", blocker / "sub")
    assert result.returncode == 1
    line = one_paragraph(result.stderr, "sample")
    assert str(blocker) in line and "--debug" in line
    debug = fob("sample", "mni-brain", "--out", blocker / "sub", "--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("fob sample: error: ")


def test_ctrl_c_is_exit_130():
    code = textwrap.dedent(
        """
        import signal, sys, time
        import napari_fob.commands.info as info

        # Ctrl-C as a terminal sends it, even where this test runs as a background job (a
        # non-interactive shell starts those with SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from napari_fob.cli import main

        def run(args):
            print("ready", flush=True)
            time.sleep(60)

        info.run = run
        sys.exit(main(["info"]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert one_paragraph(err, "info") == "fob info: error: interrupted"


LOGGING_SCRIPT = """
import logging, sys
import napari_fob.commands.info as info
from napari_fob.cli import main

def run(args):
    log = logging.getLogger("napari_fob.something")
    log.debug("a debug line")
    log.info("an info line")
    log.warning("a warning line")
    return 0

info.run = run
sys.exit(main(["info", *sys.argv[1:]]))
"""


@pytest.mark.parametrize(
    "flags, shown",
    [
        ([], ["warning: a warning line"]),
        (["--quiet"], []),
        (
            ["--verbose"],
            ["debug [napari_fob.something]: a debug line", "info: an info line", "warning:"],
        ),
    ],
)
def test_log_messages_on_stderr_by_level(flags, shown):
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT, *flags], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if "napari-fob" not in ln]  # startup line
    assert len(lines) == len(shown), result.stderr
    for line, text in zip(lines, shown):
        assert line.startswith("fob info: ") and text in line


def test_missing_tensorboard_is_a_warning(tmp_path, monkeypatch, caplog):
    from napari_fob.training.logs import RunLog

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="napari_fob"):
        run_log = RunLog(tmp_path)
    assert run_log.writer is None
    (record,) = [r for r in caplog.records if "TensorBoard" in r.getMessage()]
    assert record.levelno == logging.WARNING and "tensorboard" in record.getMessage()
    run_log.scalars(1, 0.1, {"total": 1.0})  # the CSV log still works
    assert (tmp_path / "train_log.csv").is_file()


def test_an_unexpected_error_is_one_paragraph_and_the_log_level_is_restored(
    monkeypatch, capsys
):
    from napari_fob.commands import info

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(info, "run", broken)  # the registry reads module.run when it builds
    level = logging.getLogger("napari_fob").level
    assert cli.main(["info", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: a bug" in err and "Traceback" not in err
    assert logging.getLogger("napari_fob").level == level
