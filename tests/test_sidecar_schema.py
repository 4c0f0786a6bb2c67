"""Hand-edited, malformed ``prompts.json`` files (issue 16, part 2): each one is refused with a
ValueError naming the file and the field, never a KeyError / TypeError or a silent load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.session import AnnotationSession, run

Z, Y, X = 8, 24, 24


def image() -> np.ndarray:
    vol = np.random.default_rng(1).normal(100.0, 5.0, (Z, Y, X)).astype(np.float32)
    vol[:, 8:16, 8:16] += 150.0
    return vol


def models():
    return {"generator": MaskRingGenerator(grid_size=64, r=4), "segmenter": RandomWalkerSegmenter()}


@pytest.fixture
def saved(tmp_path):
    s = AnnotationSession(image(), window=(0.0, 300.0), names={1: "box"}, **models())
    mask = np.zeros((Y, X), bool)
    mask[8:16, 8:16] = True
    s.set_support(1, 4, mask)
    run(s.predict(1, [3, 5], threshold=0.4))
    run(s.commit(1, [3, 4, 5]))
    s.save(tmp_path)
    return tmp_path


def load(folder, volume=None):
    return AnnotationSession.load(folder, image() if volume is None else volume, **models())


def prompted(data) -> int:
    return next(i for i, r in enumerate(data["slices"]) if r["prompts"] and r["prompts"]["fg"])


def _set(path):
    """A mutation that sets the value at `path` (keys / indices; "P" = the prompted record)."""

    def mutate(data, value):
        target = data
        keys = [prompted(data) if k == "P" else k for k in path]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return mutate


def _drop(key):
    return lambda data, _: data.pop(key)


def _duplicate(name):
    return lambda data, _: data[name].append(dict(data[name][0]))


CASES = [
    # (id, mutation, value, field named in the message)
    ("rle-negative-start", _set(["supports", 0, "rle", 0, 0]), -5, "supports[0].rle"),
    ("rle-overlong", _set(["supports", 0, "rle", 0, 1]), 10**6, "supports[0].rle"),
    ("rle-zero-length", _set(["supports", 0, "rle", 0, 1]), 0, "supports[0].rle"),
    ("rle-empty", _set(["supports", 0, "rle"]), [], "supports[0].rle"),
    ("rle-triple", _set(["supports", 0, "rle", 0]), [1, 2, 3], "supports[0].rle[0]"),
    ("rle-float", _set(["supports", 0, "rle", 0, 0]), 1.5, "supports[0].rle[0][0]"),
    ("support-slice-999", _set(["supports", 0, "slice"]), 999, "supports[0].slice"),
    ("support-slice-negative", _set(["supports", 0, "slice"]), -1, "supports[0].slice"),
    ("support-label-0", _set(["supports", 0, "label"]), 0, "supports[0].label"),
    ("support-label-negative", _set(["supports", 0, "label"]), -2, "supports[0].label"),
    ("support-not-an-object", _set(["supports", 0]), "box", "supports[0]"),
    ("support-duplicate", _duplicate("supports"), None, "supports[1]: a second record"),
    ("supports-not-a-list", _set(["supports"]), {"1": []}, "supports"),
    ("slice-999", _set(["slices", 0, "slice"]), 999, "slices[0].slice"),
    ("slice-label-0", _set(["slices", 0, "label"]), 0, "slices[0].label"),
    ("slice-label-string", _set(["slices", 0, "label"]), "1", "slices[0].label"),
    ("slice-label-bool", _set(["slices", 0, "label"]), True, "slices[0].label"),
    ("slice-missing-label", lambda d, _: d["slices"][0].pop("label"), None, "slices[0].label"),
    ("slice-duplicate", _duplicate("slices"), None, "a second record for label 1"),
    ("status-unknown", _set(["slices", 0, "status"]), "approved", "slices[0].status"),
    ("status-number", _set(["slices", 0, "status"]), 3, "slices[0].status"),
    ("confidence-string", _set(["slices", 0, "confidence"]), "high", "slices[0].confidence"),
    ("prompts-a-list", _set(["slices", "P", "prompts"]), [1, 2], "prompts"),
    ("point-off-image", _set(["slices", "P", "prompts", "fg", 0, 1]), 500.0, "prompts.fg"),
    ("point-negative", _set(["slices", "P", "prompts", "bg", 0, 2]), -40.0, "prompts.bg"),
    ("point-nan", _set(["slices", "P", "prompts", "fg", 0, 1]), float("nan"), "prompts.fg[0][1]"),
    ("point-inf", _set(["slices", "P", "prompts", "fg", 0, 2]), float("inf"), "prompts.fg[0][2]"),
    ("point-two-coordinates", _set(["slices", "P", "prompts", "fg", 0]), [3.0, 4.0], "fg[0]"),
    ("point-string", _set(["slices", "P", "prompts", "fg", 0, 1]), "10", "prompts.fg[0][1]"),
    ("point-other-slice", _set(["slices", "P", "prompts", "fg", 0, 0]), 0.0, "prompts.fg[0]"),
    ("scores-too-few", _set(["slices", "P", "prompts", "bg_scores"]), [0.5], "bg_scores"),
    ("origin-unknown", _set(["slices", "P", "prompts", "origin"]), "oracle", "prompts.origin"),
    ("evidence-nan", _set(["slices", "P", "prompts", "evidence"]), float("nan"), "evidence"),
    ("shape-wrong", _set(["shape"]), [Z, Y, X + 1], "shape"),
    ("shape-two-axes", _set(["shape"]), [Z, Y], "shape"),
    ("shape-missing", _drop("shape"), None, "shape"),
    ("window-missing", _drop("window"), None, "window"),
    ("window-reversed", _set(["window", "low"]), 500.0, "window"),
    ("window-nan", _set(["window", "high"]), float("nan"), "window.high"),
    ("window-string", _set(["window", "low"]), "0", "window.low"),
    ("threshold-over-1", _set(["thresholds", "1"]), 2.0, "thresholds.1"),
    ("threshold-key", _set(["thresholds", "liver"]), 0.5, "thresholds"),
    ("names-key-0", _set(["names", "0"]), "background", "names"),
    ("names-value-number", _set(["names", "1"]), 7, "names.1"),
    ("version-string", _set(["version"]), "1", "version"),
    ("version-newer", _set(["version"]), 99, "newer"),
    ("format-other", _set(["format"]), "other", "napari-fob/prompts"),
]


@pytest.mark.parametrize(
    ("mutate", "value", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_malformed_sidecar_is_refused_naming_the_file_and_the_field(saved, mutate, value, field):
    path = saved / "prompts.json"
    data = json.loads(path.read_text())
    mutate(data, value)
    path.write_text(json.dumps(data))  # NaN / Infinity written as Python's json does
    with pytest.raises(ValueError) as caught:
        load(saved)
    message = str(caught.value)
    assert str(path) in message and field in message, message
    assert "Traceback" not in message and len(message) < 1200


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{not json", "not JSON"), ("[1, 2]", "expected a JSON object"), ("", "not JSON")],
)
def test_a_sidecar_that_is_no_json_object_is_refused(saved, text, expected):
    (saved / "prompts.json").write_text(text)
    with pytest.raises(ValueError, match=expected):
        load(saved)


def test_the_saved_sidecar_loads(saved):
    s = load(saved)
    assert sorted(s.supports[1]) == [4] and s.slice_status(1, 3) == "committed"


def test_a_saved_support_over_a_nan_voxel_is_refused(saved):
    volume = image()
    volume[4, 10, 10] = np.nan
    with pytest.raises(ValueError, match=r"field supports\[0\]: support of label 1 on slice 4"):
        load(saved, volume)


def test_several_problems_are_listed_together(saved):
    path = saved / "prompts.json"
    data = json.loads(path.read_text())
    data["supports"][0]["slice"] = 999
    data["slices"][0]["status"] = "approved"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as caught:
        load(saved)
    assert "supports[0].slice" in str(caught.value) and "slices[0].status" in str(caught.value)
