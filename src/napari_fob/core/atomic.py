"""Every file the project writes goes through here: atomic single files and atomic file sets.

`atomic_path` / `write_bytes` / `write_text` / `write_json`: the data goes to a hidden temporary
file beside the target (``.fob-tmp-<token>-<name>``, so writers that look at the ending, such
as nibabel for ``.nii.gz``, still see it), is flushed to disk and moved into place with
``os.replace``: a reader sees the old file or the new one, never half of one. The temporary
file is created with ``os.open(..., 0o666)``, so the kernel applies the user's umask (and any
default ACL) exactly as for a plain ``open(path, "w")``: labels, sidecars, images and
checkpoints all get the same mode, never 0600 (``mkstemp``) and never wider than the umask. The
process umask is never read or changed (``os.umask`` is process-wide and not thread-safe).

`ResultFolder`: several files in one folder replaced as one unit (a redo log). Every new file is
first written under a temporary name; then a commit record (``.fob-commit.json``, itself written
atomically) lists the renames; then the renames run and the record is deleted. A crash before
the record leaves the old files untouched; a crash after it is rolled forward by `recover`
(which every save and `session.sidecar.load_session` run first), so the folder always holds the old
set or the new set, never a mix. Files in the folder that are not part of the set are never
touched, so a set may live in a folder the user shares with other data.

Standard library only: must not import numpy, nibabel, torch, napari or Qt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".fob-tmp-"
COMMIT_RECORD = ".fob-commit.json"
COMMIT_FORMAT = "napari-fob/commit"
STALE_TMP_S = 3600.0  # temporary files older than this are leftovers of a killed writer

try:  # POSIX: serialise two writers of one folder (the lock is on the folder itself)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def create_temp(path: str | os.PathLike) -> Path:
    """Create an empty hidden temporary file beside `path`, mode 0666 minus the umask."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(4)}-{path.name}")
        try:
            os.close(os.open(tmp, flags, 0o666))  # the kernel applies the umask
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{path}: cannot create a temporary file beside it")  # pragma: no cover


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # pragma: no cover - folders cannot be opened on Windows
        return
    with contextlib.suppress(OSError):
        _fsync(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; on success move it into place.

    The temporary file exists (empty, with the umask's mode) when yielded; a writer that opens
    it by name ("wb") keeps that mode. On an exception the temporary file is removed and the
    old `path`, if any, is untouched.

    Raises:
        FileNotFoundError: the folder of `path` does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    tmp = create_temp(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        named = _named(err, path)
        if named is err:
            raise
        raise named from err
    _fsync_dir(path.parent)


def _named(err: BaseException, path: Path) -> BaseException:
    """A write error that names no file (a full disk: writers raise ``[Errno 28]`` alone) as
    the same error naming `path`, so the user learns where it happened; others as they are."""
    if isinstance(err, OSError) and err.filename is None and err.errno is not None:
        return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))
    return err


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[Any]:
    """``open`` for writing, atomically (see `atomic_path`); `mode` is "w" or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_bytes(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], Any]) -> Path:
    """Write `data` (bytes, or a function writing to a binary file object) atomically."""
    with atomic_open(path, "wb") as handle:
        if callable(data):
            data(handle)
        else:
            handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` as UTF-8, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any, **dump_kwargs: Any) -> Path:
    """Write `data` as JSON (``json.dumps(data, **dump_kwargs)``), atomically."""
    return write_text(path, json.dumps(data, **dump_kwargs))


def adopt(path: str | os.PathLike) -> Path:
    """Give a file another library moved into place (pooch writes through ``mkstemp``, so 0600)
    the mode this module's files get (0666 minus the umask), and flush it and its folder to disk.

    The mode is read from a fresh temporary file beside it, so the umask is never read.
    """
    path = Path(path)
    probe = create_temp(path)
    try:
        mode = probe.stat().st_mode & 0o777
    finally:
        probe.unlink(missing_ok=True)
    os.chmod(path, mode)
    _fsync(path)
    _fsync_dir(path.parent)
    return path


# ---- file sets ----------------------------------------------------------------------------
@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on `folder` (POSIX flock; a no-op elsewhere)."""
    if fcntl is None or os.name != "posix":  # pragma: no cover
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def pending_commit(folder: str | os.PathLike) -> bool:
    """True when `folder` holds the record of a commit that was interrupted."""
    return (Path(folder) / COMMIT_RECORD).exists()


def recover(folder: str | os.PathLike) -> None:
    """Finish a commit that was interrupted in `folder`; drop old leftover temporary files.

    Raises:
        OSError: an interrupted commit cannot be finished (e.g. a read-only folder); the
            message names the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    if pending_commit(folder):
        try:
            with folder_lock(folder):
                _roll_forward(folder)
        except OSError as err:
            raise OSError(
                f"{folder}: an interrupted save must be completed before the folder is read, "
                f"but that failed ({err}); make the folder writable and try again"
            ) from err
    now = time.time()
    for stray in folder.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - stray.stat().st_mtime > STALE_TMP_S:
                stray.unlink()


def _roll_forward(folder: Path) -> None:
    record_path = folder / COMMIT_RECORD
    if not record_path.exists():  # another process finished it while we waited for the lock
        return
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        moves, removals = record["moves"], record["remove"]
    except (ValueError, KeyError, TypeError) as err:  # written atomically: not expected
        raise OSError(f"{record_path}: unreadable commit record ({err})") from err
    for staged, final in moves:
        if (folder / staged).exists():
            os.replace(folder / staged, folder / final)
    for name in removals:
        (folder / name).unlink(missing_ok=True)
    _fsync_dir(folder)
    record_path.unlink()
    _fsync_dir(folder)


def check_folder(
    folder: str | os.PathLike,
    names: Iterable[str],
    *,
    overwrite: bool,
    protect: Iterable[str | os.PathLike] = (),
    what: str = "output folder",
) -> Path:
    """Check that a file set `names` may be written into `folder`, before any work is done.

    Raises:
        ValueError: `folder` is a file; it holds one of the `protect` files (inputs); or it holds
            a previous set (any of `names`) and `overwrite` is False.
        OSError: `folder` (or the nearest existing folder above it) is not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder}: exists and is not a folder")
    real = folder.resolve()
    inside = [
        str(p) for p in protect if Path(p).resolve() == real or real in Path(p).resolve().parents
    ]
    if inside:
        raise ValueError(
            f"{what} {folder} holds the input(s) {', '.join(inside)}: writing there could "
            "replace them; choose another folder"
        )
    existing = sorted(n for n in names if (folder / n).exists()) if folder.is_dir() else []
    if existing and not overwrite:
        raise ValueError(
            f"{what} {folder} already holds a result ({', '.join(existing)}); pass --overwrite "
            "(overwrite=True) to replace it, or choose another folder"
        )
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {folder}: {probe} is not a writable folder")
    # os.access says yes to root everywhere; a read-only mount or /proc says no only when tried
    try:
        fd, name = tempfile.mkstemp(prefix=".fob-probe-", dir=probe)
    except OSError as exc:
        raise PermissionError(f"{what} {folder}: cannot write into {probe} ({exc})") from exc
    os.close(fd)
    os.unlink(name)
    return folder


