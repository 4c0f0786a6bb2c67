"""Cross-volume benchmark (issue 20): supports from another scan, the paper's few-shot setting.

One labelled reference guides other subjects, never co-registered with it. Per structure, the
reference's extent is split into three parts; the middle slice of each is resampled by
physical size onto the query's slice grid (`napari_fob.session.reference`) and prompts the
matching third of the query's true extent (the paper's protocol: the query slices that hold
the structure), as ``fob segment --reference-image`` does. Methods, on the same slices:

- ``fob``: the product's FoB across scans (`session.across.across_volume`: the in-volume
  additions off; ``--checkpoint default`` runs the real-MRI model, `ACROSS_VOLUME_MODEL`, as
  the product does, ``--checkpoint compact`` the in-volume default);
- ``fob-paper``: the same network as the paper predicts (``paper_inference=True``);
- ``copy``: the reference slices' own points at the same position relative to the image
  centre, in millimetres (the resampled support, not shifted to fit);
- ``atlas-registration``: the reference registered to the query with SimpleITK (affine, then
  B-spline) and its labels warped (`_cross_subjects.register_labels`): what users do today;
- ``oracle``: ring and foreground points drawn from the query's TRUE mask on each slice, as
  mask-ring draws them from a support: a reference ceiling of these prompts with this
  segmenter (the real-anatomy benchmark's oracle, across scans; not a proven bound).

Data: (1) **phantoms**: the abdomen phantom, reference seed 0, queries of other seeds
(different subjects) on other grids, one stored with every axis reversed; (2) **real
anatomy**: the benchmark's MRI template with the HCPEx atlas as the reference, and queries made
into distinct subjects by `_cross_subjects.make_subject` (random rigid + scale transform,
smooth deformation, bias field, noise, another voxel size, field of view and orientation;
seeded). Structures: a handful per split (`STRUCTURES`), tune and test as in
`_real_anatomy_data` (no constant of the method is chosen on test). Slices are axial. The
random walker segments every method's prompts; Dice is 3D over the query's extent. The
automatic extent (body-relative rule) is scored separately: its error in slices at each end.

Writes ``bench/results/cross_volume.json`` and the "## Supports from another scan" section of
``docs/benchmarks.md``. ``--quick``: small phantoms only (one query, two structures), to
``--out`` only. Run: ``.venv/bin/python bench/cross_volume.py [--quick --out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cross_subjects import make_subject, register_labels  # noqa: E402
from _pq_report import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("fob", "fob-paper", "copy", "atlas-registration", "oracle")
TITLE = "Supports from another scan"
PARTIAL: Path | None = None  # where finished rows are kept during a run (`main` sets it)
#: A handful per split (CPU budget): two hemispheres, lobes and nuclei of different sizes.
STRUCTURES = {
    "tune": ("Primary_Visual_Cortex_L", "Primary_Motor_Cortex_R", "Area_TG_dorsal_L",
             "Area_PFm_Complex_R"),
    "test": ("Thalamus_L", "Caudate_R", "Putamen_L", "Hippocampus_R"),
}  # fmt: skip
#: Query subjects of the real anatomy: (seed, voxel size per file axis, axes stored reversed).
REAL_QUERIES = (
    (1, (1.2, 1.1, 1.3), (True, True, False)),
    (2, (1.0, 1.3, 1.15), (False, True, True)),
)
#: Phantom queries: (seed, (Z, Y, X) shape, spacing, every axis reversed).
PHANTOM_QUERIES = (
    (1, (56, 140, 150), (2.8, 1.7, 1.6), True),
    (2, (70, 150, 150), (2.3, 1.6, 1.6), False),
)


def volume_of(file_data: np.ndarray, affine: np.ndarray):
    """A `Volume` sliced along the file's third axis, from a file-order (I, J, K) array."""
    from napari_fob.core.volume import Volume

    return Volume.from_array(
        np.ascontiguousarray(np.transpose(file_data, (2, 1, 0))), affine=affine
    )


