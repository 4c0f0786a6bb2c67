"""Real-anatomy cases in the ``fob sample`` layout, for the simulated annotator (issue 18).

`export_real_anatomy(folder, names)` writes the benchmark's real MRI (the ICBM152 template,
`_real_anatomy_data`) with the chosen structures of an atlas as labels 1..K (in the order
given), each structure's support on its central slice along the third voxel axis (the axial
slices the product's reader puts on axis 0; `central_slice`, the benchmark's convention), and
``labels.json``. Files are the image as stored (float32, the template's affine) and int16
labels, written atomically. Test structures may be exported: the interaction benchmark only
reports them and chooses nothing.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from _real_anatomy_data import central_slice, load_case, load_template
from napari_fob.core import atomic

AXIS = 2  # the slicing axis of the export: the template's third voxel axis (axial)


def _write(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    atomic.write_bytes(path, gzip.compress(img.to_bytes(), compresslevel=6))


def export_real_anatomy(folder: Path, names: list[str], *, atlas: str = "hcpex") -> dict[int, str]:
    """Write image/labels/support.nii.gz and labels.json of `names` into `folder`; returns
    {label value: structure name}."""
    case = load_case(atlas)
    image, _, _, affine = load_template()
    labels = np.zeros(image.shape, np.int16)
    support = np.zeros(image.shape, np.int16)
    out = {}
    for value, name in enumerate(names, start=1):
        mask = case.mask(name)
        if (labels[mask] != 0).any():
            raise ValueError(f"structure {name!r} overlaps one exported before it")
        labels[mask] = value
        z = central_slice(np.moveaxis(mask, AXIS, 0))
        support[:, :, z][mask[:, :, z]] = value
        out[value] = case.names[case.label_of(name)]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "image.nii.gz", np.asarray(image, np.float32), affine)
    _write(folder / "labels.nii.gz", labels, affine)
    _write(folder / "support.nii.gz", support, affine)
    atomic.write_text(
        folder / "labels.json", json.dumps({str(k): v for k, v in out.items()}, indent=2) + "\n"
    )
    return out