class ResultFolder:
    """The files `names` in `folder`, replaced together (see the module docstring).

    Use as a context manager: ``with ResultFolder(out, names=...) as unit:`` then write each
    new file to ``unit.path(name)``; on a clean exit the set is committed (names of the set that
    were not written are removed: they belong to the previous set), on an exception nothing in
    `folder` changes. The folder is created if needed.

    Args:
        folder: the target folder.
        names: the file names (no folders) that make up one result.
        overwrite: replace a previous result; False refuses a folder holding any of `names`.
        protect: files that must never be replaced (the inputs): refused when inside `folder`.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        names: Iterable[str],
        overwrite: bool = False,
        protect: Iterable[str | os.PathLike] = (),
    ) -> None:
        self.folder = Path(folder)
        self.names = tuple(names)
        self.overwrite = bool(overwrite)
        self.protect = tuple(protect)
        self._staged: dict[str, Path] = {}

    def __enter__(self) -> ResultFolder:
        self._check()
        self.folder.mkdir(parents=True, exist_ok=True)
        recover(self.folder)
        return self

    def _check(self) -> None:
        check_folder(self.folder, self.names, overwrite=self.overwrite, protect=self.protect)

    def path(self, name: str) -> Path:
        """The temporary path the new ``name`` is written to (an empty file until then)."""
        if name not in self.names:
            raise ValueError(f"{name!r} is not one of this result's files {self.names}")
        if name not in self._staged:
            self._staged[name] = create_temp(self.folder / name)
        return self._staged[name]

    def final(self, name: str) -> Path:
        """Where ``name`` will be once committed."""
        return self.folder / name

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            try:
                self._commit()
                return False
            except BaseException as err:
                exc = err
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        named = _named(exc, self.folder)
        if named is not exc:
            raise named from exc
        if exc_type is None:
            raise exc
        return False

    def _commit(self) -> None:
        for tmp in self._staged.values():
            _fsync(tmp)
        with folder_lock(self.folder):
            if not self.overwrite:  # another writer may have finished since the first check
                self._check()
            record = {
                "format": COMMIT_FORMAT,
                "moves": [[tmp.name, name] for name, tmp in self._staged.items()],
                "remove": [n for n in self.names if n not in self._staged],
            }
            write_json(self.folder / COMMIT_RECORD, record)
            self._staged = {}  # from here on the record owns them: recovery rolls forward
            _roll_forward(self.folder)


def sha256_of_file(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks (no caching)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
