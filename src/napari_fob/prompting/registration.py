"""The registration baseline: the support mask carried through the volume by image registration.

``--prompts registration`` is the classical propagation a user gets for free in ITK-SNAP- or
Slicer-style tools. Per query slice, the nearest support (painted or, in chain mode, committed)
is walked outward one slice at a time: between neighbouring slices a dense optical flow of the
normalised [0, 1] slices (scikit-image's iterative Lucas-Kanade, `optical_flow_ilk`) is
estimated, and the mask of the slice before is warped onto the next with it
(`skimage.transform.warp`, linear, thresholded at 0.5). The ring and the foreground points are
then re-drawn from the warped mask exactly as mask-ring draws them from the support (the ring at
the model grid, `GeometricGenerator.ring`; `geometry.fg_points_from_mask`). Evidence: as
mask-ring's (the intensity band of the structure on the support), measured on the warped
footprint.

The walk uses every slice the generator has been shown since its supports were (re)set: the
supports, and the query images of this and earlier `predict` calls. A gap between known slices
is crossed in one registration step. The flow is computed on a crop around the mask (its
bounding box grown by ``crop_margin`` pixels): the flow is local, so the crop changes nothing
but the cost, several times lower than on the whole slice (timings: docs/method.md, "The
registration baseline"). Warped masks are cached per (support slice, slice) until the
supports change, and each registration step's result is kept by the content of its inputs
(`FlowMemo`), so two generators walking the same support through the same slices (FoB's
registration prior and the registration baseline, or a generator rebuilt after a settings
change) estimate each flow once.

numpy / scipy / scikit-image only.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_fob import geometry
from napari_fob.core.prompts import PromptSet
from napari_fob.prompting.geometric import GeometricGenerator, Support


class FlowMemo:
    """Results of `register_step`, keyed by a digest of its inputs, up to `max_bytes` kept.

    A step is a pure function of (moving slice, fixed slice, mask, radius, margin), so its
    result can be served to any caller that asks again with equal inputs; a digest of the
    bytes (BLAKE2b) costs far less than the flow estimate it replaces. Masks are kept
    bit-packed (one bit a pixel), the least
    recently used dropped first, and served as new arrays (callers may edit what they get).
    Thread-safe: the widget's workers and the main thread may walk at once.
    """

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = int(max_bytes)
        self._kept: OrderedDict[bytes, tuple[np.ndarray, tuple[int, ...]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(*arrays: np.ndarray, params: tuple[int, ...]) -> bytes:
        digest = hashlib.blake2b(repr(params).encode(), digest_size=20)
        for a in arrays:
            a = np.ascontiguousarray(a)
            digest.update(f"{a.dtype.str}{a.shape}".encode())
            digest.update(a.data)
        return digest.digest()

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
        packed, shape = found
        return np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).astype(bool)

    def put(self, key: bytes, mask: np.ndarray) -> None:
        packed = np.packbits(np.asarray(mask, dtype=bool).ravel())
        with self._lock:
            old = self._kept.pop(key, None)
            self._bytes -= 0 if old is None else old[0].nbytes
            self._kept[key] = (packed, mask.shape)
            self._bytes += packed.nbytes
            while self._bytes > self.max_bytes and self._kept:
                self._bytes -= self._kept.popitem(last=False)[1][0].nbytes

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._bytes = 0
            self.hits = self.misses = 0


#: The process's memo of registration steps (32 MiB of packed masks).
FLOWS = FlowMemo()


def register_step(
    moving01: np.ndarray,
    fixed01: np.ndarray,
    mask: np.ndarray,
    *,
    radius: int = 7,
    crop_margin: int = 24,
) -> np.ndarray:
    """`mask` (H, W) bool on the `moving01` slice, warped onto the `fixed01` slice.

    The optical flow (`optical_flow_ilk` with `radius`) from the fixed to the moving slice is
    estimated on the mask's bounding box grown by `crop_margin`; outside that crop the mask is
    empty. Returns an (H, W) bool mask (possibly empty). Results are kept in `FLOWS`.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    moving = np.asarray(moving01, dtype=np.float32)
    fixed = np.asarray(fixed01, dtype=np.float32)
    key = FLOWS.key(moving, fixed, mask, params=(int(radius), int(crop_margin)))
    found = FLOWS.get(key)
    if found is None:
        found = _register_step(moving, fixed, mask, radius=radius, crop_margin=crop_margin)
        FLOWS.put(key, found)
    return found


