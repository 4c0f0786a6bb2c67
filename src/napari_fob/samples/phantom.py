"""A seeded, procedural CT-like abdomen phantom with ground-truth organ labels.

Anatomy is laid out in "reference millimetres" for a 240 x 240 x 160 mm field of view
(lateral x anterior-posterior x superior-inferior) and stretched to the requested grid, so any
shape/spacing gives the same anatomy. Coordinates: ``u`` patient left (+), ``v`` posterior (+),
``w`` superior (+), all relative to the volume centre. With the affine of `phantom_affine`
(LPS storage), napari shows the axial slices radiologically: anterior up, patient right on
the left of the screen, so the liver appears on the left.

Organs are smoothly deformed ellipsoids: ``f = |R (p - c) / s| + amp * noise(p)`` with a
low-frequency random field, inside where ``f < 1``. Every size, position, rotation and field
depends on the seed. The superior-inferior extent is bounded so each organ starts and ends
inside the volume. Pure numpy/scipy: no napari, Qt or torch; scipy is imported only when a
phantom is generated (the bundled seed 0, `samples.bundled`, is read without it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAMES: dict[int, str] = {1: "liver", 2: "spleen", 3: "left kidney", 4: "right kidney"}
REFERENCE_FOV_MM = (160.0, 240.0, 240.0)  # (w, v, u) extent the anatomy below is laid out for
HU = {"air": -1000.0, "fat": -100.0, "muscle": 40.0, "liver": 60.0, "spleen": 50.0,
      "cortex": 150.0, "medulla": 95.0, "vessel": 115.0, "bone": 700.0, "marrow": 250.0,
      "disc": 90.0, "csf": 15.0, "aorta": 160.0, "ivc": 110.0, "bowel": 25.0,
      "fluid": 10.0}  # fmt: skip
_Z_MARGIN_MM = 8.0  # organs stay at least this far (reference mm) from the first/last slice


@dataclass(frozen=True)
class _Blob:
    """A deformed ellipsoid: centre (w, v, u), semi-axes (w, v, u), in-plane angle, noise."""

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]
    angle: float
    amp: float
    field: np.ndarray  # (24, 24, 24) smooth random values, about [-1, 1]


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """The phantom's ``(4, 4)`` affine for a file stored as (X, Y, Z) = array axes (2, 1, 0).

    LPS storage (i -> patient left, j -> posterior, k -> superior), volume centre at world 0.
    """
    dz, dy, dx = spacing
    nz, ny, nx = shape
    return np.array(
        [
            [-dx, 0.0, 0.0, dx * (nx - 1) / 2],
            [0.0, -dy, 0.0, dy * (ny - 1) / 2],
            [0.0, 0.0, dz, -dz * (nz - 1) / 2],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def make_abdomen_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] = (64, 160, 160),
    spacing: tuple[float, float, float] = (2.5, 1.5, 1.5),
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Build one phantom volume.

    Args:
        seed: all randomness (shapes, sizes, positions, texture, noise) derives from it.
        shape: ``(Z, Y, X)`` voxels; axis 0 runs inferior -> superior, rows anterior ->
            posterior, columns patient right -> left.
        spacing: mm per array axis ``(dz, dy, dx)``.

    Returns:
        image: ``(Z, Y, X)`` float32 in whole Hounsfield units (air about -1000).
        labels: ``(Z, Y, X)`` uint8, 0 background and the keys of `NAMES`.
        names: label value -> organ name (a copy of `NAMES`).
    """
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"phantom shape: expected 3 sizes >= 4, got {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"phantom spacing: expected 3 positive sizes in mm, got {spacing}")
    rng = np.random.default_rng(seed)
    # Reference-mm coordinates of the voxel centres along each axis.
    w, v, u = ((np.arange(n) - (n - 1) / 2) * ref / n for n, ref in zip(shape, REFERENCE_FOV_MM))
    grid = (w[:, None, None], v[None, :, None], u[None, None, :])
    image = np.full(shape, HU["air"], dtype=np.float32)
    body, muscle, cavity = _body(grid, rng)
    image[body] = HU["fat"]
    image[muscle & ~cavity] = HU["muscle"]
    image[cavity] = _mesentery(shape, rng)[cavity]
    exclusion = _spine_and_vessels(image, grid, rng)
    labels = _organs(image, grid, cavity & ~exclusion, rng)
    _finish(image, body, rng)
    return image, labels, dict(NAMES)