def make_methods(checkpoint: str) -> dict:
    """The generators as `fob segment --reference-image` builds them (`across_volume`: the
    in-volume additions off, and the packaged default's network swapped for
    `ACROSS_VOLUME_MODEL`'s when `checkpoint` is "default")."""
    from napari_fob.prompting.generators import make_generator
    from napari_fob.session.reference import across_volume

    def fob(**kw):
        return across_volume(make_generator("fob", checkpoint=checkpoint, device="cpu", **kw))

    return {"fob": fob(), "fob-paper": fob(paper_inference=True), "copy": make_generator("copy")}


def oracle_dice(segmenter, query, truth, label, zs) -> float:
    """3D Dice over `zs` of the segmenter given each slice's prompts drawn from its own true
    mask (mask-ring's rule), on the window the session would use; a slice whose mask vanishes
    at the model grid gets no mask, as every method's would."""
    from napari_fob.core.metrics import dice
    from napari_fob.prompting.generators import make_generator
    from napari_fob.session import AnnotationSession

    generator = make_generator("mask-ring")
    session = AnnotationSession(query, generator=generator, segmenter=segmenter)
    masks = np.zeros((len(zs),) + truth.shape[1:], bool)
    for i, z in enumerate(zs):
        generator.clear_supports()
        image = session.image01(z)
        try:
            generator.set_support(image, truth[z] == label, slice_index=z)
        except ValueError:  # too small for the grid
            continue
        prompts = generator.predict([image], slice_indices=[z])[0]
        masks[i] = segmenter.segment(session.volume[z], prompts, window=session.window)
    return dice(masks, truth[zs] == label)


def run_structure(methods, segmenter, ref, ref_labels, query, truth, label, warped) -> dict:
    """Dice of every method and the automatic extent's error for one structure of one query."""
    from napari_fob.core.metrics import dice
    from napari_fob.session import AnnotationSession, run
    from napari_fob.session.reference import plan_supports, predict_from_reference

    zs = [int(z) for z in np.flatnonzero((truth == label).any(axis=(1, 2)))]
    row: dict = {"slices": len(zs)}
    for name, generator in methods.items():
        session = AnnotationSession(query, generator=generator, segmenter=segmenter)
        plan = plan_supports(ref, ref_labels, query, label, zs, fit=name != "copy")
        done = run(predict_from_reference(session, plan))
        run(session.commit(label, done))
        row[name] = dice(session.labels[zs] == label, truth[zs] == label)
    row["atlas-registration"] = dice(warped[zs] == label, truth[zs] == label)
    row["oracle"] = oracle_dice(segmenter, query, truth, label, zs)
    auto = plan_supports(ref, ref_labels, query, label, "auto").extent
    row["auto_extent"] = {"start_error": auto.slices[0] - zs[0],
                          "end_error": auto.slices[-1] - zs[-1], "sure": auto.sure}  # fmt: skip
    return row


def phantom_data(quick: bool):
    """(reference Volume, labels, [(query Volume, truth, name, record)], {label: name})."""
    from napari_fob.samples.phantom import NAMES, make_abdomen_phantom, phantom_affine

    shape, spacing = ((32, 80, 80), (5.0, 3.0, 3.0)) if quick else ((64, 160, 160), (2.5, 1.5, 1.5))
    image, labels, _ = make_abdomen_phantom(seed=0, shape=shape, spacing=spacing)
    from napari_fob.core.volume import Volume

    ref = Volume.from_array(image, affine=phantom_affine(shape, spacing))
    queries = []
    for seed, q_shape, q_spacing, flip in PHANTOM_QUERIES[:1] if quick else PHANTOM_QUERIES:
        if quick:
            q_shape, q_spacing = (28, 70, 75), (5.6, 3.4, 3.2)
        data, truth, _ = make_abdomen_phantom(seed=seed, shape=q_shape, spacing=q_spacing)
        affine = phantom_affine(q_shape, q_spacing)
        if flip:  # every axis stored the other way round
            n = np.array(q_shape[::-1]) - 1
            back = np.diag([-1.0, -1.0, -1.0, 1.0])
            back[:3, 3] = n
            data, truth, affine = data[::-1, ::-1, ::-1], truth[::-1, ::-1, ::-1], affine @ back
        query = Volume.from_array(np.ascontiguousarray(data), affine=affine)
        record = {"seed": seed, "shape": list(q_shape), "spacing": list(q_spacing), "flip": flip}
        queries.append((query, np.ascontiguousarray(truth), f"phantom seed {seed}", record))
    names = dict(list(NAMES.items())[:2] if quick else NAMES.items())
    return ref, labels, queries, names


