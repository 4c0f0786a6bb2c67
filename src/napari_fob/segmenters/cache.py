"""Embedding cache: an in-memory LRU plus an optional on-disk store, bound to one model.

An image embedding (e.g. SAM's ``features``) is expensive (seconds per slice on a CPU) and is
fully determined by the slice's data, the intensity window that turned it into the model's
input, the model's weights and the model's input size. `embedding_key` hashes exactly those, and
the cache records them next to every entry, so an embedding is never served for a different
input. A disk store belongs to one model: a folder made for another model (or a ``put`` for
another model) is refused with a `ValueError` naming both, as micro-sam refuses a mismatched zarr
cache.

On disk: one ``<key>.npz`` per embedding plus ``manifest.json`` (format, version, model id, the
metadata of every entry), rewritten only as a merge with what is on disk (`cache_manifest`), so
processes sharing a store (torchrun ranks, the CLI beside the widget) keep each other's entries.
An application keeps one cache over a *root* folder instead (`default_cache`:
``paths.cache_dir()``), holding one such store per model; binding the cache to a model opens
that model's store, so switching models keeps every model's embeddings. The root (or the single
store) has a size cap: after each write the least recently used entries
(file modification time, refreshed on every disk hit) are deleted until the total fits.

Every write goes through `napari_fob.core.atomic` (a temporary file moved into place, mode from
the umask), so a crash never leaves a half-written entry. An entry that cannot be read (lost,
truncated, bit-flipped, empty, holding another key) is dropped with a warning and recomputed by
the caller: damage costs time, never a crash.

Pure numpy + standard library (and `core.paths`): must not import torch, napari or Qt (the
SAM side converts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import warnings
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core import atomic, paths
from napari_fob.segmenters import cache_manifest

MANIFEST = "manifest.json"
FORMAT = "napari-fob-embeddings"
VERSION = 1
#: The environment variable that caps the default disk cache, in GB; 0 turns the disk half off.
CAP_ENV = "FOB_EMBEDDING_CACHE_GB"
#: The default cap: ~250 SAM 2.1 slices (16 MB each at 1024) or ~1000 SAM vit_b slices (4 MB).
DEFAULT_CAP_GB = 4.0


def default_cache(*, disk: bool = True, max_items: int = 64) -> EmbeddingCache:
    """The cache the CLI and the widget use: ``max_items`` in memory, plus (when ``disk``) a
    store per model under `paths.cache_dir` capped at ``$FOB_EMBEDDING_CACHE_GB`` (default
    `DEFAULT_CAP_GB`; 0 keeps memory only).

    Raises:
        ValueError: ``$FOB_EMBEDDING_CACHE_GB`` is not a number >= 0.
    """
    cap_gb = paths.size_from_env(CAP_ENV, DEFAULT_CAP_GB, unit="GB", zero="no disk cache")
    if not disk or cap_gb == 0:
        return EmbeddingCache(max_items=max_items)
    return EmbeddingCache(
        max_items=max_items, disk_root=paths.cache_dir(), max_disk_bytes=int(cap_gb * 1e9)
    )


def store_name(model_id: str) -> str:
    """The folder name of ``model_id``'s store under a root: readable, unique, path-safe."""
    readable = re.sub(r"[^A-Za-z0-9._+-]", "_", model_id)[:60]
    return f"{readable}-{hashlib.blake2b(model_id.encode(), digest_size=4).hexdigest()}"


