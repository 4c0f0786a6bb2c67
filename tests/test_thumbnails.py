"""Review thumbnails: the crop follows the structure, colours mark ring, points and mask."""

import numpy as np

from napari_fob.core.thumbnails import (
    BG_RGB,
    FG_RGB,
    MASK_RGB,
    RING_RGB,
    ThumbnailInput,
    crop_box,
    render,
)  # fmt: skip


def _slice_with_disk(centre=(100, 60), radius=8, shape=(200, 160)):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    mask = (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2
    image = np.where(mask, 200.0, 50.0).astype(np.float32)
    angles = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    ring = np.stack([centre[0] + 14 * np.sin(angles), centre[1] + 14 * np.cos(angles)], 1)
    return image, mask, ring


def test_crop_is_a_square_around_what_is_shown():
    image, mask, ring = _slice_with_disk()
    row0, col0, side = crop_box(ThumbnailInput(image, 0, 255, ring=ring, mask=mask))
    assert 28 <= side <= 60  # the ring's 28 px plus margins, not the 200 px slice
    assert row0 <= 100 - 14 and row0 + side >= 100 + 14
    assert col0 <= 60 - 14 and col0 + side >= 60 + 14
    whole = crop_box(ThumbnailInput(image, 0, 255))
    assert whole[2] == 200  # nothing to show: the whole slice


def test_render_draws_each_part_in_its_colour():
    image, mask, ring = _slice_with_disk()
    fg = np.array([[100.0, 60.0]])
    thumb = render(ThumbnailInput(image, 0, 255, ring=ring, fg=fg, mask=mask), size=96)
    assert thumb.shape == (96, 96, 3) and thumb.dtype == np.uint8
    colours = {tuple(c) for c in thumb.reshape(-1, 3)}
    for colour in (RING_RGB, FG_RGB, BG_RGB, MASK_RGB):
        assert colour in colours
    # the foreground point sits in the middle of the crop (the structure is centred)
    r, c = np.argwhere(np.all(thumb == FG_RGB, axis=2)).mean(axis=0)
    assert abs(r - 47.5) < 6 and abs(c - 47.5) < 6
    plain = render(ThumbnailInput(image, 0, 255), size=64)
    assert {tuple(c) for c in plain.reshape(-1, 3)} <= {(50, 50, 50), (200, 200, 200), (0, 0, 0)}


def test_signature_changes_with_what_is_drawn():
    image, mask, ring = _slice_with_disk()
    a = ThumbnailInput(image, 0, 255, ring=ring, mask=mask)
    assert a.signature() == ThumbnailInput(image, 0, 255, ring=ring.copy(), mask=mask).signature()
    assert a.signature() != ThumbnailInput(image, 0, 255, ring=ring + 1, mask=mask).signature()
    assert a.signature() != ThumbnailInput(image, 0, 200, ring=ring, mask=mask).signature()