def real_data():
    from _real_anatomy_data import load_case

    case = load_case("hcpex")
    ref = volume_of(case.image, case.affine)
    ref_labels = np.ascontiguousarray(np.transpose(case.labels, (2, 1, 0)))
    queries = []
    for seed, spacing, flip in REAL_QUERIES:
        s = make_subject(case.image, case.labels, case.affine, seed, spacing=spacing, flip=flip)
        truth = np.ascontiguousarray(np.transpose(s.labels, (2, 1, 0)))
        queries.append((volume_of(s.image, s.affine), truth, f"subject {seed}", s.transform))
    names = {case.label_of(n): n for split in ("tune", "test") for n in STRUCTURES[split]}
    return ref, ref_labels, queries, names, case


def _warp(ref, ref_labels, query, seed: int) -> np.ndarray:
    """The reference labels registered onto the query (array order), `register_labels`."""
    warped = register_labels(
        query.to_file_order(query.data), query.affine, ref.to_file_order(ref.data), ref.affine,
        ref.to_file_order(ref_labels), seed=seed,
    )  # fmt: skip
    return np.ascontiguousarray(np.transpose(warped, query.axes))


def evaluate(dataset, ref, ref_labels, queries, names, methods, segmenter, split_of, rows) -> list:
    """Append one row per (query, structure) to `rows` (kept by the caller if a run stops)."""
    for i, (query, truth, qname, record) in enumerate(queries):
        t = time.perf_counter()
        warped = _warp(ref, ref_labels, query, seed=i)
        reg_s = time.perf_counter() - t
        for label, name in names.items():
            t = time.perf_counter()
            row = run_structure(methods, segmenter, ref, ref_labels, query, truth, label, warped)
            row |= {"dataset": dataset, "query": qname, "structure": name, "split": split_of(name),
                    "transform": record, "seconds": round(time.perf_counter() - t, 1),
                    "registration_seconds": round(reg_s, 1)}  # fmt: skip
            rows.append(row)
            if PARTIAL is not None:  # a long run that stops keeps what it measured
                PARTIAL.write_text(json.dumps(rows, indent=1, default=float))
            print(
                f"{dataset} {qname} {name}: "
                + ", ".join(f"{m} {row[m]:.3f}" for m in METHODS)
                + f" auto {row['auto_extent']}",
                flush=True,
            )
    return rows


def summarise(rows: list) -> dict:
    """Mean Dice per (dataset, split) and method; the automatic extent's mean |error|."""
    out: dict = {}
    for key in sorted({(r["dataset"], r["split"]) for r in rows}):
        group = [r for r in rows if (r["dataset"], r["split"]) == key]
        entry = {m: float(np.mean([r[m] for r in group])) for m in METHODS}
        ends = [abs(r["auto_extent"][k]) for r in group for k in ("start_error", "end_error")]
        entry |= {
            "n": len(group),
            "auto_extent_mean_abs_error": float(np.mean(ends)),
            "auto_extent_within_2": float(np.mean([e <= 2 for e in ends])),
            "auto_extent_sure": float(np.mean([r["auto_extent"]["sure"] for r in group])),
        }
        out[f"{key[0]}/{key[1]}"] = entry  # fmt: skip
    return out


def run_benchmark(args: argparse.Namespace) -> dict:
    from napari_fob.segmenters import get_segmenter

    t0 = time.perf_counter()
    methods = make_methods(args.checkpoint)
    segmenter, _ = get_segmenter("random-walker")
    rows: list = []
    if not args.quick:  # the real anatomy first: it is what the numbers are for
        from _real_anatomy_data import split_of

        ref, labels, queries, names, _ = real_data()
        evaluate("real", ref, labels, queries, names, methods, segmenter, split_of, rows)
    ref, labels, queries, names = phantom_data(args.quick)
    evaluate("phantom", ref, labels, queries, names, methods, segmenter, lambda n: "phantom", rows)
    return {"rows": rows, "summary": summarise(rows), "machine": machine(),
            "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.perf_counter() - t0, 1),
            "structures": STRUCTURES, "methods": list(METHODS)}  # fmt: skip


