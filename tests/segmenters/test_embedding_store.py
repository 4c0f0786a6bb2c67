"""The embedding cache as the CLI and the widget use it: a root folder with one store per model,
the size cap's least-recently-used eviction, the default cache's switch, and the widget's cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from napari_fob.core import paths
from napari_fob.segmenters.cache import EmbeddingCache, default_cache, store_name

MIB = 2**20


def _value(seed: int) -> dict[str, np.ndarray]:
    """About 1 MiB of float32, like a (tiny) embedding."""
    rng = np.random.default_rng(seed)
    return {"features": rng.normal(size=(1, 64, 64, 64)).astype(np.float32)}


def _meta(model: str) -> dict:
    return {"model_id": model, "window": {"low": 0.0, "high": 1.0}}


def _age(path, seconds_ago: float) -> None:
    stamp = path.stat().st_mtime - seconds_ago
    os.utime(path, (stamp, stamp))


def test_one_store_per_model_under_the_root_and_switching_keeps_both(tmp_path):
    cache = EmbeddingCache(max_items=1, disk_root=tmp_path)
    cache.put("a", _value(0), _meta("sam-vit_b:111"))
    cache.put("b", _value(1), _meta("sam2.1-hiera_t-1024:222"))  # the user switched model
    stores = sorted(p.name for p in tmp_path.iterdir())
    assert stores == sorted([store_name("sam-vit_b:111"), store_name("sam2.1-hiera_t-1024:222")])
    for model in ("sam-vit_b:111", "sam2.1-hiera_t-1024:222"):
        manifest = json.loads((tmp_path / store_name(model) / "manifest.json").read_text())
        assert manifest["model_id"] == model
    reopened = EmbeddingCache(disk_root=tmp_path, model_id="sam-vit_b:111")
    np.testing.assert_array_equal(reopened.get("a")["features"], _value(0)["features"])
    assert reopened.get("b") is None  # another model's store is not this one's
    reopened.bind("sam2.1-hiera_t-1024:222")
    assert reopened.get("b") is not None and reopened.stats()["disk_hits"] == 2
    with pytest.raises(ValueError, match="disk_dir.*disk_root"):
        EmbeddingCache(disk_dir=tmp_path / "x", disk_root=tmp_path)


def test_the_cap_evicts_the_least_recently_used_entries_of_any_store(tmp_path):
    cache = EmbeddingCache(max_items=1, disk_root=tmp_path / "root", max_disk_bytes=int(2.5 * MIB))
    cache.put("a", _value(0), _meta("m1"))
    cache.put("b", _value(1), _meta("m1"))
    store = tmp_path / "root" / store_name("m1")
    _age(store / "a.npz", 20)
    _age(store / "b.npz", 10)
    assert cache.get("a") is not None  # read from disk: now the most recently used
    cache.put("c", _value(2), _meta("m1"))  # over 2.5 MiB: b, the least recently used, goes
    assert sorted(p.stem for p in store.glob("*.npz")) == ["a", "c"]
    assert "b" not in cache and cache.stats()["evicted"] == 1
    manifest = json.loads((store / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == ["a", "c"]
    _age(store / "a.npz", 30)
    cache.put("d", _value(3), _meta("m2"))  # another model's write evicts m1's oldest entry
    assert sorted(p.stem for p in store.glob("*.npz")) == ["c"]
    assert sorted(json.loads((store / "manifest.json").read_text())["entries"]) == ["c"]
    cache.bind("m1")
    assert cache.get("a") is None and cache.get("c") is not None  # evicted: a plain miss


def test_default_cache_lives_in_the_cache_folder_and_can_be_turned_off(monkeypatch):
    cache = default_cache()
    assert cache.disk_root == paths.cache_dir() and cache.max_disk_bytes == 4 * 10**9
    monkeypatch.setenv("FOB_EMBEDDING_CACHE_GB", "0.5")
    assert default_cache().max_disk_bytes == 5 * 10**8
    assert default_cache(disk=False).disk_root is None
    monkeypatch.setenv("FOB_EMBEDDING_CACHE_GB", "0")
    assert default_cache().disk_root is None and default_cache().disk_dir is None
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv("FOB_EMBEDDING_CACHE_GB", bad)
        with pytest.raises(ValueError, match="FOB_EMBEDDING_CACHE_GB"):
            default_cache()


def test_the_widget_keeps_its_embeddings_in_the_cache_folder():
    from napari_fob._widgets.backends import BackendChoice
    from napari_fob._widgets.session_glue import SessionGlue

    glue = SessionGlue(hooks=None, controls=None)
    list(glue.load_backends(BackendChoice(prompts="mask-ring", segmenter="random-walker")))
    assert glue.cache.disk_root == paths.cache_dir()
    assert glue.segmenter.name == "random-walker"
