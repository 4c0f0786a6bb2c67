"""EmbeddingCache: LRU, disk persistence, provenance, refusal of another model's store."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from napari_fob.core.intensity import Window
from napari_fob.segmenters.cache import EmbeddingCache, array_signature, embedding_key


def _value(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.normal(size=(1, 4, 2, 2)).astype(np.float32),
        "original_size": np.array([10, 12]),
        "input_size": np.array([64, 53]),
    }


def _meta(model: str = "m1") -> dict:
    return {"model_id": model, "window": {"low": 0.0, "high": 1.0}}


def test_array_signature_depends_on_bytes_dtype_and_shape():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert array_signature(a) == array_signature(a.copy())
    assert array_signature(a) != array_signature(a.reshape(4, 3))
    assert array_signature(a) != array_signature(a.astype(np.float64))
    b = a.copy()
    b[0, 0] += 1
    assert array_signature(a) != array_signature(b)
    assert array_signature(a[:, ::2]) == array_signature(np.ascontiguousarray(a[:, ::2]))


def test_embedding_key_changes_with_each_part():
    base = embedding_key("d", Window(0, 1), "m", 1024)
    assert base == embedding_key("d", {"low": 0.0, "high": 1.0, "source": "x"}, "m", 1024)
    assert base != embedding_key("d2", Window(0, 1), "m", 1024)
    assert base != embedding_key("d", Window(0, 2), "m", 1024)
    assert base != embedding_key("d", Window(0, 1), "m2", 1024)
    assert base != embedding_key("d", Window(0, 1), "m", 512)


def test_memory_lru_hits_misses_and_eviction():
    cache = EmbeddingCache(max_items=2)
    assert cache.get("a") is None
    cache.put("a", _value(0), _meta())
    cache.put("b", _value(1), _meta())
    assert cache.get("a") is not None  # a becomes most recent
    cache.put("c", _value(2), _meta())  # evicts b, the least recently used
    assert "b" not in cache and "a" in cache and "c" in cache
    np.testing.assert_array_equal(cache.get("c")["features"], _value(2)["features"])
    assert cache.stats() == {
        "hits": 2,
        "disk_hits": 0,
        "misses": 1,
        "in_memory": 2,
        "on_disk": 0,
        "evicted": 0,
    }


def test_disk_store_persists_across_instances(tmp_path):
    first = EmbeddingCache(max_items=1, disk_dir=tmp_path / "emb")
    first.put("a", _value(0), _meta())
    first.put("b", _value(1), _meta())  # "a" leaves memory but stays on disk
    assert first.get("a") is not None and first.disk_hits == 1
    second = EmbeddingCache(disk_dir=tmp_path / "emb")
    assert second.model_id == "m1" and len(second) == 2
    got = second.get("b")
    np.testing.assert_array_equal(got["features"], _value(1)["features"])
    np.testing.assert_array_equal(got["input_size"], [64, 53])
    assert second.meta("b")["window"] == {"low": 0.0, "high": 1.0}
    assert second.stats()["disk_hits"] == 1
    manifest = json.loads((tmp_path / "emb" / "manifest.json").read_text())
    assert manifest["model_id"] == "m1" and set(manifest["entries"]) == {"a", "b"}
    assert not list((tmp_path / "emb").glob("*.tmp"))  # atomic writes leave no temp files


def test_refuses_a_store_of_another_model(tmp_path):
    EmbeddingCache(disk_dir=tmp_path).put("a", _value(0), _meta("sam-vit_b:111"))
    with pytest.raises(ValueError, match=r"sam-vit_b:111.*sam-vit_h:222"):
        EmbeddingCache(disk_dir=tmp_path, model_id="sam-vit_h:222")
    cache = EmbeddingCache(disk_dir=tmp_path)
    with pytest.raises(ValueError, match="sam-vit_h:222"):
        cache.put("b", _value(1), _meta("sam-vit_h:222"))
    with pytest.raises(ValueError, match="model_id"):
        cache.put("c", _value(1), {"window": None})


def test_refuses_a_foreign_manifest_and_a_swapped_file(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text('{"format": "other", "version": 9}')
    with pytest.raises(ValueError, match="format"):
        EmbeddingCache(disk_dir=tmp_path / "bad")
    cache = EmbeddingCache(disk_dir=tmp_path / "ok")
    cache.put("a", _value(0), _meta())
    cache.put("b", _value(1), _meta())
    (tmp_path / "ok" / "a.npz").replace(tmp_path / "ok" / "b.npz")  # b's file now holds a
    fresh = EmbeddingCache(disk_dir=tmp_path / "ok")
    with pytest.warns(UserWarning, match="holds key 'a'"):  # a misplaced file: recomputed
        assert fresh.get("b") is None
    assert "b" not in fresh


def test_lost_file_is_a_warned_miss(tmp_path):
    cache = EmbeddingCache(disk_dir=tmp_path)
    cache.put("a", _value(0), _meta())
    (tmp_path / "a.npz").unlink()
    fresh = EmbeddingCache(disk_dir=tmp_path)
    with pytest.warns(UserWarning, match="dropping entry"):
        assert fresh.get("a") is None
    assert "a" not in fresh and fresh.misses == 1


def test_memory_only_cache_may_serve_several_models_unless_pinned():
    cache = EmbeddingCache()
    cache.put("a", _value(0), _meta("m1"))
    cache.put("b", _value(1), _meta("m2"))  # e.g. the user switched SAM model in the viewer
    assert cache.meta("b")["model_id"] == "m2" and cache.model_id is None
    pinned = EmbeddingCache(model_id="m1")
    with pytest.raises(ValueError, match="m1.*m2"):
        pinned.put("b", _value(1), _meta("m2"))


def test_bad_max_items():
    with pytest.raises(ValueError, match="max_items"):
        EmbeddingCache(max_items=0)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    for i in range(40, len(data), max(1, len(data) // 50)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _strip_member(path):
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist() if n != "features.npy"}
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        _flip,
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 30),
        lambda p: p.write_text("not a zip"),
        _strip_member,
    ],
    ids=["truncated", "bit-flipped", "empty", "bad-zip-header", "text", "missing-array"],
)
def test_a_damaged_entry_is_dropped_and_recomputed(tmp_path, damage):
    cache = EmbeddingCache(disk_dir=tmp_path)
    cache.put("a", _value(0), _meta())
    damage(tmp_path / "a.npz")
    fresh = EmbeddingCache(disk_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fresh.get("a")
    assert value is None
    assert any("dropping entry" in str(w.message) for w in caught)
    assert "a" not in fresh and fresh.misses == 1
    fresh.put("a", _value(0), _meta())  # the recomputation is stored again and read back
    again = EmbeddingCache(disk_dir=tmp_path).get("a")
    assert np.array_equal(again["features"], _value(0)["features"])


def test_cache_files_follow_the_umask(tmp_path):
    import os

    cache = EmbeddingCache(disk_dir=tmp_path)
    cache.put("a", _value(0), _meta())
    expected = 0o666 & ~_current_umask()
    for name in ("a.npz", "manifest.json"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == expected


def _current_umask() -> int:
    """The umask as the kernel applies it (a probe file), without calling os.umask."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        probe = os.path.join(d, "probe")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT, 0o666))
        return 0o666 & ~os.stat(probe).st_mode & 0o777


