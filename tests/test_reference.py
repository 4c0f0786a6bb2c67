"""Supports from another scan (`session.reference`): resampling by physical size across
orientations, the paper's three parts, automatic extent, and the clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.core.volume import Volume
from napari_fob.model import build_fob
from napari_fob.prompting.generators import FobGenerator
from napari_fob.prompting.predictor import FobPredictor
from napari_fob.samples.phantom import make_abdomen_phantom, phantom_affine
from napari_fob.session import AnnotationSession, run
from napari_fob.session.reference import (
    across_volume,
    across_volume_options,
    array_codes,
    plan_supports,
    predict_from_reference,
    reference_parts,
    resample_support,
)


def _phantom(seed, shape=(40, 96, 96), spacing=(3.0, 2.4, 2.4)):
    image, labels, _ = make_abdomen_phantom(seed=seed, shape=shape, spacing=spacing)
    return Volume.from_array(image, affine=phantom_affine(shape, spacing)), labels


def _flipped(volume: Volume, labels: np.ndarray) -> tuple[Volume, np.ndarray]:
    """The same scan stored with every axis reversed (another orientation, same anatomy)."""
    n = np.array(volume.data.shape[::-1]) - 1  # file order (X, Y, Z)
    flip = np.diag([-1.0, -1.0, -1.0, 1.0])
    flip[:3, 3] = n
    data = np.ascontiguousarray(volume.data[::-1, ::-1, ::-1])
    return Volume.from_array(data, affine=volume.affine @ flip), labels[::-1, ::-1, ::-1].copy()


def test_resample_keeps_millimetres_and_anatomical_directions():
    # reference rows run A->P at 1 mm, cols R->L at 2 mm; query rows P->A at 0.5 mm, cols L->R
    image = np.zeros((40, 30), np.float32)
    mask = np.zeros((40, 30), bool)
    mask[5:15, 20:25] = True  # 10 mm x 10 mm, anterior and to the left of the centre
    image[mask] = 1.0
    img, m = resample_support(
        image, mask, ("P", "L"), (1.0, 2.0), ("A", "R"), (0.5, 0.5), (80, 120), fit=False
    )
    assert m.sum() == pytest.approx(20 * 20, rel=0.15)  # 100 mm^2 at 0.25 mm^2 per pixel
    rows, cols = np.nonzero(m)
    # anterior was row 5..14 of 40 (top); rows now increase towards A, so it is at the bottom
    assert rows.mean() > 40 and cols.mean() < 60
    # centre offset in mm is kept: reference (10 - 19.5) * 1 mm = -9.5 mm along P
    assert (rows.mean() - 39.5) * 0.5 == pytest.approx(9.5, abs=1.0)
    assert (cols.mean() - 59.5) * 0.5 == pytest.approx(-(22 - 14.5) * 2.0, abs=1.5)
    assert img[m].mean() > 0.9


def test_transposed_slices_are_turned_to_the_query_rows():
    mask = np.zeros((20, 40), bool)
    mask[2:6, 30:38] = True
    _, m = resample_support(
        mask.astype(np.float32),
        mask,
        ("A", "L"),
        (1.0, 1.0),
        ("L", "A"),
        (1.0, 1.0),
        (40, 20),
        fit=False,
    )
    assert m.sum() == mask.sum()
    assert m[30:38, 2:6].all()


def test_fit_shifts_a_support_that_would_leave_the_canvas():
    mask = np.zeros((100, 100), bool)
    mask[2:12, 40:60] = True
    _, cut = resample_support(mask * 1.0, mask, ("A", "R"), (1.0, 1.0), ("A", "R"), (1.0, 1.0),
                              (60, 100), fit=False)  # fmt: skip
    _, kept = resample_support(mask * 1.0, mask, ("A", "R"), (1.0, 1.0), ("A", "R"), (1.0, 1.0),
                               (60, 100))  # fmt: skip
    assert cut.sum() == 0 and kept.sum() == mask.sum()


def test_reference_parts_are_the_middle_of_three_parts():
    labels = np.zeros((30, 4, 4), np.uint8)
    labels[3:15, 1, 1] = 2
    assert reference_parts(labels, 2) == [5, 9, 13]
    with pytest.raises(ValueError, match="no voxel of label 1.*they hold 2"):
        reference_parts(labels, 1)


def test_plan_on_two_subjects_of_other_spacing_and_orientation():
    ref, ref_labels = _phantom(0)
    query, truth = _flipped(*_phantom(1, shape=(36, 88, 100), spacing=(3.5, 2.6, 2.3)))
    assert array_codes(ref) != array_codes(query)  # every axis runs the other way
    zs = [int(z) for z in np.flatnonzero((truth == 1).any(axis=(1, 2)))]
    plan = plan_supports(ref, ref_labels, query, 1, zs)
    assert [p.reference_slice for p in plan.parts] == reference_parts(ref_labels, 1)
    # the reference's first (inferior) part guides the query's inferior third: its LAST slices
    assert plan.parts[0].query_slices[-1] == zs[-1]
    assert sorted(z for p in plan.parts for z in p.query_slices) == zs
    for part in plan.parts:
        assert part.image01.shape == part.mask.shape == query.data.shape[1:]
        # the liver stays on the patient's right: columns now run R -> L... reversed to L -> R
        cols = np.nonzero(part.mask)[1]
        assert cols.mean() > query.data.shape[2] / 2
    auto = plan_supports(ref, ref_labels, query, 1, "auto")
    assert auto.extent.rule == "body-relative"
    assert abs(auto.extent.slices[0] - zs[0]) <= 4 and abs(auto.extent.slices[-1] - zs[-1]) <= 4


def test_fob_prompts_every_query_slice_without_the_in_volume_additions():
    ref, ref_labels = _phantom(0)
    query, truth = _phantom(1, shape=(36, 88, 100), spacing=(3.5, 2.6, 2.3))
    predictor = FobPredictor(build_fob("tiny"), device="cpu", **across_volume_options())
    assert predictor.location_prior is None and predictor.band_exclusion is None
    assert predictor.inward_prior is None and predictor.fg_core is None
    session = AnnotationSession(query, generator=FobGenerator(predictor=predictor), segmenter=None)
    zs = [int(z) for z in np.flatnonzero((truth == 2).any(axis=(1, 2)))]
    plan = plan_supports(ref, ref_labels, query, 2, zs)
    done = run(predict_from_reference(session, plan))
    assert done == zs
    for z in zs:
        p = session.prompts[(2, z)]
        assert p.slice_index == z and p.origin == "fob" and len(p.bg) == 10
        assert p.meta["generator"] == {"kind": "fob", "checkpoint": None}  # what made them
        assert session.confidence(2, z) is not None
    assert predictor.support_indices == []  # left cleared
    assert session.undo() and (2, zs[0]) not in session.prompts
    painted = zs[len(zs) // 2]
    session.set_support(2, painted, truth[painted] == 2)
    assert run(predict_from_reference(session, plan)) == [z for z in zs if z != painted]


def test_across_volume_turns_the_additions_off_and_refuses_registration():
    from napari_fob.prompting.generators import make_generator

    product = make_generator("fob", model=build_fob("tiny"), device="cpu")
    across = across_volume(product)
    assert across is not product and across.predictor.model is product.predictor.model
    assert across.describe()["location_prior"] is None and across.describe()["fg_relative"] == 0.7
    paper = make_generator("fob", model=build_fob("tiny"), device="cpu", paper_inference=True)
    assert across_volume(paper) is paper and across_volume(across) is across
    ring = make_generator("mask-ring")
    assert across_volume(ring) is ring
    with pytest.raises(ValueError, match="registration walks from a support within one scan"):
        across_volume(make_generator("registration"))


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("2D", "expected a 3D volume"),
        ("grid", "must be on the reference image's grid"),
        ("axis", "the reference's slices are taken along left-right"),
        ("label", "no voxel of label 9"),
    ],
)
def test_refusals_name_the_problem(problem, expected):
    ref, ref_labels = _phantom(0, shape=(20, 48, 48))
    query, _ = _phantom(1, shape=(20, 48, 48))
    label = 9 if problem == "label" else 1
    if problem == "2D":
        ref = Volume.from_array(ref.data[:1], affine=ref.affine)
        ref_labels = ref_labels[:1]
    if problem == "grid":
        ref_labels = ref_labels[:, :-1]
    if problem == "axis":  # the reference read with its first file axis (left-right) as slices
        data = np.ascontiguousarray(np.transpose(ref.to_file_order(ref.data), (0, 2, 1)))
        ref = Volume.from_array(data, affine=ref.affine, axes=(0, 2, 1))
        ref_labels = np.ascontiguousarray(np.transpose(ref_labels, (2, 0, 1)))
    with pytest.raises(ValueError, match=expected):
        plan_supports(ref, ref_labels, query, label, "auto")


def test_across_volume_keeps_the_authors_checkpoints_as_they_are():
    # their own inference has no in-volume additions to turn off (it used to be rebuilt as a
    # FobPredictor, which refuses an 'official' model)
    from napari_fob.prompting.generators import FobGenerator
    from napari_fob.prompting.official_compat import OfficialPredictor

    model = build_fob("official")
    assert model.config.inference == "official"
    generator = FobGenerator(predictor=OfficialPredictor(model, device="cpu"), checkpoint="x")
    assert across_volume(generator) is generator


def test_the_packaged_default_is_swapped_for_the_model_that_localises_across_scans():
    # the default's network needs the in-volume additions to localise; across scans the
    # packaged real-MRI model takes its place, with the generator's own inference settings
    from napari_fob.model.checkpoint import BUNDLED, DEFAULT_NAME
    from napari_fob.prompting.generators import make_generator
    from napari_fob.session.across import PACKAGED_DEFAULT
    from napari_fob.session.reference import ACROSS_VOLUME_MODEL

    assert PACKAGED_DEFAULT == DEFAULT_NAME and ACROSS_VOLUME_MODEL in BUNDLED
    product = make_generator("fob", checkpoint="default", device="cpu")
    across = across_volume(product)
    assert across.checkpoint == ACROSS_VOLUME_MODEL == "real-mri"
    assert across.describe()["checkpoint"] == "real-mri"
    assert across.predictor.model.config.encoder == "resnet18-s4"
    assert product.predictor.model.config.encoder == "resnet18"
    assert across.predictor.location_prior is None and across.predictor.fg_core is None
    assert across.predictor.fg_relative == 0.7 and across.predictor.prior_source == "support"
    assert across_volume(across) is across  # already the cross-scan generator
    paper = across_volume(make_generator("fob", device="cpu", paper_inference=True))
    assert paper.checkpoint == "real-mri" and paper.predictor.fg_relative is None
    assert paper.predictor.model is across.predictor.model  # loaded once per process
    # a model the user names is kept, under either of the default's names
    compact = across_volume(make_generator("fob", checkpoint="compact", device="cpu"))
    assert compact.checkpoint == "compact"
    assert compact.predictor.model.config.encoder == "resnet18"
    assert compact.predictor.location_prior is None
