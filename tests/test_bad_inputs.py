"""Non-finite voxels and thresholds (issue 16, part 4): each bad input ends in a clear
ValueError or an explicit, documented handling, never silent garbage."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.core.intensity import (
    Window,
    count_nonfinite,
    looks_like_ct,
    normalise,
    resolve_window,
    to_uint8_rgb,
)
from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run
from napari_fob.session.walks import check_threshold


def volume(*, bad: float | None = None, where=(slice(None), 0, 0)) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.normal(100.0, 10.0, (6, 24, 24)).astype(np.float32)
    vol[:, 8:16, 8:16] += 200.0
    if bad is not None:
        vol[where] = bad
    return vol


def disk() -> np.ndarray:
    mask = np.zeros((24, 24), bool)
    mask[8:16, 8:16] = True
    return mask


def session(vol, window="auto") -> AnnotationSession:
    return AnnotationSession(
        vol,
        generator=MaskRingGenerator(grid_size=64, r=4),
        segmenter=RandomWalkerSegmenter(),
        window=window,
    )


def test_count_nonfinite():
    assert count_nonfinite(np.array([1.0, np.nan, np.inf, -np.inf, 2.0])) == 3
    assert count_nonfinite(np.arange(5)) == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("preset", ["auto", "mr-percentile", "full-range"])
def test_windows_ignore_non_finite_voxels(bad, preset):
    dirty = volume(bad=bad)
    got = resolve_window(dirty, preset)
    assert np.isfinite([got.low, got.high]).all() and got.high > got.low
    # the finite voxels alone give the window: the column of bad voxels changes nothing
    assert got == resolve_window(dirty[np.isfinite(dirty)], preset)


def test_auto_still_sees_ct_with_a_nan():
    ct = np.full((4, 16, 16), -1000.0)
    ct[:, 4:12, 4:12] = 50.0
    ct[0, 0, 0] = np.nan
    assert looks_like_ct(ct)
    assert resolve_window(ct, "auto").source == "ct-soft-tissue"


def test_a_volume_without_finite_voxels_has_no_window():
    with pytest.raises(ValueError, match="no finite voxel"):
        resolve_window(np.full((2, 4, 4), np.nan), "auto")
    with pytest.raises(ValueError, match="finite low < high"):
        resolve_window(np.zeros((2, 4, 4)), (np.nan, 1.0))


def test_normalise_replaces_non_finite_values():
    w = Window(0.0, 10.0)
    out = normalise(np.array([np.nan, np.inf, -np.inf, 5.0, 20.0]), w)
    np.testing.assert_array_equal(out, np.array([0.0, 1.0, 0.0, 0.5, 1.0], np.float32))
    rgb = to_uint8_rgb(np.array([[np.nan, np.inf]]), w)
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 255])


def test_a_session_on_a_nan_volume_gives_finite_slices():
    s = session(volume(bad=np.nan))
    assert np.isfinite(s.image01(2)).all()


@pytest.mark.parametrize("window", ["auto", (0.0, 400.0)])
def test_a_support_over_a_nan_is_refused_naming_label_slice_and_count(window):
    vol = volume(bad=np.nan, where=(3, slice(9, 11), 10))  # 2 NaN voxels inside the disk
    s = session(vol, window)
    with pytest.raises(ValueError, match=r"label 1 on slice 3: 2 of its 64 voxels are NaN"):
        s.set_support(1, 3, disk())
    assert not s.supports and not s.can_undo
    s.set_support(1, 2, disk())  # a slice without NaN under the mask is fine
    outside = disk()
    outside[:] = False
    outside[20:22, 20:22] = True
    s.set_support(1, 3, outside)  # NaN on the slice, but not under the mask


def test_a_support_volume_over_an_inf_is_refused_and_nothing_changes():
    vol = volume(bad=np.inf, where=(4, 12, 12))
    s = session(vol)
    supports = np.zeros(vol.shape, np.int32)
    supports[1] = disk()
    supports[4] = 2 * disk()
    with pytest.raises(ValueError, match=r"label 2 on slice 4: 1 of its 64 voxels are NaN or inf"):
        s.set_supports_from_volume(supports)
    assert not s.supports and not s.can_undo


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.1, 1.5, "0.5", None, True])
def test_predict_refuses_a_threshold_outside_0_1(bad):
    s = session(volume())
    s.set_support(1, 2, disk())
    with pytest.raises(ValueError, match=r"threshold .*expected a finite number in \[0, 1\]"):
        s.predict(1, "auto", threshold=bad)
    assert 1 not in s.thresholds


def test_predict_takes_the_ends_of_0_1():
    s = session(volume())
    s.set_support(1, 2, disk())
    assert check_threshold(0) == 0.0 and check_threshold(1) == 1.0
    run(s.predict(1, "auto", threshold=1.0))
    assert s.thresholds[1] == 1.0
