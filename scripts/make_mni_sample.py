"""Build the committed ``mni-brain`` sample from the MNI ICBM152 2009a template shipped by nilearn.

Run once (needs nilearn installed; the package does not need it at runtime)::

    .venv/bin/python scripts/make_mni_sample.py [--out src/napari_fob/samples/data]

What it does (documented in docs/data.md):

1. Reads the template's T1 and its grey/white matter probability maps (1 mm, RAS, uint8 0..255
   meaning probability 0..1).
2. Ground truth at 1 mm, three non-overlapping structures:
   1 = lateral ventricles: the largest connected component of CSF (inside the filled brain
       mask, grey + white probability < 0.5) lying more than 8 mm inside the brain surface and
       not touching that 8 mm boundary (this excludes the sulci, the interhemispheric fissure
       and the basal cisterns, which all reach it);
   2 = white matter: wm > 0.5;
   3 = grey matter: gm > 0.5 (cortex, deep grey nuclei, cerebellar cortex).
   wm > 0.5 and gm > 0.5 cannot both hold (the maps sum to at most 1), and the ventricles
   have gm + wm < 0.5, so the three never overlap.
3. Crops to the head (T1 > 10, 4 mm margin) and downsamples by 2 in every axis (2 mm voxels):
   T1 and each structure's indicator are averaged over 2x2x2 blocks; a 2 mm voxel gets the
   structure whose block fraction is largest and at least 0.5. The affine gets the 2x zoom and
   the half-voxel shift of the block centres.
4. Flips the first two voxel axes (RAS -> LPS storage, the affine updated to match), so the
   default axial view in napari is radiological with anterior at the top.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from napari_fob.core.io import Volume, write_image, write_labels

TEMPLATE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
NAMES = {1: "lateral ventricles", 2: "white matter", 3: "grey matter"}
SURFACE_MARGIN_MM = 8  # CSF closer than this to the brain surface is sulcal, not ventricular


def template_dir() -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t1, gm, wm, affine): 1 mm arrays in file (i, j, k) order; gm/wm as probabilities."""
    folder = template_dir()
    t1_img = nib.load(folder / TEMPLATE.format("t1"))
    gm = nib.load(folder / TEMPLATE.format("gm")).get_fdata() / 255.0
    wm = nib.load(folder / TEMPLATE.format("wm")).get_fdata() / 255.0
    return t1_img.get_fdata(), gm, wm, t1_img.affine


def lateral_ventricles(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Boolean mask of the lateral ventricles (see the module docstring, step 2)."""
    tissue = (gm + wm) > 0.5
    brain = ndi.binary_fill_holes(
        ndi.binary_closing(tissue, structure=np.ones((3, 3, 3)), iterations=3)
    )
    inner = ndi.binary_erosion(brain, iterations=SURFACE_MARGIN_MM)
    candidates = brain & ~tissue & inner
    components, n = ndi.label(candidates)
    touches_boundary = ndi.binary_dilation(~inner) & candidates
    reaching = set(np.unique(components[touches_boundary]).tolist())
    sizes = ndi.sum(candidates, components, index=np.arange(1, n + 1))
    for index in np.argsort(sizes)[::-1]:
        if index + 1 not in reaching:
            return components == index + 1
    raise RuntimeError("no enclosed CSF component found: is this the ICBM152 template?")


def ground_truth(gm: np.ndarray, wm: np.ndarray) -> dict[int, np.ndarray]:
    """Label value -> boolean 1 mm mask; the masks are disjoint."""
    masks = {1: lateral_ventricles(gm, wm), 2: wm > 0.5, 3: gm > 0.5}
    total = sum(m.astype(np.int32) for m in masks.values())
    assert total.max() <= 1, "ground-truth structures overlap"
    return masks


def head_box(t1: np.ndarray, margin: int = 4) -> tuple[slice, ...]:
    """Slices of the head's bounding box (T1 > 10) with a margin, each of even length."""
    where = np.argwhere(t1 > 10)
    box = []
    for axis, (lo, hi) in enumerate(zip(where.min(0), where.max(0) + 1)):
        lo, hi = max(lo - margin, 0), min(hi + margin, t1.shape[axis])
        if (hi - lo) % 2:
            hi = hi + 1 if hi < t1.shape[axis] else hi
            lo = lo - 1 if (hi - lo) % 2 else lo
        box.append(slice(int(lo), int(hi)))
    return tuple(box)


def block_mean(array: np.ndarray) -> np.ndarray:
    """Mean over 2x2x2 blocks of an array with even shape."""
    x, y, z = (s // 2 for s in array.shape)
    return array.reshape(x, 2, y, 2, z, 2).mean(axis=(1, 3, 5))


def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t1 uint8, labels uint8, affine): 2 mm arrays in LPS file (i, j, k) order."""
    t1, gm, wm, affine = load_template()
    masks = ground_truth(gm, wm)
    box = head_box(t1)
    offset = np.eye(4)
    offset[:3, 3] = [b.start for b in box]
    zoom = np.diag([2.0, 2.0, 2.0, 1.0])
    zoom[:3, 3] = 0.5  # a 2 mm voxel's centre lies between the two 1 mm centres it averages
    affine = affine @ offset @ zoom

    t1_small = np.clip(np.round(block_mean(t1[box])), 0, 255).astype(np.uint8)
    fractions = np.stack([block_mean(masks[k][box].astype(np.float32)) for k in sorted(masks)])
    best = fractions.argmax(axis=0)
    labels = np.where(fractions.max(axis=0) >= 0.5, best + 1, 0).astype(np.uint8)

    # Store as LPS: flip i and j, moving the affine's origin to the new first voxel.
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[0, 3] = t1_small.shape[0] - 1
    flip[1, 3] = t1_small.shape[1] - 1
    return t1_small[::-1, ::-1, :], labels[::-1, ::-1, :], affine @ flip


def main(argv: list[str] | None = None) -> int:
    default_out = Path(__file__).resolve().parents[1] / "src/napari_fob/samples/data"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    t1, labels, affine = build()
    # Volume arrays are (Z, Y, X) = the file's (k, j, i): transpose in, the writers transpose back.
    grid = Volume.from_array(np.transpose(t1, (2, 1, 0)), affine=affine, xform_code=2)
    args.out.mkdir(parents=True, exist_ok=True)
    write_image(args.out / "mni_t1.nii.gz", grid.data, grid, dtype=np.uint8)
    write_labels(args.out / "mni_labels.nii.gz", np.transpose(labels, (2, 1, 0)), grid)
    names = {str(k): v for k, v in NAMES.items()}
    (args.out / "mni_labels.json").write_text(json.dumps(names, indent=2) + "\n")
    counts = {NAMES[k]: int((labels == k).sum()) for k in NAMES}
    print(f"wrote {args.out}: shape {t1.shape} (i, j, k), voxels per structure {counts}")
    print(f"affine:\n{np.array2string(affine, precision=2)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
