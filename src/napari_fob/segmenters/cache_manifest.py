"""The manifest of an on-disk embedding store, safe to share between processes.

Several processes may write one store at once: the ranks of a ``torchrun`` batch over one
cache folder, or the CLI beside the widget. Each keeps its own view of the entries, so writing
that view back would drop the entries the others added since it last read the file (their
``.npz`` files stay, counted by the size cap, never served again). A manifest is therefore
only ever rewritten as a *merge*: under an exclusive lock on ``manifest.json.lock`` (POSIX
``flock``; where it does not exist the merge still runs, only unserialised), the file on disk is
read, this process's entries are added, the keys it dropped are removed, and entries whose
``.npz`` file is gone (evicted by another process) are left out. The merged entries are returned,
so the writer also learns what the others added.

Pure standard library; the files go through `napari_fob.core.atomic`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from napari_fob.core import atomic

try:  # POSIX
    import fcntl
except ImportError:  # Windows: no advisory lock; the merge still keeps the others' entries
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def locked(manifest: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<manifest>.lock`` (created when missing)."""
    if fcntl is None:
        yield
        return
    fd = os.open(f"{manifest}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read(manifest: Path) -> dict[str, Any] | None:
    """The manifest's JSON object, or None when it is missing or unreadable."""
    try:
        data = json.loads(Path(manifest).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def merge_write(
    manifest: Path,
    header: Mapping[str, Any],
    entries: Mapping[str, dict[str, Any]],
    dropped: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Write ``header`` + the merged entries to ``manifest``; returns the merged entries.

    Merged: the entries on disk (when the file holds the same format, version and model as
    ``header``), updated with ``entries``, without ``dropped`` and without keys whose
    ``<key>.npz`` is no longer next to the manifest.
    """
    manifest = Path(manifest)
    with locked(manifest):
        on_disk = read(manifest) or {}
        same = all(on_disk.get(k) == v for k, v in header.items() if k != "entries")
        merged = dict(on_disk.get("entries", {})) if same else {}
        merged.update(entries)
        for key in dropped:
            merged.pop(key, None)
        merged = {k: v for k, v in merged.items() if (manifest.parent / f"{k}.npz").exists()}
        data = {**header, "entries": merged}
        atomic.write_bytes(manifest, json.dumps(data, indent=1, sort_keys=True).encode())
    return merged


def drop(manifest: Path, keys: Iterable[str]) -> None:
    """Remove evicted ``keys`` from another store's manifest (a store not open here)."""
    manifest = Path(manifest)
    with locked(manifest):
        data = read(manifest)
        if data is None or not isinstance(data.get("entries"), dict):
            return  # that store reports its own damage when it is opened
        for key in keys:
            data["entries"].pop(key, None)
        atomic.write_bytes(manifest, json.dumps(data, indent=1, sort_keys=True).encode())
