"""The annotator's rules that need no viewer: review navigation, model choice and status line,
and the prompt-to-layer translation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob._widgets import layers as L
from napari_fob._widgets.backends import BackendChoice, build
from napari_fob._widgets.review import SliceEntry, next_to_review
from napari_fob.core.prompts import PromptSet


def test_next_to_review_goes_worst_first_skips_committed_and_stops_at_the_ends():
    entries = [
        SliceEntry(2, "predicted", 0.9, False),
        SliceEntry(4, "committed", 0.9, False),
        SliceEntry(5, "committed", 0.2, True),  # committed but doubtful: still to review
        SliceEntry(7, "support", None, False),
        SliceEntry(9, "edited", 0.8, False),
        SliceEntry(11, "re-predicted", 0.85, False),  # re-predicted from a correction
    ]
    assert next_to_review(entries, 7, 1) == 5  # from a slice not to review: the worst
    assert next_to_review(entries, 5, 1) == 9
    assert next_to_review(entries, 9, 1) == 11
    assert next_to_review(entries, 11, 1) == 2
    assert next_to_review(entries, 2, 1) is None
    assert next_to_review(entries, 2, -1) == 11
    assert next_to_review(entries, 5, -1) is None
    assert next_to_review(entries, 7, -1) == 2
    with pytest.raises(ValueError, match="step"):
        next_to_review(entries, 2, 2)


@pytest.mark.usefixtures("without_shipped_model")
def test_status_line_names_the_fallbacks_and_details_say_why():
    gen, seg, text, details = build(BackendChoice(prompts="fob", segmenter="auto"))
    assert gen.name == "mask-ring" and "random" in type(seg).__name__.lower()
    assert text == (
        "Prompts: mask-ring baseline (FoB default weights not installed) · "
        "Segmenter: random walker (no SAM checkpoint found)"
    )
    assert "fob-compact.pt" in details and "fob weights download sam-vit-b" in details
    _, _, text, details = build(BackendChoice(prompts="mask-ring", segmenter="random-walker"))
    assert text == "Prompts: mask-ring baseline · Segmenter: random walker" and details == ""


def test_the_registration_baseline_is_offered_and_built():
    from napari_fob._widgets.controls import PROMPT_CHOICES, PROMPT_NAMES

    assert len(PROMPT_CHOICES) == len(PROMPT_NAMES)
    assert PROMPT_NAMES[PROMPT_CHOICES.index("registration baseline")] == "registration"
    choice = BackendChoice(prompts="registration", segmenter="random-walker")
    assert choice.describe().startswith("Prompts: registration baseline · ")
    gen, _, text, details = build(choice)
    assert gen.name == "registration" and details == ""
    assert text == "Prompts: registration baseline · Segmenter: random walker"


def test_missing_explicit_checkpoints_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        build(BackendChoice(prompts="fob", fob_checkpoint=str(tmp_path / "nope.pt")))
    with pytest.raises(FileNotFoundError):
        build(BackendChoice(prompts="mask-ring", segmenter="sam"))


def test_points_table_and_rings_in_ring_order():
    ring = np.array([[0.0, 5.0], [5.0, 10.0], [10.0, 5.0], [5.0, 0.0]])
    prompts = {
        (1, 3): PromptSet(fg=[[5.0, 5.0]], bg=ring, label=1, slice_index=3, fg_scores=[0.7]),
        (1, 1): PromptSet(fg=[[4.0, 4.0], [6, 6]], bg=ring + 1, label=1, slice_index=1),
        (2, 3): PromptSet(fg=[[1.0, 1.0]], bg=ring, label=2, slice_index=3),
    }
    data, feats = L.points_table(prompts, 1, "fg")
    np.testing.assert_array_equal(data[:, 0], [1, 1, 3])  # slices in order, label 2 left out
    assert list(feats["index"]) == [0, 1, 0] and feats["score"].iloc[2] == 0.7
    assert np.isnan(feats["score"].iloc[0])
    paths, slices = L.ring_paths(prompts, 1)
    assert slices == [1, 3] and paths[1].shape == (5, 3)
    np.testing.assert_array_equal(paths[1][:4, 1:], ring)
    np.testing.assert_array_equal(paths[1][4], paths[1][0])
    bg, bg_feats = L.points_table(prompts, 1, "bg")
    shuffled = np.random.default_rng(0).permutation(len(bg))
    back = L.slice_points(bg[shuffled], bg_feats.iloc[shuffled].reset_index(drop=True), 3)
    np.testing.assert_array_equal(back, ring)
