"""The authors' architecture (`official` config, `model.official`) and its conversion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import official_recipe as recipe
import pytest
import torch

from napari_fob.model import build_fob, convert
from napari_fob.model.checkpoint import load_checkpoint
from napari_fob.model.config import CONFIGS, FobConfig, get_config


def test_official_config_is_their_architecture():
    cfg = CONFIGS["official"]
    assert (cfg.architecture, cfg.inference) == ("official", "official")
    assert (cfg.bcm_heads, cfg.bcm_ffn, cfg.feature_channels) == (1, 512, 512)  # expansion 1
    assert (cfg.ring_kernel, 2 * cfg.ring_r + 1, 2 * (cfg.ring_r + cfg.ring_eps) + 1) == (
        "square",
        15,
        21,
    )
    assert (cfg.spr_offsets, cfg.spr_iters, cfg.fg_threshold, cfg.grid_size) == (8, 3, 0.96, 256)
    assert FobConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "fields", [{"inference": "official"}, {"architecture": "official"}, {"inference": "x"}]
)
def test_official_inference_only_with_official_architecture(fields):
    with pytest.raises(ValueError, match="FobConfig"):
        get_config("tiny", **fields)


# --- conversion and equivalence with the authors' code (fixture: scripts/official_reference.py)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "official_equivalence.json").read_text())


@pytest.fixture(scope="module")
def zero_state() -> dict[str, torch.Tensor]:
    """Their state dict with every tensor zero (shapes from the fixture's key list)."""
    dtypes = {"torch.int64": torch.int64}
    return {k: torch.zeros(s, dtype=dtypes.get(d, torch.float32)) for k, s, d in FIXTURE["keys"]}


def test_their_keys_map_onto_the_official_network(zero_state):
    state = convert.official_state_dict(zero_state, source="theirs")
    assert len(state) == len(zero_state) - len(convert.UNUSED_KEYS)
    assert state["bcm.layer.qkv.weight"].shape == (1536, 512)  # their mha.in_proj_weight


@pytest.mark.parametrize("wrap", ["bare", "module", "state_dict", "model"])
def test_unwrap_accepts_their_saving_styles(zero_state, wrap):
    sd = {"module." + k: v for k, v in zero_state.items()} if wrap == "module" else zero_state
    obj = {wrap: sd} if wrap in ("state_dict", "model") else sd
    assert set(convert.unwrap_state_dict(obj, source="x")) == set(zero_state)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda s: s.pop("refine.norm3.bias"), ["missing", "spr.norm3.bias"]),
        (lambda s: s.update({"extra.layer.weight": torch.zeros(2)}), ["extra.layer.weight"]),
        (lambda s: s.update({"head.head.3.weight": torch.zeros(8, 512, 1, 1)}), ["bcm.head.net.3"]),
    ],
)
def test_conversion_refuses_what_does_not_fit_naming_it(zero_state, change, words):
    state = dict(zero_state)
    change(state)
    with pytest.raises(ValueError) as err:
        convert.official_state_dict(state, source="theirs.pth")
    assert all(w in str(err.value) for w in words + ["theirs.pth"])


