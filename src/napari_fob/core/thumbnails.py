"""Review thumbnails: one small RGB picture per prompted slice (image, ring, points, mask outline).

The gallery of the annotator shows these so that a structure's 60 slices can be judged at a
glance instead of one slider step at a time. Each thumbnail is cropped to a square around what
it shows (ring, points, committed mask; the whole slice when there is none) with a margin, so a
small structure fills the picture, and drawn in the annotator's colours: ring amber, foreground
points green, background points red, the committed mask's outline cyan. Plain numpy and
scikit-image, so it runs in a worker thread and is tested without Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RING_RGB = (255, 176, 0)
FG_RGB = (51, 221, 51)
BG_RGB = (255, 51, 51)
MASK_RGB = (0, 220, 255)
MARGIN = 0.35  # fraction of the shown extent added on each side of the crop
MIN_CROP = 24  # slice pixels: a crop never narrower (a 3-pixel structure still has context)


@dataclass(frozen=True)
class ThumbnailInput:
    """What one thumbnail shows; arrays are in slice pixels, points as (row, col)."""

    image: np.ndarray  # (H, W) intensities
    low: float  # the display window
    high: float
    ring: np.ndarray | None = None  # (N, 2) ring in order, closed when drawn
    fg: np.ndarray | None = None  # (M, 2)
    mask: np.ndarray | None = None  # (H, W) bool, the committed mask

    def signature(self) -> int:
        """Changes whenever the picture would: the gallery re-renders only those slices."""
        parts = [np.float64([self.low, self.high]).tobytes(), str(self.image.shape).encode()]
        for array in (self.ring, self.fg, self.mask):
            parts.append(b"-" if array is None else np.ascontiguousarray(array).tobytes())
        return hash(b"|".join(parts))


def crop_box(data: ThumbnailInput) -> tuple[int, int, int]:
    """(row0, col0, side) of the square crop, in slice pixels (may reach outside the slice)."""
    h, w = data.image.shape
    rows, cols = [], []
    for points in (data.ring, data.fg):
        if points is not None and len(points):
            rows.append(np.asarray(points)[:, 0])
            cols.append(np.asarray(points)[:, 1])
    if data.mask is not None and data.mask.any():
        r, c = np.nonzero(data.mask)
        rows.append(r.astype(float))
        cols.append(c.astype(float))
    if not rows:
        side = max(h, w)
        return (h - side) // 2, (w - side) // 2, side
    r, c = np.concatenate(rows), np.concatenate(cols)
    extent = max(r.max() - r.min(), c.max() - c.min(), 1.0)
    side = int(np.ceil(max(MIN_CROP, extent * (1 + 2 * MARGIN))))
    side = min(side, max(h, w))
    centre_r, centre_c = (r.max() + r.min()) / 2, (c.max() + c.min()) / 2
    return int(round(centre_r - side / 2)), int(round(centre_c - side / 2)), side


def render(data: ThumbnailInput, size: int = 96) -> np.ndarray:
    """The (size, size, 3) uint8 thumbnail of one slice."""
    from skimage.draw import disk, line

    row0, col0, side = crop_box(data)
    scale = size / side
    # nearest-neighbour sampling of the crop (outside the slice: the window's low end, black)
    centres = (np.arange(size) + 0.5) / scale - 0.5
    rr = np.clip(np.round(row0 + centres).astype(int), -1, data.image.shape[0])
    cc = np.clip(np.round(col0 + centres).astype(int), -1, data.image.shape[1])
    inside = ((rr >= 0) & (rr < data.image.shape[0]))[:, None] & (
        (cc >= 0) & (cc < data.image.shape[1])
    )[None, :]
    rs = np.clip(rr, 0, data.image.shape[0] - 1)
    cs = np.clip(cc, 0, data.image.shape[1] - 1)
    crop = np.asarray(data.image, dtype=np.float32)[np.ix_(rs, cs)]
    span = max(float(data.high) - float(data.low), 1e-6)
    grey = np.clip((crop - float(data.low)) / span, 0.0, 1.0) * 255.0
    grey[~inside] = 0.0
    rgb = np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)

    if data.mask is not None and data.mask.any():
        shown = np.asarray(data.mask, bool)[np.ix_(rs, cs)] & inside
        edge = shown.copy()
        edge[1:-1, 1:-1] &= ~(
            shown[:-2, 1:-1] & shown[2:, 1:-1] & shown[1:-1, :-2] & shown[1:-1, 2:]
        )
        rgb[edge] = MASK_RGB

    def to_thumb(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=float)
        return np.stack(
            [(p[:, 0] - row0 + 0.5) * scale - 0.5, (p[:, 1] - col0 + 0.5) * scale - 0.5], 1
        )

    if data.ring is not None and len(data.ring) >= 2:
        ring = np.round(to_thumb(data.ring)).astype(int)
        for (r0, c0), (r1, c1) in zip(ring, np.roll(ring, -1, axis=0)):
            lr, lc = line(r0, c0, r1, c1)
            keep = (lr >= 0) & (lr < size) & (lc >= 0) & (lc < size)
            rgb[lr[keep], lc[keep]] = RING_RGB
    radius = max(1.5, size / 48.0)
    for points, colour in ((data.ring, BG_RGB), (data.fg, FG_RGB)):
        if points is None or not len(points):
            continue
        for r, c in to_thumb(points):
            dr, dc = disk((r, c), radius, shape=(size, size))
            rgb[dr, dc] = colour
    return rgb