def _register_step(
    moving01: np.ndarray, fixed01: np.ndarray, mask: np.ndarray, *, radius: int, crop_margin: int
) -> np.ndarray:
    from skimage.registration import optical_flow_ilk
    from skimage.transform import warp

    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    r0, r1 = max(rows.min() - crop_margin, 0), min(rows.max() + crop_margin + 1, h)
    c0, c1 = max(cols.min() - crop_margin, 0), min(cols.max() + crop_margin + 1, w)
    fixed = np.asarray(fixed01, dtype=np.float32)[r0:r1, c0:c1]
    moving = np.asarray(moving01, dtype=np.float32)[r0:r1, c0:c1]
    v, u = optical_flow_ilk(fixed, moving, radius=radius)
    rr, cc = np.meshgrid(np.arange(r1 - r0), np.arange(c1 - c0), indexing="ij")
    crop = mask[r0:r1, c0:c1].astype(np.float32)
    warped = warp(crop, np.array([rr + v, cc + u]), order=1, mode="constant", cval=0.0)
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = warped > 0.5
    return out


class MaskTracker:
    """Support masks carried slice to slice by `register_step`, through the slices seen so far.

    The walk from a support on slice ``zs`` to slice ``z`` steps through every slice the tracker
    has been shown (`set_support`, `remember`) between them; a gap between known slices is
    crossed in one registration step. Where the flow loses the mask (an empty warp), the last
    non-empty mask is carried on. Warped masks are cached per (support slice, slice) and
    dropped when a support is set again or a known slice's image changes. The slices of one
    walk are those of one volume: images of another shape than the first one kept are not
    kept (`knows` is then False for them).
    """

    def __init__(self, *, flow_radius: int = 7, crop_margin: int = 24) -> None:
        self.flow_radius, self.crop_margin = int(flow_radius), int(crop_margin)
        self._images: dict[int, np.ndarray] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._warped: dict[tuple[int, int], np.ndarray] = {}

    def knows(self, zs: int, z: int) -> bool:
        """True when the support on slice `zs` can be walked to slice `z` (both kept)."""
        return int(zs) in self._masks and int(z) in self._images

    def _fits(self, image: np.ndarray) -> bool:
        first = next(iter(self._images.values()), None)
        return image.ndim == 2 and (first is None or first.shape == image.shape)

    def clear(self) -> None:
        """Forget every support, slice and warp."""
        self._images.clear()
        self._masks.clear()
        self._warped.clear()

    def set_support(self, z: int, image01: np.ndarray, mask: np.ndarray) -> None:
        """The (H, W) bool `mask` on slice `z` (image (H, W) in [0, 1]) becomes a walk's start."""
        self._masks.pop(int(z), None)
        self._warped.clear()  # the nearest support of a slice may have changed
        if self.remember(int(z), image01):
            self._masks[int(z)] = np.asarray(mask, dtype=bool)

    def remember(self, z: int, image01: np.ndarray) -> bool:
        """Keep slice `z`'s (H, W) image in [0, 1] as a step of later walks; False (not kept)
        when its shape differs from the slices already kept."""
        image01 = np.asarray(image01, dtype=np.float32)
        old = self._images.get(int(z))
        if old is not None and not np.array_equal(old, image01):
            self._warped.clear()  # a slice changed (another window): walks through it are stale
            del self._images[int(z)]
        if not self._fits(image01):
            return False
        self._images[int(z)] = image01
        return True

    def image(self, z: int) -> np.ndarray | None:
        """The image kept for slice `z`, or None when it was never shown."""
        return self._images.get(int(z))

    def mask_at(self, zs: int, z: int) -> np.ndarray:
        """The mask of the support on slice `zs` carried to slice `z`.

        Raises:
            KeyError: no support was set on `zs`, or slice `z` was never shown.
        """
        zs, z = int(zs), int(z)
        if zs not in self._masks or z not in self._images:
            missing = f"no support on slice {zs}" if zs not in self._masks else f"slice {z} unseen"
            raise KeyError(f"MaskTracker.mask_at({zs}, {z}): {missing}")
        if z == zs:
            return self._masks[zs]
        if (zs, z) in self._warped:
            return self._warped[(zs, z)]
        step = 1 if z > zs else -1
        done = [k for (s, k) in self._warped if s == zs and 0 < (k - zs) * step < (z - zs) * step]
        start = max(done, key=lambda k: abs(k - zs), default=zs)
        path = sorted(
            (k for k in self._images if (k - start) * step > 0 and (z - k) * step > 0),
            key=lambda k: abs(k - start),
        ) + [z]
        prev_z = start
        prev = self._masks[zs] if start == zs else self._warped[(zs, start)]
        for k in path:
            mask = register_step(
                self._images[prev_z], self._images[k], prev,
                radius=self.flow_radius, crop_margin=self.crop_margin,
            )  # fmt: skip
            if not mask.any():  # the flow lost it: keep the last non-empty mask
                mask = prev
            self._warped[(zs, k)] = mask
            prev_z, prev = k, mask
        return prev


