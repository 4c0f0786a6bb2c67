"""Pipeline benchmark: the cost of each stage of the annotation loop on a 128-slice volume.

Measures, on this machine's CPU (random weights: the cost of a forward pass does not depend on
the values of the weights):

- FoB prompt prediction per slice with the ``compact`` model at batch sizes 1, 8 and 32, and
  the time to predict prompts for 100 slices (target: < 10 s);
- the random-walker segmenter per slice;
- SAM vit_b: image embedding per slice (one slice), mask decode per slice, a cache hit (an
  embedding restored from the cache, then decoded);
- the interactive target: moving one point and recommitting a slice whose embedding is cached
  (target: < 0.2 s), with SAM vit_b and with the random walker;
- peak memory (resident set size) after each stage.

Writes ``bench/results/pipeline.json`` and prints a Markdown table (copied into
``docs/benchmarks.md``, section "Pipeline"). Run: ``.venv/bin/python bench/pipeline.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from napari_fob.core.intensity import normalise, resolve_window
from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.samples.phantom import make_abdomen_phantom
from napari_fob.session import AnnotationSession, run

RESULTS = Path(__file__).parent / "results" / "pipeline.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def timed(fn, repeat: int = 1) -> float:
    """Median seconds of `repeat` calls of fn()."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench_fob(images01, masks, support_z, zs, batch_sizes) -> dict:
    from napari_fob.model.fob import build_fob
    from napari_fob.prompting.predictor import FobPredictor

    torch.manual_seed(0)
    predictor = FobPredictor(build_fob("compact"), device="cpu")
    predictor.set_support(images01[support_z], masks[support_z], slice_index=support_z)
    out = {}
    predictor.predict([images01[zs[0]]], slice_indices=[zs[0]], batch_size=1)  # warm-up
    for bs in batch_sizes:
        n = min(len(zs), max(2 * bs, 8))
        query = [images01[z] for z in zs[:n]]
        sec = timed(
            lambda q=query, b=bs, k=zs[:n]: predictor.predict(q, slice_indices=k, batch_size=b)
        )
        out[f"fob_compact_per_slice_batch{bs}_s"] = sec / n
    best = min(batch_sizes, key=lambda b: out[f"fob_compact_per_slice_batch{b}_s"])
    query = [images01[z] for z in zs[:100]]
    out["fob_compact_100_slices_s"] = timed(
        lambda: predictor.predict(query, slice_indices=zs[:100], batch_size=best)
    )
    out["fob_compact_100_slices_batch"] = best
    return out


def bench_random_walker(volume, window, prompts, zs) -> dict:
    from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

    seg = RandomWalkerSegmenter()
    sec = timed(lambda: [seg.segment(volume[z], prompts[z], window=window) for z in zs])
    return {"random_walker_per_slice_s": sec / len(zs)}


def bench_sam(volume, window, prompts, zs) -> tuple[dict, object]:
    from segment_anything import sam_model_registry

    from napari_fob.segmenters.sam import SamSegmenter

    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"](checkpoint=None)  # random init: same cost as real weights
    seg = SamSegmenter.from_model(sam, model_id="vit_b-random-init", device="cpu")
    a, b = zs[0], zs[1]
    t_first = timed(lambda: seg.segment(volume[a], prompts[a], window=window))  # embed + decode
    decode = timed(lambda: seg.segment(volume[a], prompts[a], window=window), repeat=5)
    seg.segment(volume[b], prompts[b], window=window)  # b now set; a only in the cache
    hit = timed(lambda: seg.segment(volume[a], prompts[a], window=window))
    return {
        "sam_vit_b_embedding_per_slice_s": t_first - decode,
        "sam_vit_b_decode_per_slice_s": decode,
        "sam_vit_b_cache_hit_plus_decode_s": hit,
        "sam_vit_b_cache_hit_restore_s": max(hit - decode, 0.0),
    }, seg


