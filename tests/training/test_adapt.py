"""Adapting FoB to one scan (`training.adapt`) and its cache (`training.adapt_cache`).

A tiny, randomly initialised FoB built from the real classes and a small abdomen phantom keep
every test to a few seconds; the budgets are generous and ``max_steps`` fixes the step count
wherever the test is about the weights, not the clock.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from napari_fob.core.intensity import normalise, resolve_window
from napari_fob.model import build_fob
from napari_fob.samples import support_from_labels
from napari_fob.samples.phantom import make_abdomen_phantom
from napari_fob.training.adapt import (
    AdaptSettings,
    adapt_cached,
    adapt_model,
    adapted_generator,
    model_identity,
)
from napari_fob.training.adapt_cache import CAP_ENV, AdaptCache, cap_bytes

SPACING = (2.5, 1.5, 1.5)


@pytest.fixture(scope="module")
def scan():
    """(volume01 (Z, Y, X) in [0, 1], support of the liver (label 1) on one slice)."""
    image, labels, _ = make_abdomen_phantom(seed=3, shape=(20, 80, 80), spacing=SPACING)
    volume01 = normalise(image, resolve_window(image, "ct-abdomen"))
    support = support_from_labels(labels)
    return volume01, np.where(support == 1, 1, 0).astype(np.int32)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_fob("tiny").eval()


def states_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a) and set(a) == set(b)


def run(model, scan, **settings):
    volume01, support = scan
    options = {"seconds": 60.0, "max_steps": 3, **settings}
    return adapt_model(model, volume01, support, spacing=SPACING,
                       settings=AdaptSettings(**options))  # fmt: skip


def test_adaptation_changes_the_weights_of_a_copy_and_records_the_run(model, scan):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run(model, scan)
    assert states_equal(model.state_dict(), before)  # the loaded model is left as it was
    changed = [k for k in before if not torch.equal(before[k], result.state[k])]
    assert any("weight" in k for k in changed)
    record = result.record
    assert record["steps"] == 3 and not record["cancelled"]
    assert record["episodes"] == {"supervoxels": True, "support": True}
    assert np.isfinite(record["loss_first"]) and np.isfinite(record["loss_last"])


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(model, scan):
    torch.manual_seed(123)
    outside = torch.rand(1)
    a = run(model, scan, seed=5)
    b = run(model, scan, seed=5)
    c = run(model, scan, seed=6)
    assert states_equal(a.state, b.state)
    assert not states_equal(a.state, c.state)
    torch.manual_seed(123)  # the caller's torch RNG is restored after the run
    assert torch.equal(torch.rand(1), outside)


def test_the_steps_run_on_one_thread_and_the_callers_threads_come_back(model, scan):
    before = torch.get_num_threads()
    seen = []
    volume01, support = scan
    adapt_model(
        model, volume01, support, spacing=SPACING, settings=AdaptSettings(seconds=60, max_steps=2),
        progress=lambda *_: seen.append(torch.get_num_threads()),
    )  # fmt: skip
    assert seen[-1] == 1 and torch.get_num_threads() == before


def test_the_budget_stops_the_run(model, scan):
    volume01, support = scan
    result = adapt_model(
        model, volume01, support, spacing=SPACING, settings=AdaptSettings(seconds=3.0)
    )  # no max_steps: the clock stops it
    assert result.record["steps"] >= 1 and result.record["budget_s"] == 3.0
    assert not result.cancelled


def test_a_budget_spent_preparing_is_an_error_and_never_cached(model, scan, tmp_path):
    """No optimiser step ran (the preparation took the whole budget): said, not stored as an
    adaptation that would be served for that budget ever after; cancelled while preparing is
    a cancellation, not an error."""
    volume01, support = scan
    cache = AdaptCache(tmp_path / "cache", max_bytes=10**9)
    with pytest.raises(ValueError, match=r"spent preparing .* no step ran"):
        adapt_cached(model, volume01, support, spacing=SPACING,
                     settings=AdaptSettings(seconds=0.001), cache=cache)  # fmt: skip
    done = threading.Event()
    done.set()
    result = adapt_cached(model, volume01, support, spacing=SPACING,
                          settings=AdaptSettings(seconds=60), cache=cache, cancel=done)  # fmt: skip
    assert result.cancelled and result.record["steps"] == 0
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_cancel_stops_the_run_and_is_never_cached(model, scan, tmp_path):
    volume01, support = scan
    cancel = threading.Event()

    def progress(elapsed, total, n, loss):
        if n >= 2:
            cancel.set()

    cache = AdaptCache(tmp_path / "cache", max_bytes=10**9)
    result = adapt_cached(
        model, volume01, support, spacing=SPACING, settings=AdaptSettings(seconds=600),
        cache=cache, progress=progress, cancel=cancel,
    )  # fmt: skip
    assert result.cancelled and result.record["steps"] == 2
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_a_rerun_on_the_same_scan_is_a_cache_hit(model, scan, tmp_path):
    volume01, support = scan
    settings = AdaptSettings(seconds=60, max_steps=2)
    cache = AdaptCache(tmp_path / "cache", max_bytes=10**9)
    kwargs = {"spacing": SPACING, "settings": settings, "cache": cache}
    first = adapt_cached(model, volume01, support, **kwargs)
    again = adapt_cached(model, volume01, support, **kwargs)
    assert not first.record["cache_hit"] and again.record["cache_hit"]
    assert again.record["steps"] == 2 and again.record["base_id"] == model_identity(model)
    assert states_equal(first.state, again.state)
    moved = np.roll(support, 1, axis=0)  # another support: another key
    assert not adapt_cached(model, volume01, moved, **kwargs).record["cache_hit"]
    longer = {**kwargs, "settings": AdaptSettings(seconds=61, max_steps=2)}  # another budget
    assert not adapt_cached(model, volume01, support, **longer).record["cache_hit"]


def test_the_default_cache_lives_in_the_cache_folder(model, scan):
    from napari_fob.core import paths

    volume01, support = scan
    settings = AdaptSettings(seconds=60, max_steps=1)
    adapt_cached(model, volume01, support, spacing=SPACING, settings=settings)
    assert len(list((paths.cache_dir() / "adapted-fob").glob("*.pt"))) == 1
    hit = adapt_cached(model, volume01, support, spacing=SPACING, settings=settings)
    assert hit.record["cache_hit"]


def test_the_cap_evicts_the_least_recently_used_entry(model, tmp_path):
    state = model.state_dict()
    probe = AdaptCache(tmp_path / "probe", max_bytes=10**9)
    size = probe.put("k0", state, {"steps": 1}).stat().st_size
    cache = AdaptCache(tmp_path / "cache", max_bytes=int(2.5 * size))
    for key in ("a", "b"):
        cache.put(key, state, {"steps": 1})
        time.sleep(0.02)  # distinct modification times
    assert cache.get("a") is not None  # used: "b" is now the oldest
    time.sleep(0.02)
    cache.put("c", state, {"steps": 1})
    kept = sorted(p.stem for p in (tmp_path / "cache").glob("*.pt"))
    assert kept == ["a", "c"] and cache.evicted == 1


def test_a_damaged_entry_is_set_aside_and_recomputed(model, scan, tmp_path):
    volume01, support = scan
    cache = AdaptCache(tmp_path / "cache", max_bytes=10**9)
    kwargs = {"spacing": SPACING, "settings": AdaptSettings(seconds=60, max_steps=1)}
    first = adapt_cached(model, volume01, support, cache=cache, **kwargs)
    path = cache.path(first.record["key"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="set aside"):
        again = adapt_cached(model, volume01, support, cache=cache, **kwargs)
    assert not again.record["cache_hit"]
    assert path.with_name(path.name + ".damaged").exists() and path.exists()
    assert adapt_cached(model, volume01, support, cache=cache, **kwargs).record["cache_hit"]


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(CAP_ENV, "12.5")
    assert cap_bytes() == 12_500_000
    monkeypatch.setenv(CAP_ENV, "0")
    assert not AdaptCache().enabled
    monkeypatch.setenv(CAP_ENV, "lots")
    with pytest.raises(ValueError, match=CAP_ENV):
        cap_bytes()


def test_bad_inputs_are_refused(model, scan):
    volume01, support = scan
    with pytest.raises(ValueError, match="seconds > 0"):
        AdaptSettings(seconds=0)
    with pytest.raises(ValueError, match="no voxel"):
        adapt_model(model, volume01, np.zeros_like(support), settings=AdaptSettings(seconds=5))
    with pytest.raises(ValueError, match="one \\(Z, Y, X\\) grid"):
        adapt_model(model, volume01, support[:-1], settings=AdaptSettings(seconds=5))
    with torch.device("meta"):  # the authors' network: their own inference, nothing to adapt
        official = build_fob("official")
    with pytest.raises(ValueError, match="cannot adapt"):
        adapt_model(official, volume01, support, settings=AdaptSettings(seconds=5))


def test_the_adapted_generator_predicts_and_says_how_it_was_made(model, scan):
    from napari_fob.prompting.generators import make_generator

    volume01, support = scan
    base = make_generator("fob", model=model, device="cpu")
    result = run(model, scan, max_steps=1)
    adapted = adapted_generator(base, result)
    described = adapted.describe()
    assert described["adaptation"]["steps"] == 1
    assert described["prior_source"] == base.describe()["prior_source"]
    assert states_equal(adapted.predictor.model.state_dict(), result.state)
    z = int(np.flatnonzero(support.any(axis=(1, 2)))[0])
    adapted.set_support(volume01[z], support[z] == 1, slice_index=z)
    (prompts,) = adapted.predict([volume01[z + 1]], slice_indices=[z + 1])
    assert len(prompts.bg) == model.config.n_bg


def test_snapshots_are_the_weights_of_shorter_runs(model, scan):
    volume01, support = scan
    settings = AdaptSettings(seconds=600, max_steps=4)
    long = adapt_model(model, volume01, support, spacing=SPACING, settings=settings,
                       snapshots=(1e-9, 1e4))  # fmt: skip
    assert long.record["snapshot_steps"] == {"1e-09": 0, "10000": 4}
    assert states_equal(long.snapshots[1e4], long.state)
    assert states_equal(long.snapshots[1e-9], model.state_dict())  # stopped before step 1


def test_by_default_only_the_ring_modules_adapt(model, scan):
    before = model.state_dict()
    heads = run(model, scan).state
    assert all(torch.equal(before[k], heads[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], heads[k]) for k in before if k.startswith("bcm."))
    every = run(model, scan, trainable=None).state
    assert any(not torch.equal(before[k], every[k]) for k in before if k.startswith("encoder."))