def array_signature(array: np.ndarray) -> str:
    """A content hash of an array (bytes, dtype and shape); 32 hex characters.

    Args:
        array: any array, e.g. a raw (H, W) slice of any dtype.
    """
    arr = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def embedding_key(
    data_hash: str,
    window: Mapping[str, Any] | Any,
    model_id: str,
    input_size: int | tuple[int, ...],
) -> str:
    """The cache key of one embedding; 32 hex characters.

    Args:
        data_hash: `array_signature` of the raw slice.
        window: the intensity window (an `intensity.Window` or its ``to_dict()``); only ``low``
            and ``high`` matter (the preset name that produced them does not change the input).
        model_id: the model's identity, e.g. ``"sam-vit_b:ec2df6273261"`` (type + weights hash).
        input_size: the model's input size (SAM: the encoder's ``img_size``, 1024).
    """
    win = window.to_dict() if hasattr(window, "to_dict") else dict(window)
    parts = {
        "data": str(data_hash),
        "window": [round(float(win["low"]), 6), round(float(win["high"]), 6)],
        "model": str(model_id),
        "input_size": list(np.atleast_1d(input_size).astype(int).tolist()),
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# every way a damaged .npz fails to read (zip index, member data, deflate stream, missing key)
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


class EmbeddingCache:
    """Embeddings by key: an LRU of at most ``max_items`` in memory, backed by ``disk_dir``.

    A value is a dict of numpy arrays (SAM: ``features`` (1, C, E, E) float32, ``original_size``
    (2,) int = (H, W) of the slice, ``input_size`` (2,) int = (h, w) after resizing). ``meta``
    is a JSON-able dict recording what the value was computed from; it must hold ``model_id``.

    Thread-safe: a background precompute and the interactive path may share one cache.

    Args:
        max_items: how many embeddings stay in memory (SAM vit_b: 4 MiB each, SAM 2.1: 16).
        disk_dir: folder for the persistent store, created if missing; None keeps memory only.
        model_id: the model this cache is for; None binds a disk store to the first model put
            or bound, and leaves a memory-only cache open to several models.
        disk_root: instead of ``disk_dir``, a folder holding one store per model
            (`store_name`); the store of the model bound last is the one in use.
        max_disk_bytes: cap on the ``.npz`` files of the root (or of ``disk_dir``); None: no cap.

    Raises:
        ValueError: ``disk_dir`` holds a store for another model, or an unreadable manifest.
    """

    def __init__(
        self,
        *,
        max_items: int = 64,
        disk_dir: str | Path | None = None,
        model_id: str | None = None,
        disk_root: str | Path | None = None,
        max_disk_bytes: int | None = None,
    ) -> None:
        if int(max_items) < 1:
            raise ValueError(f"EmbeddingCache max_items: expected >= 1, got {max_items}")
        if disk_dir is not None and disk_root is not None:
            raise ValueError("EmbeddingCache: give disk_dir (one store) or disk_root, not both")
        if max_disk_bytes is not None and int(max_disk_bytes) < 1:
            raise ValueError(f"EmbeddingCache max_disk_bytes: expected >= 1, got {max_disk_bytes}")
        self.max_items = int(max_items)
        self.disk_dir = None if disk_dir is None else Path(disk_dir).expanduser()
        self.disk_root = None if disk_root is None else Path(disk_root).expanduser()
        self.max_disk_bytes = None if max_disk_bytes is None else int(max_disk_bytes)
        self.model_id: str | None = None
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        self.evicted = 0
        self._memory: OrderedDict[str, tuple[dict[str, np.ndarray], dict[str, Any]]] = OrderedDict()
        self._entries: dict[str, dict[str, Any]] = {}  # key -> meta of every entry on disk
        self._dropped: set[str] = set()  # keys deleted here since the manifest was last merged
        self._lock = threading.RLock()
        if self.disk_dir is not None:
            self._open_disk()
        self._pinned = model_id is not None
        if model_id is not None:
            self.bind(model_id)

    # ---- binding -------------------------------------------------------------------------
    def bind(self, model_id: str) -> None:
        """Tie the cache to ``model_id``; refuse when it already belongs to another model.

        Only a cache with a disk folder, or one created with ``model_id=``, is tied to a model;
        a plain in-memory cache may hold several models' embeddings (their keys differ), so an
        application can keep one cache while the user switches models. A cache over a
        ``disk_root`` switches to ``model_id``'s store instead (its memory keeps the others).
        """
        with self._lock:
            if self.disk_root is not None:
                if model_id != self.model_id:
                    self._switch_store(model_id)
                return
            if self.disk_dir is None and not self._pinned:
                return
            if self.model_id is not None and self.model_id != model_id:
                where = f"the folder {self.disk_dir}" if self.disk_dir else "this cache"
                raise ValueError(
                    f"embedding cache mismatch: {where} holds embeddings of model "
                    f"{self.model_id!r}, but model {model_id!r} asked to use it; use another "
                    "folder (one per model) or a new cache"
                )
            if self.model_id is None:
                self.model_id = model_id
                self._write_manifest()

    # ---- mapping-like API ----------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._memory or key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(set(self._memory) | set(self._entries))

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The value stored under ``key`` (memory first, then disk), or None; counts hit/miss."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._memory[key][0]
            if key in self._entries:
                value = self._load(key)
                if value is not None:
                    self.hits += 1
                    self.disk_hits += 1
                    with contextlib.suppress(OSError):  # recently used: evicted last
                        os.utime(self.disk_dir / f"{key}.npz")
                    self._remember(key, value, self._entries[key])
                    return value
            self.misses += 1
            return None

    def meta(self, key: str) -> dict[str, Any] | None:
        """What the entry under ``key`` was computed from, or None."""
        with self._lock:
            if key in self._memory:
                return dict(self._memory[key][1])
            return dict(self._entries[key]) if key in self._entries else None

    def put(self, key: str, value: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Store ``value`` (dict of arrays) under ``key`` with its provenance ``meta``.

        Raises:
            ValueError: ``meta`` has no ``model_id`` or names another model than the cache's.
        """
        if "model_id" not in meta:
            raise ValueError("EmbeddingCache.put: meta must record the 'model_id' it came from")
        arrays = {name: np.asarray(arr) for name, arr in value.items()}
        record = json.loads(json.dumps(dict(meta)))  # a JSON-able copy, fails early if not
        with self._lock:
            self.bind(str(meta["model_id"]))
            self._remember(key, arrays, record)
            if self.disk_dir is not None:
                path = self.disk_dir / f"{key}.npz"
                names = np.array(sorted(arrays))  # read back to find a lost member
                atomic.write_bytes(
                    path, lambda f: np.savez(f, __key__=np.array(key), __arrays__=names, **arrays)
                )
                self._entries[key] = record
                self._write_manifest()
                self._enforce_cap(keep=path)

    def stats(self) -> dict[str, int]:
        """Counters: hits (all), disk_hits (hits read from disk), misses, in_memory, on_disk
        (entries of the store in use), evicted (entries the size cap deleted)."""
        with self._lock:
            return {
                "hits": self.hits,
                "disk_hits": self.disk_hits,
                "misses": self.misses,
                "in_memory": len(self._memory),
                "on_disk": len(self._entries),
                "evicted": self.evicted,
            }

    # ---- internals -----------------------------------------------------------------------
    def _remember(self, key: str, value: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self._memory[key] = (value, meta)
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)

    def _switch_store(self, model_id: str) -> None:
        assert self.disk_root is not None
        self.disk_dir = self.disk_root / store_name(model_id)
        self.model_id, self._entries = None, {}
        self._open_disk()
        if self.model_id not in (None, model_id):  # a renamed folder: refuse, never mix
            raise ValueError(
                f"embedding cache mismatch: the folder {self.disk_dir} holds embeddings of "
                f"model {self.model_id!r}, not {model_id!r}; delete or move it"
            )
        self.model_id = model_id
        self._write_manifest()

    def _enforce_cap(self, *, keep: Path) -> None:
        """Delete the least recently used ``.npz`` files until the store (root) fits the cap."""
        if self.max_disk_bytes is None or self.disk_dir is None:
            return
        pattern = "*/*.npz" if self.disk_root is not None else "*.npz"
        files = []
        for path in (self.disk_root or self.disk_dir).glob(pattern):
            with contextlib.suppress(OSError):  # removed meanwhile by another process
                info = path.stat()
                files.append((info.st_mtime_ns, info.st_size, path))
        total = sum(size for _, size, _ in files)
        victims: dict[Path, list[str]] = {}
        for _, size, path in sorted(files, key=lambda f: (f[0], str(f[2]))):
            if total <= self.max_disk_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size
            victims.setdefault(path.parent, []).append(path.stem)
        for folder, keys in victims.items():
            self.evicted += len(keys)
            if folder == self.disk_dir:
                for key in keys:
                    self._entries.pop(key, None)
                self._dropped.update(keys)
                self._write_manifest()
            else:
                cache_manifest.drop(folder / MANIFEST, keys)

    def _open_disk(self) -> None:
        assert self.disk_dir is not None
        self.disk_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.disk_dir / MANIFEST
        if not manifest.exists():
            return
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as err:  # damaged (a crash, a full disk): start
            aside = manifest.with_name(f"{MANIFEST}.damaged")  # afresh, recomputing as needed
            with contextlib.suppress(OSError):
                manifest.replace(aside)
            warnings.warn(f"embedding cache {manifest}: unreadable ({err}); set aside as "
                          f"{aside.name}, embeddings are recomputed", stacklevel=3)  # fmt: skip
            return
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(
                f"embedding cache {manifest}: expected format {FORMAT!r} version {VERSION}, "
                f"got {data.get('format')!r} version {data.get('version')!r}"
            )
        self.model_id = data.get("model_id")
        self._entries = dict(data.get("entries", {}))

    def _load(self, key: str) -> dict[str, np.ndarray] | None:
        assert self.disk_dir is not None
        path = self.disk_dir / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            stored = str(arrays.pop("__key__", ""))
            if stored != key:
                raise ValueError(f"file holds key {stored!r}, expected {key!r}")
            lost = sorted(set(arrays.pop("__arrays__", np.array([])).tolist()) - set(arrays))
            if lost:
                raise KeyError(f"arrays {lost} missing")
        except READ_ERRORS as err:
            # A lost or damaged file only costs a recomputation; say so rather than hide it.
            warnings.warn(
                f"embedding cache: dropping entry {path} ({type(err).__name__}: {err})",
                stacklevel=3,
            )
            self._entries.pop(key, None)
            self._dropped.add(key)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            self._write_manifest()
            return None
        return arrays

    def _write_manifest(self) -> None:
        """Merge this process's entries into the manifest on disk (`cache_manifest`), and take
        in the entries other processes added meanwhile."""
        if self.disk_dir is None:
            return
        header = {"format": FORMAT, "version": VERSION, "model_id": self.model_id}
        self._entries = cache_manifest.merge_write(
            self.disk_dir / MANIFEST, header, self._entries, self._dropped
        )
        self._dropped.clear()
