"""Sam2Segmenter with randomly initialised SAM 2.1 models built from the sam2 package's configs:
faithful embeddings, mask choice, cache, checkpoints (and their errors), registry, `fob segment`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_fob.cli import main
from napari_fob.core import paths
from napari_fob.core.intensity import Window, to_uint8_rgb
from napari_fob.core.io import Volume, write_image, write_labels
from napari_fob.core.prompts import PromptSet
from napari_fob.segmenters import get_segmenter
from napari_fob.segmenters.cache import EmbeddingCache
from napari_fob.segmenters.sam2_models import SAM2_CONFIGS, build_sam2_model, trunk_shape
from napari_fob.segmenters.sam2_segmenter import Sam2Segmenter

SIZE = 256  # a small input keeps every test fast; the layers are those of the real hiera_t
WINDOW = Window(0.0, 1.0, "user")


@pytest.fixture(scope="module")
def model():
    return build_sam2_model("hiera_t", image_size=SIZE, seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, model):
    """hiera_t's random weights saved as Meta ships SAM 2.1 files ({"model": state dict})."""
    path = tmp_path_factory.mktemp("sam2") / "random_hiera_t.pt"
    torch.save({"model": {k: v.half() for k, v in model.state_dict().items()}}, path)
    return path


def _slice():
    yy, xx = np.mgrid[:60, :80]
    return ((((yy - 30) / 14.0) ** 2 + ((xx - 38) / 20.0) ** 2) <= 1).astype(np.float32)


def _prompts():
    return PromptSet(fg=[[30, 38], [28, 44]], bg=[[8, 10], [8, 70], [52, 70], [52, 10]])


def _segmenter(model, cache=None, **kw):
    return Sam2Segmenter.from_model(model, model_id="hiera_t-random-0", cache=cache, device="cpu",
                                    size="hiera_t", **kw)  # fmt: skip


