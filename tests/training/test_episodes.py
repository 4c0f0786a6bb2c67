"""Episodic dataset and sampler: shapes, determinism, sharding, exclusion settings, skips."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.training.augment import AugmentConfig
from napari_fob.training.episodes import (
    EpisodeConfig,
    EpisodeDataset,
    EpisodeSampler,
    excluded_slices,
)
from napari_fob.training.manifest import TrainVolume

S = 64


def config(**kw) -> EpisodeConfig:
    base = dict(grid_size=S, n_points=10, ring_r=6, ring_eps=2, min_area=30, label_source="gt")
    base.update(kw)
    return EpisodeConfig(**base)


def box_volume(name: str, labels: np.ndarray) -> TrainVolume:
    rng = np.random.default_rng(0)
    image = (labels > 0) * 0.5 + rng.uniform(0, 0.1, labels.shape)
    return TrainVolume(name, image.astype(np.float32), image.astype(np.float32), labels=labels)


def test_items_are_tensors_at_the_model_grid(phantom_volume):
    ds = EpisodeDataset([phantom_volume(0)], config=config(label_source="gt"))
    item = ds[3]
    assert item["support_image"].shape == (1, S, S) and item["query_image"].shape == (1, S, S)
    assert item["support_mask"].shape == (S, S) and item["query_mask"].shape == (S, S)
    assert item["support_ring"].shape == (10, 2) and item["query_ring"].shape == (10, 2)
    for key in ("support_image", "query_image"):
        assert 0.0 <= float(item[key].min()) and float(item[key].max()) <= 1.0
    assert set(np.unique(item["query_mask"].numpy())) <= {0.0, 1.0}
    assert item["query_mask"].sum() > 0
    ring = item["query_ring"].numpy()
    assert (ring >= 0).all() and (ring <= S - 1).all()
    assert item["support_z"] != item["query_z"]


def test_same_seed_and_index_give_the_identical_sample(phantom_volume):
    a = EpisodeDataset([phantom_volume(0)], config=config(seed=3))
    b = EpisodeDataset([phantom_volume(0)], config=config(seed=3))
    for index in (0, 17, 123):
        x, y = a.sample(index), b.sample(index)
        for key in x:
            assert np.array_equal(x[key], y[key]), key
    other = EpisodeDataset([phantom_volume(0)], config=config(seed=4)).sample(17)
    assert not np.array_equal(other["query_image"], a.sample(17)["query_image"])


def test_support_and_query_differ_by_at_most_max_dz_and_both_orders_occur(phantom_volume):
    ds = EpisodeDataset([phantom_volume(0)], config=config(max_dz=2))
    dz = [int(ds.sample(i)["query_z"]) - int(ds.sample(i)["support_z"]) for i in range(40)]
    assert all(1 <= abs(d) <= 2 for d in dz)
    assert min(dz) < 0 < max(dz)  # support above and below the query


def test_pairs_respect_min_area_at_the_grid():
    labels = np.zeros((4, 128, 128), np.int32)
    labels[:, 10:40, 10:40] = 1  # 900 px -> 225 px at 64
    labels[:, 80:90, 80:90] = 2  # 100 px -> 25 px at 64
    ds = EpisodeDataset([box_volume("v", labels)], config=config(min_area=100))
    assert set(ds.pairs[:, 2].tolist()) == {1}


def test_sampler_shards_indices_by_rank_and_resumes_at_a_position():
    take = lambda it, n: [next(it) for _ in range(n)]  # noqa: E731
    r0 = take(iter(EpisodeSampler(rank=0, world_size=2)), 5)
    r1 = take(iter(EpisodeSampler(rank=1, world_size=2)), 5)
    assert not set(r0) & set(r1) and sorted(r0 + r1) == list(range(10))
    assert take(iter(EpisodeSampler(rank=1, world_size=2, start=3)), 2) == r1[3:5]
    with pytest.raises(ValueError, match="rank"):
        EpisodeSampler(rank=2, world_size=2)


def test_setting_one_never_targets_test_classes(phantom_volume):
    ds = EpisodeDataset([phantom_volume(0)], config=config(test_labels=(1, 3), setting=1))
    assert set(ds.pairs[:, 2].tolist()) == {2, 4}
    assert all(int(ds.sample(i)["label"]) in (2, 4) for i in range(10))


def two_organ_volume() -> TrainVolume:
    labels = np.zeros((6, 64, 64), np.int32)
    labels[0:4, 10:25, 10:25] = 1  # test organ A on slices 0-3
    labels[2:6, 40:55, 40:55] = 2  # test organ B on slices 2-5
    labels[:, 28:38, 5:15] = 3  # training organ on every slice
    return box_volume("two", labels)


def test_excluded_slices_any_versus_all():
    labels = two_organ_volume().labels
    assert excluded_slices(labels, (1, 2), "any").tolist() == [True] * 6
    assert excluded_slices(labels, (1, 2), "all").tolist() == [False, False, True, True] + [
        False,
        False,
    ]


def test_setting_two_drops_slices_showing_test_classes():
    vol = two_organ_volume()
    cfg = dict(test_labels=(1, 2), setting=2, min_area=20)
    with pytest.raises(ValueError, match="no slice pair qualifies"):
        EpisodeDataset([vol], config=config(exclude_mode="any", **cfg))  # every slice dropped
    ds = EpisodeDataset([vol], config=config(exclude_mode="all", **cfg))
    zs = set(ds.pairs[:, 3].tolist()) | set(ds.pairs[:, 4].tolist())
    assert zs == {0, 1, 4, 5} and set(ds.pairs[:, 2].tolist()) == {3}
    no_gt = TrainVolume("p", vol.image01, vol.image_raw, pseudo=vol.labels)
    with pytest.raises(ValueError, match="Setting II needs ground-truth"):
        EpisodeDataset([no_gt], config=config(exclude_mode="any", **cfg))


def test_cross_volume_episodes_pair_the_same_class_in_two_volumes(phantom_volume):
    vols = [phantom_volume(0), phantom_volume(1)]
    ds = EpisodeDataset(vols, config=config(p_cross=1.0))
    items = [ds.sample(i) for i in range(8)]
    assert all(it["cross"] == 1 and it["volume"] != it["query_volume"] for it in items)


def test_pseudo_label_episodes_use_the_pseudo_map(phantom_volume):
    gt = phantom_volume(0)
    pseudo = np.zeros_like(gt.labels)
    pseudo[:, 20:60, 20:60] = 7
    ds = EpisodeDataset([phantom_volume(0, pseudo=pseudo)], config=config(label_source="pseudo"))
    assert set(ds.pairs[:, 2].tolist()) == {7} and int(ds.sample(0)["label"]) == 7


def test_unringable_episodes_are_skipped_and_counted():
    labels = np.zeros((3, 64, 64), np.int32)
    labels[:, 2:62, 2:62] = 1  # ring band falls outside the image: cannot be computed
    labels[:, 20:30, 20:30] = 2
    no_aug = AugmentConfig(enabled=False)
    ds = EpisodeDataset([box_volume("b", labels)], config=config(min_area=50, augment=no_aug))
    items = [ds.sample(i) for i in range(30)]
    assert all(int(it["label"]) == 2 for it in items)
    assert sum(int(it["skipped"]) for it in items) > 0
    only_bad = np.where(labels == 1, 1, 0).astype(np.int32)
    ds = EpisodeDataset([box_volume("c", only_bad)], config=config(min_area=50, augment=no_aug))
    with pytest.raises(RuntimeError, match="no valid episode"):
        ds.sample(0)


def test_shared_geometry_keeps_support_and_query_aligned():
    labels = np.zeros((6, 64, 64), np.int16)
    labels[:, 20:44, 16:40] = 1  # the same box on every slice
    vol = box_volume("box", labels)
    shared = EpisodeDataset([vol], config=config(max_dz=3, shared_geometry=True, seed=1))
    free = EpisodeDataset([vol], config=config(max_dz=3, shared_geometry=False, seed=1))
    assert shared.config.augment.enabled
    for i in range(6):
        a = shared.sample(i)
        np.testing.assert_array_equal(a["support_mask"], a["query_mask"])
        np.testing.assert_array_equal(a["support_ring"], a["query_ring"])
    pairs = [free.sample(i) for i in range(6)]  # independent draws move one of the two
    assert any(not np.array_equal(p["support_mask"], p["query_mask"]) for p in pairs)