def test_a_damaged_manifest_is_set_aside_and_costs_a_recomputation(tmp_path):
    cache = EmbeddingCache(disk_dir=tmp_path)
    cache.put("a", _value(0), _meta())
    (tmp_path / "manifest.json").write_text('{"format": "napari-fob-embed')  # cut short
    with pytest.warns(UserWarning, match="unreadable"):
        fresh = EmbeddingCache(disk_dir=tmp_path)
    assert "a" not in fresh and (tmp_path / "manifest.json.damaged").is_file()
    fresh.put("a", _value(0), _meta())  # recomputed and stored again
    assert "a" in EmbeddingCache(disk_dir=tmp_path)


def _writer(folder, rank, count, start):
    """One process of `test_processes_sharing_a_store_keep_each_others_entries`."""
    cache = EmbeddingCache(disk_dir=folder, model_id="m")
    start.wait()
    for i in range(count):
        cache.put(f"r{rank}-{i}", {"features": np.full((4, 4), rank * 100 + i)}, {"model_id": "m"})


def test_processes_sharing_a_store_keep_each_others_entries(tmp_path):
    """Two processes writing one store at once (torchrun ranks over one cache folder): every
    entry of both is in the manifest afterwards and served by a new cache; each writer also
    sees the other's entries. Before the manifest was merged, each rank wrote back only its own
    view and the entries of the other were lost (their files still counted by the cap)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(tmp_path, r, 40, start)) for r in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    fresh = EmbeddingCache(disk_dir=tmp_path, model_id="m")
    assert len(fresh) == 80
    assert int(fresh.get("r2-39")["features"][0, 0]) == 239
    assert sorted(json.loads((tmp_path / "manifest.json").read_text())["entries"]) == sorted(
        f"r{r}-{i}" for r in (1, 2) for i in range(40)
    )
    late = EmbeddingCache(disk_dir=tmp_path, model_id="m")  # opened, then another writes
    fresh.put("new", {"features": np.zeros(2)}, {"model_id": "m"})
    late.put("late", {"features": np.ones(2)}, {"model_id": "m"})
    assert "new" in late and len(late) == 82