def bench_edit_recommit(volume, window, support_z, mask, segmenter, z) -> float:
    """Seconds to move one point and recommit slice z once its embedding is cached."""
    session = AnnotationSession(
        volume, generator=MaskRingGenerator(), segmenter=segmenter, window=window
    )
    session.set_support(1, support_z, mask)
    other = z + 1 if z + 1 != support_z else z - 1
    run(session.predict(1, [z, other]))
    run(session.commit(1, [z]))  # computes and caches the embedding of z
    run(session.commit(1, [other]))  # another slice in between, as in real use
    p = session.prompts[(1, z)]

    def edit():
        session.move_point(1, z, "bg", 0, p.bg[0] + [1.5, -1.0])
        run(session.commit(1, [z]))

    return timed(edit, repeat=3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--size", type=int, default=192, help="in-plane size of each slice")
    parser.add_argument("--skip-sam", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    volume, labels, _ = make_abdomen_phantom(
        seed=0, shape=(args.slices, args.size, args.size), spacing=(1.25, 1.5, 1.5)
    )
    window = resolve_window(volume, "ct-abdomen")
    liver = labels == 1
    zs_liver = [int(z) for z in np.flatnonzero(liver.any(axis=(1, 2)))]
    support_z = zs_liver[len(zs_liver) // 2]
    images01 = normalise(volume, window)
    zs_all = [z for z in range(args.slices) if z != support_z]
    results: dict = {"volume_shape": list(volume.shape), "phantom_s": time.perf_counter() - t0}
    results.update(bench_fob(images01, liver, support_z, zs_all, (1, 8, 32)))
    results["peak_rss_after_fob_mb"] = peak_rss_mb()

    gen = MaskRingGenerator()
    gen.set_support(images01[support_z], liver[support_z], slice_index=support_z)
    near = [z for z in zs_liver if z != support_z][:12]
    prompts = {
        z: p for z, p in zip(near, gen.predict([images01[z] for z in near], slice_indices=near))
    }
    results.update(bench_random_walker(volume, window, prompts, near))
    results["edit_recommit_random_walker_s"] = bench_edit_recommit(
        volume, window, support_z, liver[support_z], _rw(), near[0]
    )
    results["peak_rss_after_random_walker_mb"] = peak_rss_mb()
    if not args.skip_sam:
        sam_results, sam = bench_sam(volume, window, prompts, near)
        results.update(sam_results)
        results["edit_recommit_sam_vit_b_s"] = bench_edit_recommit(
            volume, window, support_z, liver[support_z], sam, near[2]
        )
        results["peak_rss_after_sam_mb"] = peak_rss_mb()
    results["machine"] = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_at_end": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def _rw():
    from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

    return RandomWalkerSegmenter()


def markdown(r: dict) -> str:
    ms = lambda key: f"{1000 * r[key]:.1f} ms" if key in r else "not run"  # noqa: E731
    rows = [
        ("FoB `compact` prompts per slice, batch 1", ms("fob_compact_per_slice_batch1_s")),
        ("FoB `compact` prompts per slice, batch 8", ms("fob_compact_per_slice_batch8_s")),
        ("FoB `compact` prompts per slice, batch 32", ms("fob_compact_per_slice_batch32_s")),
        (
            f"FoB `compact` prompts for 100 slices (batch {r.get('fob_compact_100_slices_batch')})"
            " — target < 10 s",
            f"{r['fob_compact_100_slices_s']:.2f} s",
        ),
        ("Random walker per slice", ms("random_walker_per_slice_s")),
        ("SAM vit_b image embedding per slice", ms("sam_vit_b_embedding_per_slice_s")),
        ("SAM vit_b decode per slice", ms("sam_vit_b_decode_per_slice_s")),
        ("SAM vit_b cache hit (restore only)", ms("sam_vit_b_cache_hit_restore_s")),
        (
            "Move one point + recommit, SAM vit_b, embedding cached — target < 0.2 s",
            ms("edit_recommit_sam_vit_b_s"),
        ),
        (
            "Move one point + recommit, random walker — target < 0.2 s",
            ms("edit_recommit_random_walker_s"),
        ),
        (
            "Peak resident memory (after SAM)",
            f"{r.get('peak_rss_after_sam_mb', r['peak_rss_after_random_walker_mb']):.0f} MB",
        ),
    ]
    z, y, x = r["volume_shape"]
    lines = [
        f"Volume: {z} slices of {y} x {x} (abdomen phantom).",
        "",
        "| stage | time |",
        "|---|---|",
    ]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
