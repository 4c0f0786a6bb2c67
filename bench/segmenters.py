"""Benchmark the segmenters on this machine: random walker, SAM vit_b embedding and decode,
embedding-cache hits, and the interactive target (move one point, recommit a cached slice).

SAM runs at random initialisation (no checkpoint can be downloaded here); its run time is the
same as with the official weights. Writes ``bench/results/segmenters.json`` and the markdown
table to ``docs/benchmarks.md`` under "## Segmenters" (other sections are kept).

    .venv/bin/python bench/segmenters.py [--embed-slices 1] [--repeats 10] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_fob.cache import EmbeddingCache
from napari_fob.geometry import fg_points_from_mask, ring_points
from napari_fob.intensity import Window
from napari_fob.prompts import PromptSet
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.2  # "moving one point and recommitting its slice takes under 0.2 s"


def phantom(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A (size, size) noisy CT-like slice with an elliptic organ, and the organ's mask."""
    rr, cc = np.mgrid[:size, :size]
    mask = ((rr - size * 0.5) / (size * 0.22)) ** 2 + ((cc - size * 0.45) / (size * 0.15)) ** 2 <= 1
    rng = np.random.default_rng(seed)
    image = (100.0 + 200.0 * mask + rng.normal(0, 60, mask.shape)).astype(np.float32)
    return image, mask


def prompts_for(mask: np.ndarray) -> PromptSet:
    return PromptSet(fg=fg_points_from_mask(mask, 10), bg=ring_points(mask, 10))


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def bench(args: argparse.Namespace) -> dict:
    import torch

    from napari_fob.segmenters.sam import SamSegmenter, build_tiny_sam

    torch.set_num_threads(max(1, torch.get_num_threads()))
    window = Window(-100.0, 400.0, "bench")
    image, mask = phantom(0)
    prompts = prompts_for(mask)
    rows: dict[str, float] = {}

    rw = RandomWalkerSegmenter()
    rows["random_walker_s"], _ = timed(lambda: rw.segment(image, prompts, window=window), 10)

    if args.tiny:
        model, model_id = build_tiny_sam(0), "tiny-0"
    else:
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        model, model_id = sam_model_registry["vit_b"](checkpoint=None), "sam-vit_b:random-init"
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(max_items=8, disk_dir=tmp)
        sam = SamSegmenter.from_model(model, model_id=model_id, cache=cache, device="cpu")
        embeds = []
        for seed in range(args.embed_slices):
            slice_, _ = phantom(seed + 1)
            start = time.perf_counter()
            sam.segment(slice_, prompts, window=window)  # miss: encoder + decode
            embeds.append(time.perf_counter() - start)
        rows["sam_embed_plus_first_decode_s"] = statistics.median(embeds)

        sam.segment(image, prompts, window=window)  # cache the benchmark slice
        rows["sam_decode_s"], _ = timed(
            lambda: sam.predictor.predict(
                point_coords=np.concatenate([prompts.fg, prompts.bg])[:, ::-1].copy(),
                point_labels=np.r_[np.ones(len(prompts.fg)), np.zeros(len(prompts.bg))],
                multimask_output=False,
            ),
            args.repeats,
        )
        key = sam.embedding_key(image, window)
        rows["cache_hit_memory_s"], _ = timed(lambda: cache.get(key), args.repeats)

        def disk_hit():
            EmbeddingCache(disk_dir=tmp).get(key)

        rows["cache_hit_disk_s"], _ = timed(disk_hit, args.repeats)

        labels = np.zeros((8, *image.shape), dtype=np.uint8)
        rng = np.random.default_rng(1)

        def move_and_recommit():
            moved = prompts.copy()
            moved.fg[0] += rng.uniform(-3, 3, size=2)  # the user drags one point
            result = sam.segment(image, moved, window=window)  # hash + cache hit + decode
            target = labels[3]
            target[target == 1] = 0  # replace this structure's previous mask
            target[result & (target == 0)] = 1  # never overwrite another structure

        rows["move_point_recommit_s"], _ = timed(move_and_recommit, args.repeats)
        rows["embedding_mib"] = cache.get(key)["features"].nbytes / 2**20
    rows["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"torch threads, python {platform.python_version()}, torch {torch.__version__}",
        "model": model_id,
        "slice": list(image.shape),
        "embed_slices": args.embed_slices,
        "repeats": args.repeats,
        "results": rows,
        "target_move_point_recommit_s": TARGET_S,
        "target_met": rows["move_point_recommit_s"] < TARGET_S,
    }


def table(report: dict) -> str:
    r = report["results"]
    lines = [
        f"Model `{report['model']}` (random weights: same cost as the official ones), "
        f"{report['slice'][0]}x{report['slice'][1]} slice, 10 fg + 10 bg points; "
        f"{report['machine']}. Medians.",
        "",
        "| step | time |",
        "|---|---|",
        f"| random walker, one slice (crop around the ring) "
        f"| {r['random_walker_s'] * 1e3:.0f} ms |",
        f"| SAM image embedding + first decode (cache miss; {report['embed_slices']} slice(s)) "
        f"| {r['sam_embed_plus_first_decode_s']:.1f} s |",
        f"| SAM decode, one prompt set (embedding set) | {r['sam_decode_s'] * 1e3:.0f} ms |",
        f"| cache hit, memory | {r['cache_hit_memory_s'] * 1e6:.0f} µs |",
        f"| cache hit, disk (new process: open folder + read {r['embedding_mib']:.0f} MiB) "
        f"| {r['cache_hit_disk_s'] * 1e3:.1f} ms |",
        f"| **move one point + recommit a cached slice** (hash, hit, decode, mask write) "
        f"| **{r['move_point_recommit_s'] * 1e3:.0f} ms** (target < {TARGET_S * 1e3:.0f} ms: "
        f"{'met' if report['target_met'] else 'NOT met'}) |",
        f"| peak resident memory of the benchmark | {r['peak_rss_mib']:.0f} MiB |",
    ]
    return "\n".join(lines) + "\n"


def write_docs(markdown: str) -> None:
    """Replace (or add) the "## Segmenters" section of docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "## Segmenters\n\nMeasured by `bench/segmenters.py`.\n\n" + markdown
    start = text.find("## Segmenters")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end < 0 else "\n" + text[end + 1 :])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-slices", type=int, default=1, help="SAM embeddings to time")
    parser.add_argument("--repeats", type=int, default=10, help="runs per cheap measurement")
    parser.add_argument("--tiny", action="store_true", help="tiny SAM (smoke test, no docs)")
    args = parser.parse_args(argv)
    report = bench(args)
    markdown = table(report)
    print(markdown)
    if not args.tiny:
        out = ROOT / "bench" / "results" / "segmenters.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        write_docs(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