def markdown(report: dict) -> str:
    lines = ["| data / split | structures x queries | " + " | ".join(METHODS)
             + " | auto extent: mean abs error (slices), within 2, marked sure |",
             "|---|---|" + "---|" * len(METHODS) + "---|"]  # fmt: skip
    for key, e in report["summary"].items():
        cells = " | ".join(f"{e[m]:.3f}" for m in METHODS)
        lines.append(f"| {key} | {e['n']} | {cells} | {e['auto_extent_mean_abs_error']:.1f}, "
                     f"{e['auto_extent_within_2']:.0%}, {e['auto_extent_sure']:.0%} |")  # fmt: skip
    lines += ["", "Per structure (Dice; one row per query subject):", "",
              "| data | query | structure | split | slices | " + " | ".join(METHODS) + " |",
              "|---|---|---|---|---|" + "---|" * len(METHODS)]  # fmt: skip
    for r in report["rows"]:
        cells = " | ".join(f"{r[m]:.3f}" for m in METHODS)
        lines.append(f"| {r['dataset']} | {r['query']} | {r['structure']} | {r['split']} | "
                     f"{r['slices']} | {cells} |")  # fmt: skip
    return "\n".join(lines)


def docs_section(report: dict) -> str:
    m = report["machine"]
    head = (
        f"Measured by `bench/cross_volume.py` on {report['date']} ({m['cpu_count']} CPU cores, "
        f"{m['platform']}; wall time {report['wall_s'] / 60:.1f} min); every number in "
        "`bench/results/cross_volume.json`. One labelled reference guides other subjects, never "
        "co-registered with it (`fob segment --reference-image`): per structure the middle "
        "slices of the three parts of its extent in the reference, resampled by physical size "
        "onto the query's slice grid, prompt the matching thirds of the query's true extent "
        "(the paper's protocol). Random-walker masks, 3D Dice over the query's extent. "
        "**Phantoms**: reference seed 0, queries seeds 1 (every axis stored reversed, other "
        "voxel size) and 2. **Real anatomy**: the ICBM152 template with HCPEx labels as the "
        "reference; two subjects made from it by a seeded random rotation (up to 10 degrees "
        "per axis), scale (0.9-1.1 per axis), shift (up to 12 mm), smooth deformation (up to "
        "4 mm), bias field (exp(0.25 f)) and noise, on other voxel sizes and orientations "
        "(`bench/_cross_subjects.py`). Axial slices. Structures: tune "
        + ", ".join(report["structures"]["tune"])
        + "; test "
        + ", ".join(report["structures"]["test"])
        + "."
    )
    body = [head, "", markdown(report)]
    notes = Path(__file__).with_name("cross_volume_notes.md")
    if notes.exists():
        body += ["", notes.read_text()]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default", help="FoB checkpoint (default: shipped)")
    parser.add_argument("--quick", action="store_true", help="small phantoms only")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ untouched")
    parser.add_argument("--from-json", default=None, help="re-render docs from a saved report")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick writes only to --out (the committed results are for full runs)")
    out = Path(args.out) if args.out else ROOT / "bench" / "results"
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
    else:
        global PARTIAL
        out.mkdir(parents=True, exist_ok=True)
        PARTIAL = out / "cross_volume.partial.json"
        report = run_benchmark(args)
        PARTIAL.unlink(missing_ok=True)
        name = "cross_volume_quick.json" if args.quick else "cross_volume.json"
        (out / name).write_text(json.dumps(report, indent=1, default=float))
    print(markdown(report))
    if not (args.quick or args.no_docs):
        write_section(ROOT / "docs" / "benchmarks.md", TITLE, docs_section(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
