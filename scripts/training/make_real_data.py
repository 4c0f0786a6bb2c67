"""Build training data from the real MRI of the real-anatomy benchmark, test structures held out.

The benchmark's image (the ICBM152 T1 template at 1 mm, `napari_fob.samples.real_anatomy`) is
written once per slicing orientation (the slicing axis first, so that training slices are
sagittal, coronal and axial slices), each with

- supervoxel pseudo-labels (`training.supervoxels`, 3D SLIC in the brain, `--size-mm3`) from
  which **every supervoxel that touches a test structure** (the deep grey nuclei of either
  atlas, dilated by `--margin` voxels) is removed, so that no episode shows a test structure
  as its target (`held_out_pseudo`; the test is `tests/test_real_training_data.py`);
- ground truth of the `tune` structures of HCPEx only (label values of the atlas), for
  labelled episodes (`label_source: both`).

A validation volume (split `val`) holds the axial orientation with the AAL3 `tune` structures,
for the trainer's ring-error validation. Nothing of the test split is written. The files go to
a folder outside the repository with a manifest:

    .venv/bin/python scripts/training/make_real_data.py --out /work/fobreal/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

SIZE_MM3 = 4_000.0  # supervoxels about the size of a deep grey nucleus (4-10 ml)
MARGIN = 2  # voxels: a supervoxel this close to a test structure counts as touching it


def test_mask() -> np.ndarray:
    """Union of every test structure of both atlases on the template grid (X, Y, Z)."""
    from napari_fob.samples.real_anatomy import ATLASES, TEST_STRUCTURES, load_case

    mask = None
    for atlas in ATLASES:
        case = load_case(atlas)
        for name in TEST_STRUCTURES:
            m = case.mask(name)
            mask = m.copy() if mask is None else (mask | m)
    return mask


def held_out_pseudo(pseudo: np.ndarray, test: np.ndarray, margin: int = MARGIN) -> np.ndarray:
    """`pseudo` without every label that has a voxel within `margin` voxels of `test`
    (set to 0, the rest relabelled 1..K): the held-out rule of the training data."""
    from napari_fob.training.supervoxels import relabel_consecutive

    near = ndi.binary_dilation(test, iterations=margin) if margin > 0 else test
    touching = np.unique(pseudo[near])
    out = np.where(np.isin(pseudo, touching[touching > 0]), 0, pseudo)
    return relabel_consecutive(out.astype(np.int32))


def tune_labels(atlas: str, test: np.ndarray) -> np.ndarray:
    """The atlas's labels with every structure that is not in its `tune` split set to 0, and
    every voxel of `test` (the test structures of either atlas) set to 0: atlases disagree at
    borders, so a tune region of one can hold voxels of the other's test structures."""
    from napari_fob.samples.real_anatomy import load_case, structures

    case = load_case(atlas)
    keep = [case.label_of(n) for n in structures(atlas, "tune")]
    out = np.where(np.isin(case.labels, keep) & ~test, case.labels, 0)
    return out.astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="data folder (outside the repository)")
    parser.add_argument("--size-mm3", type=float, default=SIZE_MM3)
    parser.add_argument("--margin", type=int, default=MARGIN)
    parser.add_argument(
        "--step", type=int, default=1, help="keep every N-th voxel per axis (a coarse copy, tests)"
    )
    args = parser.parse_args(argv)
    import yaml

    from napari_fob.core.io import write_image, write_labels
    from napari_fob.core.volume import Volume
    from napari_fob.samples.real_anatomy import load_template, plane_of_axis
    from napari_fob.training.supervoxels import body_mask, supervoxels

    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    image, _gm, _wm, affine = load_template()
    step = (slice(None, None, args.step),) * 3
    raw = np.rint(np.asarray(image)[step] * 1000.0).astype(np.int16)
    test = test_mask()
    spacing = (float(args.step),) * 3
    pseudo = supervoxels(raw, spacing=spacing, mask=body_mask(raw), size_mm3=args.size_mm3)
    kept = held_out_pseudo(pseudo, test[step], args.margin)
    print(f"supervoxels: {pseudo.max()}, kept away from the test structures: {kept.max()}")
    gt = {atlas: tune_labels(atlas, test)[step] for atlas in ("hcpex", "aal3")}
    rows = []
    for axis in (0, 1, 2):
        plane = plane_of_axis(affine, axis)

        def along(a: np.ndarray, axis: int = axis) -> np.ndarray:
            return np.ascontiguousarray(np.moveaxis(a, axis, 0))

        vol = Volume.from_array(along(raw), affine=np.diag([*spacing, 1.0]))
        paths = {
            "image": write_image(out / "images" / f"mni_{plane}.nii.gz", vol.data, vol, "int16"),
            "pseudo": write_labels(out / "images" / f"mni_{plane}_pseudo.nii.gz", along(kept), vol),
            "labels": write_labels(
                out / "images" / f"mni_{plane}_tune_hcpex.nii.gz", along(gt["hcpex"]), vol
            ),
        }
        rows.append({k: str(p.relative_to(out)) for k, p in paths.items()} | {"split": "train"})
        if plane == "axial":
            val = write_labels(
                out / "images" / "mni_axial_tune_aal3.nii.gz", along(gt["aal3"]), vol
            )
            rows.append(
                {"image": rows[-1]["image"], "labels": str(val.relative_to(out)), "split": "val"}
            )
    (out / "manifest.yaml").write_text(yaml.safe_dump({"volumes": rows}, sort_keys=False))
    print(f"wrote {out / 'manifest.yaml'} ({len(rows)} volumes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