def test_a_cached_embedding_decodes_as_the_packages_own_predictor(model):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    image = _slice()
    cache = EmbeddingCache()
    _segmenter(model, cache=cache).segment(image, _prompts(), window=WINDOW)  # fills the cache
    seg = _segmenter(model, cache=cache)  # its predictor only ever sees the cached arrays
    out = seg.segment_detailed(image, _prompts(), window=WINDOW)
    assert cache.stats()["hits"] == 1
    direct = SAM2ImagePredictor(model)
    direct._bb_feat_sizes = [(SIZE // 4,) * 2, (SIZE // 8,) * 2, (SIZE // 16,) * 2]
    direct.set_image(to_uint8_rgb(image, WINDOW))
    coords = np.array([[38, 30], [44, 28], [10, 8], [70, 8], [70, 52], [10, 52]], float)
    masks, iou, logits = direct.predict(
        point_coords=coords, point_labels=np.array([1, 1, 0, 0, 0, 0]), multimask_output=False
    )
    assert out.mask.shape == image.shape and out.mask.dtype == bool and not out.multimask
    np.testing.assert_array_equal(out.mask, masks[0] > 0)
    np.testing.assert_allclose(out.iou, iou, rtol=1e-5)
    np.testing.assert_allclose(out.low_res_logits, logits, rtol=1e-4, atol=1e-4)
    assert out.low_res_logits.shape == (1, SIZE // 4, SIZE // 4)


def test_a_lone_point_takes_the_highest_predicted_iou_of_three(model):
    seg = _segmenter(model)
    out = seg.segment_detailed(_slice(), PromptSet(fg=[[30, 38]], bg=[]), window=WINDOW)
    assert out.multimask and out.masks.shape == (3, 60, 80)
    assert out.chosen == int(np.argmax(out.iou))
    np.testing.assert_array_equal(out.mask, out.masks[out.chosen])
    empty = seg.segment(_slice(), PromptSet(fg=[], bg=[[5, 5]]), window=WINDOW)
    assert not empty.any() and empty.shape == (60, 80)


def test_mask_input_as_logits_or_binary_mask(model):
    seg = _segmenter(model)
    first = seg.segment_detailed(_slice(), _prompts(), window=WINDOW)
    again = seg.segment(_slice(), _prompts(), window=WINDOW, mask_input=first.low_res_logits)
    binary = seg.segment(_slice(), _prompts(), window=WINDOW, mask_input=_slice() > 0)
    assert again.shape == binary.shape == (60, 80)
    with pytest.raises(ValueError, match=r"mask_input: expected \(1, 64, 64\)"):
        seg.segment(_slice(), _prompts(), window=WINDOW, mask_input=np.zeros((3, 3)))


def test_cache_hit_skips_the_encoder_and_survives_a_new_segmenter(model, tmp_path):
    cache = EmbeddingCache(disk_root=tmp_path, max_disk_bytes=10**9)
    seg = _segmenter(model, cache=cache)
    first = seg.segment(_slice(), _prompts(), window=WINDOW)
    assert cache.stats()["misses"] == 1
    fresh = _segmenter(model, cache=EmbeddingCache(disk_root=tmp_path))
    calls = []
    fresh.model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        second = fresh.segment(_slice(), _prompts(), window=WINDOW)
    finally:
        fresh.model.image_encoder._forward_hooks.clear()
    assert not calls and fresh.cache.stats()["disk_hits"] == 1
    np.testing.assert_array_equal(first, second)


def test_every_size_is_the_packages_config():
    assert list(SAM2_CONFIGS) == ["hiera_t", "hiera_s", "hiera_b+", "hiera_l"]
    assert [trunk_shape(s) for s in SAM2_CONFIGS] == [(96, 12), (96, 16), (112, 24), (144, 48)]
    with pytest.raises(ValueError, match="hiera_q"):
        build_sam2_model("hiera_q")
    with pytest.raises(ValueError, match="multiple of 64"):
        build_sam2_model("hiera_t", image_size=300)


def test_checkpoint_loads_and_a_mismatch_names_both_sizes(model, checkpoint, tmp_path):
    seg = Sam2Segmenter(size="hiera_t", checkpoint=checkpoint, image_size=SIZE, device="cpu")
    key = "image_encoder.trunk.patch_embed.proj.weight"
    torch.testing.assert_close(seg.model.state_dict()[key], model.state_dict()[key].half().float())
    assert seg.describe()["model_type"] == "hiera_t" and seg.model_id.startswith(
        f"sam2.1-hiera_t-{SIZE}:"
    )
    with pytest.raises(ValueError, match=r"does not fit --sam2-model hiera_s.*looks like hiera_t"):
        build_sam2_model("hiera_s", image_size=SIZE, checkpoint=checkpoint)
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="not a PyTorch weights file"):
        build_sam2_model("hiera_t", image_size=SIZE, checkpoint=text)
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match="holds no SAM 2 image encoder"):
        build_sam2_model("hiera_t", image_size=SIZE, checkpoint=other)


def test_registry_sam2_auto_order_and_the_widgets_model_list(checkpoint, monkeypatch):
    with pytest.raises(FileNotFoundError, match="fob weights download sam2.1-hiera-t"):
        get_segmenter("sam2")
    with pytest.raises(ValueError, match="use the segmenter sam2"):
        get_segmenter("sam", sam_model="hiera_t")
    seg, notice = get_segmenter(
        "sam2", sam2_checkpoint=str(checkpoint), sam2_input_size=SIZE, device="cpu"
    )
    assert isinstance(seg, Sam2Segmenter) and notice is None
    # the widget's one model list: a SAM 2.1 size and its checkpoint in the SAM fields
    seg, _ = get_segmenter("sam2", sam_model="hiera_t", sam_checkpoint=str(checkpoint),
                           sam2_input_size=SIZE, device="cpu")  # fmt: skip
    assert seg.size == "hiera_t"
    monkeypatch.setenv("FOB_SAM2_CHECKPOINT", str(checkpoint))
    seg, notice = get_segmenter("auto", sam2_input_size=SIZE, device="cpu")
    assert isinstance(seg, Sam2Segmenter)  # no SAM checkpoint: SAM 2.1 is next in the order
    assert "no SAM vit_b checkpoint" in notice and f"using SAM 2.1 hiera_t ({checkpoint})" in notice


def _case(folder):
    zz, yy, xx = np.mgrid[:6, :48, :56]
    truth = (((zz - 3) / 3.5) ** 2 + ((yy - 24) / 12.0) ** 2 + ((xx - 28) / 14.0) ** 2) <= 1
    image = (truth * 60 + np.random.default_rng(0).normal(0, 4, truth.shape)).astype(np.float32)
    vol = Volume.from_array(image, affine=np.eye(4))
    support = np.zeros(truth.shape, np.uint8)
    support[3] = truth[3]
    folder.mkdir()
    write_image(folder / "image.nii.gz", image, vol)
    write_labels(folder / "support.nii.gz", support, vol)
    return folder / "image.nii.gz", folder / "support.nii.gz"


@pytest.mark.slow
def test_fob_segment_with_sam2_reuses_the_disk_cache_on_a_rerun(checkpoint, tmp_path, capsys):
    image, support = _case(tmp_path / "case")
    base = ["segment", str(image), "--support", str(support), "--prompts", "mask-ring",
            "--segmenter", "sam2", "--sam2-checkpoint", str(checkpoint), "--sam2-input-size",
            "128", "--device", "cpu", "--quiet"]  # fmt: skip
    # (the checkpoint's weights do not depend on the input size: 128 keeps four runs quick)
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    first = json.loads((tmp_path / "one" / "report.json").read_text())
    assert first["segmenter"]["kind"] == "sam2" and first["segmenter"]["input_size"] == 128
    assert first["embedding_cache"]["misses"] > 0 and first["embedding_cache"]["disk_hits"] == 0
    stores = list(paths.cache_dir().iterdir())
    assert len(stores) == 1 and stores[0].name.startswith("sam2.1-hiera_t-128")
    assert main([*base, "--out", str(tmp_path / "two")]) == 0
    second = json.loads((tmp_path / "two" / "report.json").read_text())
    assert second["embedding_cache"]["misses"] == 0
    assert second["embedding_cache"]["disk_hits"] == first["embedding_cache"]["misses"]
    # a damaged entry costs its recomputation, never a crash
    entry = sorted(stores[0].glob("*.npz"))[0]
    entry.write_bytes(entry.read_bytes()[:100])
    assert main([*base, "--out", str(tmp_path / "damaged")]) == 0
    damaged = json.loads((tmp_path / "damaged" / "report.json").read_text())
    assert damaged["embedding_cache"]["misses"] == 1
    assert damaged["embedding_cache"]["disk_hits"] == first["embedding_cache"]["misses"] - 1
    # switched off: nothing read from or written to disk
    assert main([*base, "--out", str(tmp_path / "three"), "--no-embedding-cache"]) == 0
    third = json.loads((tmp_path / "three" / "report.json").read_text())
    assert third["embedding_cache"]["disk_hits"] == 0 and third["embedding_cache"]["on_disk"] == 0
    capsys.readouterr()


def test_the_widgets_picker_offers_sam2_and_builds_it(checkpoint):
    from napari_fob._widgets.backends import BackendChoice, build
    from napari_fob._widgets.controls import SAM_MODELS, SEGMENTER_CHOICES

    assert "sam2" in SEGMENTER_CHOICES
    assert SAM_MODELS == ("vit_b", "vit_l", "vit_h", "hiera_t", "hiera_s", "hiera_b+", "hiera_l")
    with pytest.raises(FileNotFoundError, match="fob weights download sam2.1-hiera-s"):
        build(BackendChoice(prompts="mask-ring", segmenter="sam2", sam_model="hiera_s"))
    choice = BackendChoice(prompts="mask-ring", segmenter="sam2", sam_model="hiera_t",
                           sam_checkpoint=str(checkpoint), device="cpu")  # fmt: skip
    _, segmenter, text, _ = build(choice)
    assert isinstance(segmenter, Sam2Segmenter) and "Segmenter: sam2 hiera_t" in text


def test_the_widgets_cache_serves_a_reopened_scan_from_disk(model):
    """The annotator's cache (SessionGlue.load_backends) keeps embeddings on disk: a new
    annotator (the scan opened again) gets them without running the encoder."""
    from napari_fob._widgets.backends import BackendChoice
    from napari_fob._widgets.session_glue import SessionGlue

    def opened():
        glue = SessionGlue(hooks=None, controls=None)
        list(glue.load_backends(BackendChoice(prompts="mask-ring", segmenter="random-walker")))
        return _segmenter(model, cache=glue.cache)

    first = opened().segment(_slice(), _prompts(), window=WINDOW)
    again = opened()
    second = again.segment(_slice(), _prompts(), window=WINDOW)
    assert again.cache.stats()["disk_hits"] == 1 and again.cache.stats()["misses"] == 0
    np.testing.assert_array_equal(first, second)
