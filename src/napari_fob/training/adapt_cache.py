"""The on-disk cache of FoB weights adapted to one scan (`training.adapt`).

Adapting costs the user its whole time budget (tens of seconds); the result is fully determined
by what it was computed from, so re-opening the same scan with the same support reuses it. An
entry's key (`adapt_key`) hashes exactly those inputs: the scan's data signature (its
normalised voxels, so the intensity window is part of it), the base weights' identity
(`model_identity`: their config and every tensor), the support's signature, the budget and the
adaptation settings. The key is also stored inside the entry and checked on reading, so an
entry is never served for other inputs.

One ``<key>.pt`` per entry under ``paths.cache_dir() / "adapted-fob"``, written atomically with
its content digest (`model.checkpoint.write_checkpoint`) and read with
``torch.load(weights_only=True)``. The folder is capped at ``$FOB_ADAPT_CACHE_MB`` (default
`DEFAULT_CAP_MB`, about 25 adapted copies of the shipped 4 MB model; 0 turns the cache off):
after each write the least recently used entries (file modification time, refreshed on every
hit) are deleted until the folder fits. An entry that cannot be read or fails its digest is set
aside as ``<key>.pt.damaged`` with a warning and recomputed by the caller: damage costs time,
never a crash. Imports torch lazily (reading and writing only).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from napari_fob.core import paths

FORMAT = "napari-fob/adapted-fob"
VERSION = 1
FOLDER = "adapted-fob"
#: The environment variable capping the cache folder, in MB; 0 turns the cache off.
CAP_ENV = "FOB_ADAPT_CACHE_MB"
DEFAULT_CAP_MB = 100.0
DAMAGED = ".damaged"


def cap_bytes() -> int:
    """``$FOB_ADAPT_CACHE_MB`` (default `DEFAULT_CAP_MB`) in bytes; 0: no cache.

    Raises:
        ValueError: the variable is not a number >= 0.
    """
    return int(paths.size_from_env(CAP_ENV, DEFAULT_CAP_MB, unit="MB", zero="no cache") * 1e6)


def adapt_key(
    *,
    data_signature: str,
    base_id: str,
    support_signature: str,
    seconds: float,
    settings: dict[str, Any],
) -> str:
    """The cache key of one adaptation; 32 hex characters (all arguments JSON-able)."""
    parts = {
        "data": str(data_signature),
        "base": str(base_id),
        "support": str(support_signature),
        "seconds": round(float(seconds), 3),
        "settings": settings,
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class AdaptCache:
    """Adapted state dicts by key, in `folder` (default ``cache_dir()/adapted-fob``).

    Args:
        folder: where the entries live; created on the first write.
        max_bytes: cap on the folder's entries; None: `cap_bytes()` (the environment).
    """

    def __init__(self, folder: str | Path | None = None, *, max_bytes: int | None = None):
        self.folder = Path(folder) if folder is not None else paths.cache_dir() / FOLDER
        self.max_bytes = cap_bytes() if max_bytes is None else int(max_bytes)
        self.evicted = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def get(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(state dict, record) stored under `key`, or None (missing, or damaged: set aside)."""
        import torch

        from napari_fob.model.checkpoint import content_sha256

        path = self.path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(entry, dict) or entry.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT!r} file")
            if entry.get("version") != VERSION or entry.get("key") != key:
                raise ValueError(f"holds version {entry.get('version')!r}, key {entry.get('key')}")
            if content_sha256(entry) != entry.get("sha256"):
                raise ValueError("its content does not match its sha256")
            state, record = entry["model"], dict(entry["record"])
        except Exception as err:  # any unreadable file: set it aside, recompute
            self._set_aside(path, err)
            return None
        with contextlib.suppress(OSError):  # recently used: evicted last
            os.utime(path)
        return state, record

    def put(self, key: str, state: dict[str, Any], record: dict[str, Any]) -> Path | None:
        """Store an adapted state dict (tensors) with its JSON-able `record`; then enforce the
        cap (the new entry is kept even when alone over it). None when the cache is off."""
        from napari_fob.model.checkpoint import write_checkpoint

        if not self.enabled:
            return None
        content = {
            "format": FORMAT,
            "version": VERSION,
            "key": key,
            "model": {k: v.detach().cpu() for k, v in state.items()},
            "record": json.loads(json.dumps(record)),  # plain values only (weights_only)
        }
        path = write_checkpoint(self.path(key), content)
        self._enforce_cap(keep=path)
        return path

    def _set_aside(self, path: Path, err: BaseException) -> None:
        aside = path.with_name(path.name + DAMAGED)
        with contextlib.suppress(OSError):
            path.replace(aside)
        warnings.warn(
            f"adapted-weights cache: entry {path} cannot be used ({type(err).__name__}: {err}); "
            f"set aside as {aside.name}, the adaptation is computed again",
            stacklevel=3,
        )

    def _enforce_cap(self, *, keep: Path) -> None:
        """Delete the least recently used entries (damaged ones count) until the folder fits."""
        files = []
        for path in [*self.folder.glob("*.pt"), *self.folder.glob(f"*.pt{DAMAGED}")]:
            with contextlib.suppress(OSError):  # removed meanwhile by another process
                info = path.stat()
                files.append((info.st_mtime_ns, str(path), info.st_size, path))
        total = sum(f[2] for f in files)
        for _, _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                self.evicted += 1
            total -= size
