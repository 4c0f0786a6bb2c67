"""SAM vit_b and every SAM 2.1 size side by side on this machine (``bench/segmenters.py
--side-by-side``): image embedding, one decode, and move-a-point + recommit of a cached slice,
each model at random initialisation (the cost of the official weights), in one run so the ratios
to vit_b share the machine's load.

``bench/segmenters.py`` writes ``bench/results/segmenters_side_by_side.json`` and the section
"## SAM and SAM 2.1 side by side" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import time

import numpy as np

from napari_fob.core.intensity import Window, to_uint8_rgb
from napari_fob.segmenters.cache import EmbeddingCache

SAM2_SIZES = ("hiera_t", "hiera_s", "hiera_b+", "hiera_l")
SECTION = "## SAM and SAM 2.1 side by side"
TARGET_RATIO = 0.25  # a SAM 2.1 size embedding in at most a quarter of vit_b's time
TARGET_RECOMMIT_S = 0.2


def _clock(fn, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median process CPU seconds) of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def _build(name: str, cache: EmbeddingCache):
    import torch

    if name == "vit_b":
        from segment_anything import sam_model_registry

        from napari_fob.segmenters.sam import SamSegmenter

        torch.manual_seed(0)
        model = sam_model_registry["vit_b"](checkpoint=None)
        return SamSegmenter.from_model(model, model_id="vit_b-random", cache=cache, device="cpu")
    from napari_fob.segmenters.sam2_models import build_sam2_model
    from napari_fob.segmenters.sam2_segmenter import Sam2Segmenter

    model = build_sam2_model(name, seed=0)
    return Sam2Segmenter.from_model(
        model, model_id=f"{name}-random", size=name, cache=cache, device="cpu"
    )


def measure(models, image, prompts, window: Window, *, embeds: int, repeats: int) -> dict:
    """Per model: embedding (encoder only), decode (embedding set), move a point + recommit."""
    import torch

    rows = {}
    for name in models:
        rows[name] = _one(name, image, prompts, window, embeds=embeds, repeats=repeats)
        gc.collect()  # one model in memory at a time (hiera_l: ~0.9 GB)
    base = rows["vit_b"]
    for row in rows.values():
        row["embed_ratio_wall"] = row["embed_wall_s"] / base["embed_wall_s"]
        row["embed_ratio_cpu"] = row["embed_cpu_s"] / base["embed_cpu_s"]
        row["embed_ratio_1t_cpu"] = row["embed_1t_cpu_s"] / base["embed_1t_cpu_s"]
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, torch {torch.__version__}",
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "slice": list(image.shape),
        "embeds": embeds,
        "repeats": repeats,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "models": rows,
    }


def _one(name, image, prompts, window, *, embeds: int, repeats: int) -> dict:
    import torch

    seg = _build(name, EmbeddingCache(max_items=4))
    rgb = to_uint8_rgb(image, window)
    rng = np.random.default_rng(1)
    labels = np.zeros(image.shape, dtype=np.uint8)
    with torch.no_grad():  # no warm-up: an encoder run is seconds, torch's set-up is not
        embed = _clock(lambda: seg._encode(rgb), embeds)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread: no idle-thread spinning counted as work
        try:
            embed_1t = _clock(lambda: seg._encode(rgb), embeds)
        finally:
            torch.set_num_threads(threads)
    seg.segment(image, prompts, window=window)  # caches the slice, sets the predictor
    coords = np.concatenate([prompts.fg, prompts.bg])[:, ::-1].copy()
    point_labels = np.r_[np.ones(len(prompts.fg)), np.zeros(len(prompts.bg))]

    def decode():
        seg.predictor.predict(
            point_coords=coords, point_labels=point_labels, multimask_output=False
        )

    def move_and_recommit():
        moved = prompts.copy()
        moved.fg[0] += rng.uniform(-3, 3, size=2)  # the user drags one point
        result = seg.segment(image, moved, window=window)  # hash + cache hit + decode
        labels[labels == 1] = 0
        labels[result & (labels == 0)] = 1

    torch.set_num_threads(1)  # the decoder path's best setting on a shared CPU
    try:
        decode()
        dec = _clock(decode, repeats)
        move_and_recommit()
        recommit = _clock(move_and_recommit, repeats)
    finally:
        torch.set_num_threads(threads)
    value = seg.cache.get(seg.embedding_key(image, window))
    return {
        "params_m": sum(p.numel() for p in seg.model.parameters()) / 1e6,
        "embed_wall_s": embed[0],
        "embed_cpu_s": embed[1],
        "embed_1t_wall_s": embed_1t[0],
        "embed_1t_cpu_s": embed_1t[1],
        "decode_wall_s": dec[0],
        "decode_cpu_s": dec[1],
        "recommit_wall_s": recommit[0],
        "recommit_cpu_s": recommit[1],
        "embedding_mib": sum(a.nbytes for a in value.values()) / 2**20,
        "load_average_1min": os.getloadavg()[0],
    }


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def table(report: dict) -> str:
    rows = report["models"]
    lines = [
        f"Measured by `bench/segmenters.py --side-by-side` on {report['date_utc']} UTC: "
        f"{report['machine']}; {report['slice'][0]}x{report['slice'][1]} slice, 10 fg + 10 bg "
        f"points; random weights (the official ones cost the same); each model's input at its "
        f"default (1024). Embedding: median of {report['embeds']} encoder run(s) (no warm-up) "
        "with torch's default threads, then with one thread (no idle-thread spinning counted); "
        f"decode and recommit: median of {report['repeats']} "
        "runs with one torch thread. Other jobs shared the 2 cores (1-minute load average in "
        "the last column): wall times are upper bounds, CPU time is this process's work, all "
        "threads; ratios are to vit_b in the same run.",
        "",
        "| model | params | embedding wall (CPU), default threads | ratio to vit_b, wall / CPU "
        "| embedding CPU, 1 thread | ratio to vit_b | decode wall | move a point + recommit wall "
        "(CPU) | cached embedding | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        title = "SAM vit_b" if name == "vit_b" else f"SAM 2.1 {name}"
        lines.append(
            f"| {title} | {r['params_m']:.0f} M | {_fmt(r['embed_wall_s'])} "
            f"({_fmt(r['embed_cpu_s'])}) | {r['embed_ratio_wall']:.2f} / "
            f"{r['embed_ratio_cpu']:.2f} | {_fmt(r['embed_1t_cpu_s'])} | "
            f"{r['embed_ratio_1t_cpu']:.2f} | {_fmt(r['decode_wall_s'])} | "
            f"{_fmt(r['recommit_wall_s'])} ({_fmt(r['recommit_cpu_s'])}) | "
            f"{r['embedding_mib']:.0f} MiB | {r['load_average_1min']:.1f} |"
        )
    sam2 = {k: v for k, v in rows.items() if k != "vit_b"}
    ratio = {k: min(v["embed_ratio_cpu"], v["embed_ratio_1t_cpu"]) for k, v in sam2.items()}
    fast = [f"{k} ({ratio[k]:.2f})" for k in sam2 if ratio[k] <= TARGET_RATIO]
    wall = [k for k, v in sam2.items() if v["recommit_wall_s"] < TARGET_RECOMMIT_S]
    cpu = [k for k, v in sam2.items() if v["recommit_cpu_s"] < TARGET_RECOMMIT_S]
    lines += [
        "",
        f"Targets (issue 25): a SAM 2.1 size embedding in <= {TARGET_RATIO}x vit_b's CPU time "
        f"(default threads or one thread): {', '.join(fast) if fast else 'none'} in this run; "
        f"move a point + recommit under {TARGET_RECOMMIT_S * 1e3:.0f} ms: wall time "
        f"{', '.join(wall) if wall else 'none'} under this load, CPU time "
        f"{', '.join(cpu) if cpu else 'none'}.",
    ]
    return "\n".join(lines) + "\n"
