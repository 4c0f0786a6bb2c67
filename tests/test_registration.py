"""The registration prompt generator: follows moving / shrinking structures, caches its walks,
is in the registry (``fob segment --prompts registration``: tests/commands/test_segment.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_fob.core.intensity import normalise, resolve_window
from napari_fob.core.metrics import prompt_metrics
from napari_fob.prompting.generators import GENERATORS, PromptGenerator, make_generator
from napari_fob.prompting.registration import RegistrationGenerator, register_step


def drifting_disk(z_count: int = 21, size: int = 96):
    """A bright disk on a textured background that drifts 1.5 / 1 px a slice and shrinks."""
    rng = np.random.default_rng(0)
    texture = np.clip(0.3 + 0.6 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 2), 0, 1)
    rr, cc = np.mgrid[:size, :size]
    vol = np.zeros((z_count, size, size), np.float32)
    mask = np.zeros(vol.shape, bool)
    mid = z_count // 2
    for z in range(z_count):
        d = z - mid
        m = (rr - 48 - 1.5 * d) ** 2 + (cc - 48 - 1.0 * d) ** 2 <= (16 - 0.6 * abs(d)) ** 2
        mask[z] = m
        vol[z] = np.where(m, 0.8, texture) + rng.normal(0, 0.02, (size, size))
    return np.clip(vol, 0, 1).astype(np.float32), mask, mid


def far_means(name: str, vol01, truth, zc, queries, key="ring_error") -> float:
    gen = make_generator(name)
    gen.set_support(vol01[zc], truth[zc], slice_index=zc)
    out = gen.predict([vol01[z] for z in queries], slice_indices=list(queries))
    vals = [prompt_metrics(p, truth[z])[key] for z, p in zip(queries, out) if abs(z - zc) >= 5]
    return float(np.nanmean(vals))


def test_registry_lists_it_and_it_follows_the_protocol():
    assert "registration" in GENERATORS
    gen = make_generator("registration")
    assert isinstance(gen, RegistrationGenerator) and isinstance(gen, PromptGenerator)
    info = gen.describe()
    assert info["kind"] == "registration" and info["flow_radius"] == 7
    json.dumps(info)


def test_follows_a_drifting_shrinking_disk_better_than_mask_ring():
    vol, truth, zc = drifting_disk()
    queries = [z for z in range(len(vol)) if z != zc]
    reg = far_means("registration", vol, truth, zc, queries)
    ring = far_means("mask-ring", vol, truth, zc, queries)
    assert reg < 3.0 and ring > 15.0, (reg, ring)
    assert far_means("registration", vol, truth, zc, queries, "bg_inside") == 0.0
    assert far_means("mask-ring", vol, truth, zc, queries, "bg_inside") > 0.05


def test_follows_the_phantom_kidneys_better_than_mask_ring():
    from napari_fob.samples.phantom import make_abdomen_phantom

    image, labels, names = make_abdomen_phantom(seed=0, shape=(24, 96, 96), spacing=(6, 2.5, 2.5))
    vol = normalise(image, resolve_window(image, "ct-abdomen"))
    for label in (3, 4):  # the kidneys: they move and shrink across the slices
        truth = labels == label
        zs = np.nonzero(truth.any(axis=(1, 2)))[0]
        zc = int(np.round(np.nonzero(truth)[0].mean()))
        queries = [int(z) for z in zs if z != zc]
        reg = far_means("registration", vol, truth, zc, queries)
        ring = far_means("mask-ring", vol, truth, zc, queries)
        assert reg < 0.6 * ring, (names[label], reg, ring)


def test_walks_extend_across_calls_and_the_support_keeps_its_points():
    vol, truth, zc = drifting_disk()
    one = make_generator("registration")
    one.set_support(vol[zc], truth[zc], slice_index=zc)
    up = list(range(zc + 1, len(vol)))
    together = one.predict([vol[z] for z in up], slice_indices=up)
    apart = make_generator("registration")
    apart.set_support(vol[zc], truth[zc], slice_index=zc)
    for start in range(0, len(up), 3):  # outward batches, as the session's walk asks
        batch = up[start : start + 3]
        for z, p in zip(batch, apart.predict([vol[z] for z in batch], slice_indices=batch)):
            q = together[up.index(z)]
            assert np.allclose(p.bg, q.bg) and np.allclose(p.fg, q.fg)
    assert all(p.origin == "registration" and 0.0 <= p.evidence <= 1.0 for p in together)
    [same] = one.predict([vol[zc]], slice_indices=[zc])
    ring = make_generator("mask-ring")
    ring.set_support(vol[zc], truth[zc], slice_index=zc)
    [ref] = ring.predict([vol[zc]], slice_indices=[zc])
    assert np.allclose(same.bg, ref.bg) and np.allclose(same.fg, ref.fg)
    one.clear_supports()
    with pytest.raises(ValueError, match="before set_support"):
        one.predict([vol[0]], slice_indices=[0])


def test_register_step_moves_the_mask_with_the_image():
    vol, truth, zc = drifting_disk()
    moved = register_step(vol[zc], vol[zc + 2], truth[zc])
    dice = 2 * (moved & truth[zc + 2]).sum() / (moved.sum() + truth[zc + 2].sum())
    assert dice > 0.9
    assert not register_step(vol[zc], vol[zc + 1], np.zeros_like(truth[zc])).any()


def test_shape_mismatch_is_refused():
    vol, truth, zc = drifting_disk()
    gen = make_generator("registration")
    gen.set_support(vol[zc], truth[zc], slice_index=zc)
    with pytest.raises(ValueError, match="shape"):
        gen.predict([vol[0][:50]], slice_indices=[0])


def test_a_registration_step_is_estimated_once_for_equal_inputs():
    """Two generators walking the same support through the same slices share each flow
    (FoB's registration prior and the baseline do); the served mask is the computed one,
    and editing it does not change what the memo serves next."""
    from napari_fob.prompting.registration import FLOWS, FlowMemo

    vol, truth, zc = drifting_disk()
    FLOWS.clear()
    first = register_step(vol[zc], vol[zc + 2], truth[zc])
    assert (FLOWS.hits, FLOWS.misses) == (0, 1)
    again = register_step(vol[zc], vol[zc + 2], truth[zc])
    assert (FLOWS.hits, FLOWS.misses) == (1, 1)
    np.testing.assert_array_equal(first, again)
    again[:] = False
    np.testing.assert_array_equal(register_step(vol[zc], vol[zc + 2], truth[zc]), first)
    register_step(vol[zc], vol[zc + 2], truth[zc], radius=5)  # other parameters: a new step
    assert FLOWS.misses == 2
    small = FlowMemo(max_bytes=first.size // 8 + 1)  # room for one packed mask
    small.put(b"a", first)
    small.put(b"b", first)
    assert small.get(b"a") is None and small.get(b"b") is not None
