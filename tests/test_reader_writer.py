"""Reader and writer through npe2, as napari calls them: NIfTI in with spacing, labels out
with the source affine and orientation."""

from __future__ import annotations

import nibabel as nib
import npe2
import numpy as np
import pytest

from napari_fob._reader import get_reader
from napari_fob._sample_data import abdomen_phantom, mni_brain
from napari_fob._writer import write_labels

AFFINE = np.array(
    [[0.0, 0.0, 2.5, -30.0], [-0.8, 0.0, 0.0, 40.0], [0.0, -0.8, 0.0, 25.0], [0, 0, 0, 1]]
)  # a permuted LPS-like grid: the third voxel axis runs along world x


@pytest.fixture
def nifti(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_sform(AFFINE, code=1)
    img.header.set_qform(AFFINE, code=1)
    path = tmp_path / "scan.nii.gz"
    img.to_filename(path)
    return path


pytestmark = pytest.mark.usefixtures("npe2_plugin")


def test_npe2_reads_a_nifti_with_spacing_and_geometry(nifti):
    layers = npe2.read([str(nifti)], stack=False, plugin_name="napari-fob")
    assert len(layers) == 1
    data, kwargs, layer_type = layers[0]
    assert layer_type == "image"
    assert kwargs["name"] == "scan"
    assert data.shape == (6, 5, 4)  # (k, j, i)
    assert data.dtype == np.float32
    assert tuple(kwargs["scale"]) == pytest.approx((2.5, 0.8, 0.8))
    meta = kwargs["metadata"]["napari_fob"]
    assert np.allclose(meta["affine"], AFFINE) and meta["axes"] == [2, 1, 0]


def test_npe2_writes_labels_with_the_source_affine(nifti, tmp_path):
    data, kwargs, _ = npe2.read([str(nifti)], stack=False, plugin_name="napari-fob")[0]
    labels = (data > 50).astype(np.int32) + (data > 100)
    out = tmp_path / "labels.nii.gz"
    attrs = {"name": "mask", "metadata": kwargs["metadata"], "scale": kwargs["scale"]}
    written = npe2.write(str(out), [(labels, attrs, "labels")], plugin_name="napari-fob")
    assert written == [str(out)]
    img, source = nib.load(out), nib.load(nifti)
    assert np.array_equal(img.affine, source.affine)
    assert img.shape == source.shape and img.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(img.dataobj), np.transpose(labels, (2, 1, 0)))


def test_reader_declines_other_files(tmp_path):
    assert get_reader(str(tmp_path / "image.tif")) is None
    assert get_reader([str(tmp_path / "a.nii"), str(tmp_path / "b.png")]) is None
    assert callable(get_reader(str(tmp_path / "a.NII.GZ")))


def test_writer_without_geometry_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="opened with napari-fob"):
        write_labels(str(tmp_path / "x.nii.gz"), np.zeros((2, 3, 4), np.uint8),
                     {"name": "Labels", "metadata": {}})  # fmt: skip
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("factory", [mni_brain, abdomen_phantom])
def test_sample_layers(factory, tmp_path):
    (image, image_kw, t0), (gt, gt_kw, t1), (support, sup_kw, t2) = factory()
    assert (t0, t1, t2) == ("image", "labels", "labels")
    assert image.shape == gt.shape == support.shape
    assert gt_kw["name"] == "ground truth" and sup_kw["name"] == "support"
    assert image_kw["scale"] == gt_kw["scale"] == sup_kw["scale"]
    names = gt_kw["metadata"]["names"]
    assert set(names) == {str(v) for v in np.unique(gt) if v}
    assert list(gt_kw["features"]["name"][1:]) == [names[k] for k in sorted(names, key=int)]
    low, high = image_kw["contrast_limits"]
    assert image.min() <= low < high <= image.max()
    # The support layer saves back on the sample's own grid.
    out = write_labels(str(tmp_path / "support.nii.gz"), support, sup_kw)[0]
    affine = np.asarray(image_kw["metadata"]["napari_fob"]["affine"])
    assert np.allclose(nib.load(out).affine, affine)


def test_a_label_map_written_by_nibabel_opens_as_labels_and_saves_back(tmp_path):
    labels = np.zeros((20, 24, 16), np.int16)
    labels[5:10, 4:12, 3:9] = 1
    labels[12:15, 10:20, 6:12] = 7
    img = nib.Nifti1Image(labels, AFFINE)
    img.header.set_sform(AFFINE, code=1)
    path = tmp_path / "seg.nii.gz"
    img.to_filename(path)
    data, kwargs, layer_type = npe2.read([str(path)], stack=False, plugin_name="napari-fob")[0]
    assert layer_type == "labels" and data.dtype == np.uint8
    assert set(np.unique(data)) == {0, 1, 7}
    out = tmp_path / "again.nii.gz"
    attrs = {"name": kwargs["name"], "metadata": kwargs["metadata"], "scale": kwargs["scale"]}
    npe2.write(str(out), [(data, attrs, "labels")], plugin_name="napari-fob")
    again = nib.load(out)
    assert np.allclose(again.affine, AFFINE)
    np.testing.assert_array_equal(np.asarray(again.dataobj), labels)


def test_an_integer_ct_opens_as_an_image(tmp_path):
    rng = np.random.default_rng(0)
    ct = rng.integers(-1000, 1500, size=(16, 16, 8)).astype(np.int16)
    path = tmp_path / "ct.nii.gz"
    nib.Nifti1Image(ct, AFFINE).to_filename(path)
    _, _, layer_type = npe2.read([str(path)], stack=False, plugin_name="napari-fob")[0]
    assert layer_type == "image"