class RegistrationGenerator(GeometricGenerator):
    """Baseline: the nearest support's mask registered slice to slice, its ring re-drawn.

    Args (keyword-only): those of `MaskRingGenerator` (n_bg, n_fg, r, eps, grid_size,
    tolerance), plus ``flow_radius`` (the Lucas-Kanade window radius, slice pixels) and
    ``crop_margin`` (pixels around the mask where the flow is estimated).
    """

    name = "registration"
    origin = "registration"

    def __init__(self, *, flow_radius: int = 7, crop_margin: int = 24, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracker = MaskTracker(flow_radius=flow_radius, crop_margin=crop_margin)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(
            registration="optical_flow_ilk between neighbouring slices, mask warped (linear, >0.5)",
            flow_radius=self.tracker.flow_radius,
            crop_margin=self.tracker.crop_margin,
        )
        return out

    def clear_supports(self) -> None:
        super().clear_supports()
        self.tracker.clear()

    def set_support(
        self,
        image01: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        super().set_support(image01, mask, slice_index=slice_index, committed=committed)
        if slice_index is not None:
            self.tracker.set_support(int(slice_index), image01, mask)

    def show(self, images01: Sequence[np.ndarray], slice_indices: Sequence[int]) -> None:
        """Slices the walk may step through, (H, W) in [0, 1], without prompting them."""
        for z, image in zip(slice_indices, images01, strict=True):
            self.tracker.remember(int(z), image)

    def warped_mask(self, support: Support, z: int) -> np.ndarray:
        """The support's mask carried to slice `z` through the known slices in between."""
        if int(z) == int(support.slice_index):
            return support.mask
        return self.tracker.mask_at(int(support.slice_index), int(z))

    def predict(
        self,
        images01: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        """One PromptSet per (H, W) float32 [0, 1] query, from the nearest support's mask
        registered to it; without slice indices (one support), the query is registered to the
        support directly."""
        if slice_indices is not None and len(slice_indices) != len(images01):
            raise ValueError(
                f"{self.name}.predict: {len(images01)} images but {len(slice_indices)} indices"
            )
        images = [np.asarray(im, dtype=np.float32) for im in images01]
        zs = [None] * len(images) if slice_indices is None else [int(z) for z in slice_indices]
        for z, image in zip(zs, images):
            if image.ndim != 2 or image.shape != self.nearest(z).mask.shape:
                raise ValueError(
                    f"{self.name}: query slice shape {image.shape} differs from the support's "
                    f"{self.nearest(z).mask.shape}"
                )
            if z is not None:
                self.tracker.remember(z, image)

        def distance(i: int) -> int:
            support = self.nearest(zs[i])
            if zs[i] is None or support.slice_index is None:
                return 0
            return abs(zs[i] - support.slice_index)

        out: list[PromptSet | None] = [None] * len(images)
        order = sorted(range(len(images)), key=distance)  # nearest first: walks extend walks
        for i in order:
            z, image = zs[i], images[i]
            support = self.nearest(z)
            if z is None or support.slice_index is None:
                mask = register_step(
                    support.image01, image, support.mask,
                    radius=self.tracker.flow_radius, crop_margin=self.tracker.crop_margin,
                )  # fmt: skip
                mask = mask if mask.any() else support.mask
            else:
                mask = self.warped_mask(support, z)
            if mask is support.mask:
                fg, bg = support.fg.copy(), support.bg.copy()
            else:
                bg = self.ring(mask)
                fg = np.asarray(geometry.fg_points_from_mask(mask, self.n_fg), dtype=np.float64)
            evidence, feats = self.evidence(support, image, mask, z, self._neighbour(support, z))
            out[i] = PromptSet(
                fg=fg,
                bg=bg,
                label=label,
                slice_index=z,
                origin=self.origin,
                evidence=evidence,
                meta={"support_slice": support.slice_index, "confidence_features": feats},
            )
        return [p for p in out if p is not None]

    def _neighbour(self, support: Support, z: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """(image, carried mask) of the slice next to `z` on the way to the support, when the
        walk has stepped through it (None next to the support: the support is the neighbour)."""
        zs = support.slice_index
        if z is None or zs is None or abs(z - zs) < 2:
            return None
        zn = z - (1 if z > zs else -1)
        image = self.tracker.image(zn)
        return None if image is None else (image, self.warped_mask(support, zn))