def _body(grid: tuple[np.ndarray, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Boolean body, inside-the-fat and cavity masks: superellipses varying slowly along w.

    The cavity reaches further back than the muscle wall in front: the retroperitoneum
    (kidneys, psoas, back muscles) lies there.
    """
    w, v, u = grid
    a = 108.0 * rng.uniform(0.88, 1.05) * (1 + 0.05 * np.sin(w / 50.0 + rng.uniform(0, 6)))
    b = 86.0 * rng.uniform(0.88, 1.05) * (1 + 0.04 * np.cos(w / 60.0 + rng.uniform(0, 6)))
    theta = np.arctan2(v, u)
    wobble = 0.03 * np.sin(3 * theta + rng.uniform(0, 6)) + 0.02 * np.sin(5 * theta + w / 40.0)
    fat = rng.uniform(10.0, 24.0)
    wall = rng.uniform(7.0, 11.0)

    def superellipse(half_u: np.ndarray, half_v: np.ndarray, power: float) -> np.ndarray:
        return (np.abs(u / half_u) ** power + np.abs(v / half_v) ** power) ** (1 / power)

    body = superellipse(a, b, 2.6) < 1 + wobble
    muscle = superellipse(a - fat, b - fat, 2.5) < 1 + wobble
    back = np.where(v > 0, 0.35 * fat + 4.0, fat + wall)  # thin fat, no wall behind the spine
    cavity = superellipse(a - fat - wall, b - back, 2.4) < 1 + wobble
    return body, muscle & body, cavity & body


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator, coarse: int) -> np.ndarray:
    """Low-frequency random field in [-1, 1]: smoothed noise on a grid `coarse` times smaller,
    upsampled linearly one axis at a time (much faster than ``ndi.zoom`` at this size)."""
    from scipy import ndimage as ndi
    small = rng.normal(size=tuple(max(2, s // coarse) for s in shape))
    field = ndi.gaussian_filter(small, 0.8).astype(np.float32)
    for axis, n in enumerate(shape):
        field = np.moveaxis(np.tensordot(_linear_weights(field.shape[axis], n), field,
                                         axes=([1], [axis])), 0, axis)  # fmt: skip
    return (field / (np.abs(field).max() + 1e-6)).astype(np.float32)


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation matrix with aligned end points."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    weights = np.zeros((n_out, n_in), dtype=np.float32)
    weights[np.arange(n_out), lo] = 1 - frac
    weights[np.arange(n_out), lo + 1] = frac
    return weights


def _mesentery(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Cavity filler: bowel loops and fat mixed by a smooth field, with a few gas pockets."""
    mix = _smooth_field(shape, rng, 6)
    tissue = 1 / (1 + np.exp(-10 * (mix + 0.1)))
    filler = HU["fat"] + (HU["bowel"] - HU["fat"]) * tissue
    gas = _smooth_field(shape, rng, 5) > 0.75
    filler[gas] = -950.0
    return filler.astype(np.float32)


def _spine_and_vessels(
    image: np.ndarray, grid: tuple[np.ndarray, ...], rng: np.random.Generator
) -> np.ndarray:
    """Draw spine, back muscles, psoas, aorta, IVC, stomach; return where organs may not go."""
    w, v, u = grid
    vc = rng.uniform(26.0, 34.0)  # vertebral body centre, posterior of the cavity centre
    period, phase = rng.uniform(28.0, 33.0), rng.uniform(0, 30.0)
    disc = ((w - phase) % period) < 6.0
    r_body = np.hypot(u / 17.0, (v - vc) / 15.0)
    r_canal = np.hypot(u, v - vc - 24.0)
    psoas_r = 9.0 + 10.0 * np.clip(-w / 80.0 + 0.3, 0, 1)
    shapes = [
        (np.hypot((np.abs(u) - 34.0) / 22.0, (v - vc - 36.0) / 14.0) < 1, HU["muscle"]),
        (np.hypot(np.abs(u) - 28.0, v - vc + 4.0) < psoas_r, HU["muscle"] + 5),
        ((r_canal < 13.0) | ((np.abs(u) < 4.0) & (v > vc + 30) & (v < vc + 48)), HU["bone"]),
        (r_canal < 7.5, HU["csf"]),
        (
            (r_body < 1) & np.broadcast_to(disc, np.broadcast_shapes(w.shape, u.shape, v.shape)),
            HU["disc"],
        ),
        ((r_body < 1) & ~disc & (r_body > 0.82), HU["bone"]),
        ((r_body < 0.82) & ~disc, HU["marrow"]),
        (np.hypot(u - 8.0, v - vc + 26.0) < 10.5, HU["aorta"]),
        (np.hypot(u + 22.0, v - vc + 22.0) < 11.5, HU["ivc"]),
    ]
    exclusion = np.zeros(image.shape, dtype=bool)
    for mask, value in shapes:
        mask = np.broadcast_to(mask, image.shape)
        image[mask] = value
        exclusion |= mask
    # Stomach (not labelled): fluid with an air cap on the anterior side, left upper abdomen.
    stomach = _blob(rng, (45, -30, 38), (28, 26, 30), 0.3)
    box = _bounding_boxes(grid, {0: [stomach]})[0]
    inside = _blob_f((w[box[0]], v[:, box[1]], u[:, :, box[2]]), stomach) < 1
    region = image[box]
    region[inside] = HU["fluid"]
    region[inside & (v[:, box[1]] < stomach.centre[1] - 10 * rng.uniform(0.5, 1.5))] = HU["air"]
    return exclusion


def _blob(
    rng: np.random.Generator,
    centre: tuple[float, float, float],
    semi: tuple[float, float, float],
    angle_jitter: float,
    jitter_mm: float = 6.0,
) -> _Blob:
    from scipy import ndimage as ndi

    c = np.asarray(centre, dtype=float) + rng.normal(0, jitter_mm, 3)
    s = np.asarray(semi, dtype=float) * rng.uniform(0.85, 1.15, 3)
    amp = rng.uniform(0.1, 0.2)
    # Keep the superior-inferior extent inside the volume: |w - c| < s * (1 + amp) is needed.
    half = REFERENCE_FOV_MM[0] / 2 - _Z_MARGIN_MM
    c[0] = np.clip(c[0], -half + 10, half - 10)
    s[0] = min(s[0], (half - abs(c[0])) / (1 + amp))
    field = ndi.gaussian_filter(rng.normal(size=(6, 6, 6)), 1.0, mode="wrap")
    # Cubic upsampling once here lets `_blob_f` sample it linearly (fast) and still smoothly.
    field = ndi.zoom(field / np.abs(field).max(), 4, order=3, mode="nearest")
    angle = rng.uniform(-angle_jitter, angle_jitter)
    return _Blob(tuple(c), tuple(s), angle, amp, field)  # type: ignore[arg-type]


def _blob_f(grid: tuple[np.ndarray, ...], blob: _Blob) -> np.ndarray:
    """The implicit function ``f`` of a blob on the full grid (inside where f < 1)."""
    from scipy import ndimage as ndi
    w, v, u = (g - c for g, c in zip(grid, blob.centre))
    cos, sin = np.cos(blob.angle), np.sin(blob.angle)
    vr, ur = cos * v - sin * u, sin * v + cos * u
    nw, nv, nu = w / blob.semi[0], vr / blob.semi[1], ur / blob.semi[2]
    nw, nv, nu = np.broadcast_arrays(nw, nv, nu)
    radius = np.sqrt(nw**2 + nv**2 + nu**2)
    # The field spans [-1.5, 1.5]^3 in normalised coordinates.
    scale = (blob.field.shape[0] - 1) / 3.0
    coords = np.empty((3, radius.size), dtype=np.float32)
    for i, n in enumerate((nw, nv, nu)):
        coords[i] = (n.ravel() + 1.5) * scale
    noise = ndi.map_coordinates(blob.field, coords, order=1, mode="nearest", prefilter=False)
    noise = noise.reshape(radius.shape)
    return radius + blob.amp * np.clip(noise, -1, 1)


def _organs(
    image: np.ndarray, grid: tuple[np.ndarray, ...], allowed: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Label and paint liver, spleen and kidneys; overlaps go to the organ with the lower f."""
    liver_right = _blob(rng, (12, -2, -42), (55, 62, 52), 0.25)
    liver_left = _blob(rng, (35, -38, 2), (30, 26, 42), 0.3)
    blobs = {
        1: [liver_right, liver_left],
        2: [_blob(rng, (28, 28, 60), (40, 44, 24), 0.5)],
        3: [_blob(rng, (-18, 30, 58), (46, 27, 22), 0.4)],
        4: [_blob(rng, (-28, 30, -58), (46, 27, 22), 0.4)],
    }
    labels = np.zeros(image.shape, dtype=np.uint8)
    best = np.full(image.shape, np.inf, dtype=np.float32)
    sub = _bounding_boxes(grid, blobs)
    fields: dict[int, np.ndarray] = {}
    for label, parts in blobs.items():
        box = sub[label]
        local = (grid[0][box[0]], grid[1][:, box[1]], grid[2][:, :, box[2]])
        f = np.minimum.reduce([_blob_f(local, p) for p in parts]).astype(np.float32)
        if label in (3, 4):  # kidney hilum: a notch facing the spine gives the bean shape
            hilum = parts[0].centre[2] * 0.55
            notch = np.hypot((local[2] - hilum) / 9.0, (local[1] - parts[0].centre[1]) / 10.0)
            f = np.maximum(f, 2.0 - np.broadcast_to(notch, f.shape) * 1.0)
        inside = (f < 1) & allowed[box] & (f < best[box])
        best[box][inside] = f[inside]
        labels[box][inside] = label
        fields[label] = f
    for label in blobs:
        box, f = sub[label], fields[label]
        mine = labels[box] == label
        region = image[box]
        if label == 1:
            vessels = _vessels(f.shape, rng)[mine]
            region[mine] = HU["liver"] + (HU["vessel"] - HU["liver"]) * vessels
        elif label == 2:
            region[mine] = HU["spleen"]
        else:
            region[mine & (f >= 0.62)] = HU["cortex"]
            region[mine & (f < 0.62)] = HU["medulla"]
    return labels


def _bounding_boxes(
    grid: tuple[np.ndarray, ...], blobs: dict[int, list[_Blob]]
) -> dict[int, tuple[slice, slice, slice]]:
    """Index boxes that contain each organ (its parts' extents padded by the noise amplitude)."""
    axes = [grid[0].ravel(), grid[1].ravel(), grid[2].ravel()]
    boxes = {}
    for label, parts in blobs.items():
        box = []
        for a in range(3):
            lo = min(p.centre[a] - max(p.semi) * (1 + p.amp) for p in parts)
            hi = max(p.centre[a] + max(p.semi) * (1 + p.amp) for p in parts)
            if a == 0:  # no rotation out of the axial plane: the w extent is exact
                lo = min(p.centre[0] - p.semi[0] * (1 + p.amp) for p in parts)
                hi = max(p.centre[0] + p.semi[0] * (1 + p.amp) for p in parts)
            idx = np.nonzero((axes[a] >= lo) & (axes[a] <= hi))[0]
            box.append(slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0))
        boxes[label] = tuple(box)
    return boxes  # type: ignore[return-value]


def _vessels(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """0/1 map of thin bright branching tubes (hepatic/portal veins): a level set of a field."""
    field = _smooth_field(shape, rng, 9)
    return (np.abs(field) < 0.035).astype(np.float32)


def _finish(image: np.ndarray, body: np.ndarray, rng: np.random.Generator) -> None:
    """Partial-volume blur, smooth tissue texture and Gaussian noise, in place."""
    from scipy import ndimage as ndi
    image[...] = ndi.gaussian_filter(image, sigma=0.6)
    image += 8.0 * _smooth_field(image.shape, rng, 3) * body
    image += rng.normal(0.0, 12.0, size=image.shape).astype(np.float32)
    np.round(image, out=image)  # CT stores whole Hounsfield units