def test_conversion_refuses_a_file_that_is_not_a_state_dict(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save([torch.zeros(2)], bad)
    with pytest.raises(ValueError, match="state dict"):
        convert.convert_official(bad, tmp_path / "out.pt")
    with pytest.raises(FileNotFoundError, match="huggingface"):
        convert.convert_official(tmp_path / "absent.pth", tmp_path / "out.pt")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """The recipe's weights saved as their training code saves them, then converted."""
    folder = tmp_path_factory.mktemp("official")
    source = folder / "theirs.pth"
    torch.save(recipe.deterministic_state(FIXTURE["keys"]), source)
    return convert.convert_official(source, folder / "fob-abd-ct.pt", name="fob-abd-ct")


@pytest.mark.slow
def test_converted_checkpoint_describes_itself(converted):
    ckpt = load_checkpoint(converted)  # weights_only=True, content sha256 checked
    origin = ckpt["origin"]
    assert origin["licence"] == "Apache-2.0" and origin["name"] == "fob-abd-ct"
    assert origin["source_sha256"] == convert.file_sha256(converted.parent / "theirs.pth")
    assert ckpt["config"]["inference"] == "official"


@pytest.fixture(scope="module")
def ours(converted):
    """Our compatibility mode on the fixture's inputs: support, intermediates, prompt sets."""
    from napari_fob.prompting import official_compat as oc
    from napari_fob.prompting.predictor import load_predictor

    predictor = load_predictor(str(converted), device="cpu")
    assert isinstance(predictor, oc.OfficialPredictor)
    inputs = recipe.mni_inputs()
    stats = tuple(FIXTURE["zscore"])
    model, s = predictor.model, predictor.grid_size
    with torch.inference_mode():
        sup = oc.encode_support(
            model,
            oc.resize_bilinear(oc.zscore(inputs["support_image"], stats), s),
            oc.resize_bilinear(inputs["support_mask"].astype(np.float32), s),
            stats,
        )
        batch = np.stack(
            [oc.resize_bilinear(oc.zscore(q, stats), s) for q in inputs["query_images"]]
        )
        out = oc.predict_official(model, sup, batch)
    predictor.set_support(
        inputs["support_image"], inputs["support_mask"], slice_index=recipe.SUPPORT_Z
    )
    sets = predictor.predict(inputs["query_images"][:1], slice_indices=list(recipe.QUERY_Z[:1]))
    return {"support": sup, "out": out, "sets": sets, "shape": inputs["support_image"].shape}


@pytest.mark.slow
def test_support_ring_and_prototype_match_their_code(ours):
    from napari_fob.prompting.official_contour import order_from_leftmost

    ring = np.array(FIXTURE["support_ring_xy"])
    np.testing.assert_array_equal(ours["support"].ring_xy, ring[order_from_leftmost(ring)])
    fg = ours["support"].fg_prototype[0].numpy()
    np.testing.assert_allclose(fg, FIXTURE["fg_prototype"], rtol=1e-3, atol=1e-4)
    assert ours["support"].stats == pytest.approx(FIXTURE["zscore"], rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("j", range(len(recipe.QUERY_Z)))
def test_outputs_match_their_code(ours, j):
    ref, out, step = FIXTURE["queries"][j], ours["out"], FIXTURE["heat_step"]
    assert float(out.threshold[j]) == pytest.approx(ref["threshold"], abs=1e-3)
    heat = out.heatmaps[j].numpy()
    scale = max(abs(v) for v in ref["heat_max"])
    np.testing.assert_allclose(heat.reshape(10, -1).max(1), ref["heat_max"], atol=1e-3 * scale)
    np.testing.assert_allclose(heat[:, ::step, ::step], ref["heat_sub"], atol=1e-3 * scale)
    np.testing.assert_array_equal(out.coarse_xy[j], ref["coarse_xy"])  # argmax: exact
    np.testing.assert_allclose(out.refined_xy[j], ref["bg_xy"], atol=0.5)
    np.testing.assert_allclose(out.fg_xy[j], ref["fg_xy"], atol=0.5)


@pytest.mark.slow
def test_predictor_maps_their_points_to_slice_pixels(ours):
    from napari_fob import geometry

    for ps, ref in zip(ours["sets"], FIXTURE["queries"][:1], strict=True):
        assert ps.slice_index == ref["z"] and ps.meta["inference"] == "official"
        for got, xy in ((ps.bg, ref["bg_xy"]), (ps.fg, ref["fg_xy"])):
            want = geometry.grid_to_slice(np.asarray(xy)[:, ::-1], ours["shape"], 256)
            np.testing.assert_allclose(got, want, atol=0.5 * ours["shape"][0] / 256)


def test_border_following_matches_opencv():
    from napari_fob.prompting.official_contour import largest_outer_contour

    masks = recipe.contour_masks()
    assert len(masks) == len(FIXTURE["contours"])
    for mask, want in zip(masks, FIXTURE["contours"], strict=True):
        np.testing.assert_array_equal(largest_outer_contour(mask), want)


def test_open_contour_sampling_and_their_order():
    from napari_fob.prompting.official_contour import order_from_leftmost, sample_open_contour

    square = np.array([[0, 0], [0, 9], [9, 9], [9, 0]])  # (x, y), the way OpenCV walks it
    pts = sample_open_contour(square, 4)
    np.testing.assert_array_equal(pts, [[0, 0], [0, 9], [9, 9], [9, 0]])  # closing edge unused
    order = order_from_leftmost(np.array([[5, 0], [0, 5], [5, 9], [9, 5]]))
    np.testing.assert_array_equal(order, [0, 1, 3, 2])  # from (0, 5): -45, 0, 0, 39 deg


def test_weights_list_names_the_authors_checkpoints(tmp_path, monkeypatch, capsys):
    from napari_fob.cli import main

    monkeypatch.setenv("FOB_HOME", str(tmp_path))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for word in ("fob-abd-ct", "fob-abd-mri", "Apache-2.0", "huggingface.co/PrimeBo1/FoB_SAM"):
        assert word in out
    assert "86.21" in out and "84.46" in out and "fob-abd-ct.pt  [missing]" in out


def test_a_missing_converted_checkpoint_says_how_to_get_it(tmp_path, monkeypatch):
    from napari_fob.model.checkpoint import resolve_checkpoint

    monkeypatch.setenv("FOB_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        resolve_checkpoint("fob-abd-mri")
    message = str(err.value)
    assert "fob weights convert" in message and "huggingface.co/PrimeBo1/FoB_SAM" in message
    assert str(tmp_path / "weights" / "fob-abd-mri.pt") in message


@pytest.mark.slow
def test_cli_converts_and_the_name_runs_in_compatibility_mode(
    converted, tmp_path, monkeypatch, capsys
):
    from napari_fob._widgets.backends import BackendChoice, build
    from napari_fob.cli import main
    from napari_fob.prompting.official_compat import OfficialPredictor

    monkeypatch.setenv("FOB_HOME", str(tmp_path))
    source, out = converted.parent / "theirs.pth", tmp_path / "weights" / "fob-abd-ct.pt"
    assert main(["weights", "convert", str(source), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    choice = BackendChoice(fob_checkpoint="fob-abd-ct", segmenter="random-walker", device="cpu")
    generator, _, text, _ = build(choice)  # what the annotator's model picker does
    assert isinstance(generator.predictor, OfficialPredictor), text
    assert generator.describe()["config"]["inference"] == "official"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    assert main(["weights", "convert", str(bad), "--out", str(tmp_path / "x.pt")]) == 2
    assert "bad.pth" in capsys.readouterr().err
    # the converted file is kept unless asked, and the source is never the output
    assert main(["weights", "convert", str(source), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["weights", "convert", str(source), "--out", str(source), "--overwrite"]) == 2
    assert "being converted" in capsys.readouterr().err and source.is_file()
    assert main(["weights", "convert", str(source), "--out", str(out), "--overwrite"]) == 0


def test_the_official_network_refuses_an_episode_forward():
    with torch.device("meta"):
        model = build_fob("official")
    with pytest.raises(RuntimeError, match="OfficialPredictor"):
        model(torch.zeros(1, 1, 256, 256))


@pytest.mark.slow
def test_fob_segment_runs_a_converted_checkpoint(converted, tmp_path):
    import nibabel as nib

    from napari_fob.cli import main
    from napari_fob.samples.mni import IMAGE_FILE, LABELS_FILE

    labels = nib.load(LABELS_FILE)
    file_labels = np.asarray(labels.dataobj)
    support = np.zeros_like(file_labels, dtype=np.uint8)  # one painted slice: axial z = 45
    support[..., recipe.SUPPORT_Z] = file_labels[..., recipe.SUPPORT_Z] == recipe.LABEL
    nib.save(nib.Nifti1Image(support, labels.affine), tmp_path / "support.nii.gz")
    out = tmp_path / "out"
    args = ["segment", str(IMAGE_FILE), "--support", str(tmp_path / "support.nii.gz")]
    args += ["--out", str(out), "--fob-checkpoint", str(converted), "--labels", "1"]
    args += ["--segmenter", "random-walker", "--slices", "44:47", "--device", "cpu"]
    args += ["--fob-prior", "support"]  # this project's option: said to be ignored
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["prompts"]["config"]["inference"] == "official"
    assert any(n.startswith("--fob-prior ignored") for n in report["notices"]), report["notices"]
    assert (out / "labels.nii.gz").is_file()
