"""FoB forward latency per query slice and peak memory, per config and batch size, on the CPU.

Each (config, batch) runs in its own subprocess so its peak RSS (``resource.ru_maxrss``) is its
own. Latency is the time of ``encode(queries) + predict_from_support`` divided by the batch (the
support is encoded once and cached, as `FobPredictor` does). Prints a markdown table and writes
``bench/results/fob_forward.json``.

Usage: ``python bench/fob_forward.py [--configs tiny compact paper] [--batches 1 16]
[--repeats 3] [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "fob_forward.json"


def measure(config: str, batch: int, repeats: int, threads: int) -> dict:
    """Runs inside the child process: one model, one support, ``repeats`` timed query batches."""
    import resource

    import torch

    from napari_fob.model.fob import build_fob

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_fob(config).eval()
    s = model.grid_size
    mask = torch.zeros(1, s, s)
    mask[:, s // 3 : s // 2, s // 3 : 2 * s // 3] = 1
    ring = torch.rand(1, model.config.n_bg, 2) * s
    queries = torch.rand(batch, 1, s, s)
    with torch.inference_mode():
        t0 = time.perf_counter()
        state = model.support_prototypes(model.encode(torch.rand(1, 1, s, s)), mask, ring)
        support_s = time.perf_counter() - t0
        model.predict_from_support(state, model.encode(queries))  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.predict_from_support(state, model.encode(queries))
            times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "config": config,
        "batch": batch,
        "grid": s,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "support_ms": 1e3 * support_s,
        "batch_ms": 1e3 * best,
        "per_slice_ms": 1e3 * best / batch,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
        "repeats": repeats,
    }


def table(rows: list[dict]) -> str:
    head = (
        "| config | grid | params (M) | batch | per query slice (ms) | batch (ms) "
        "| support encode (ms) | peak RSS (MB) |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['config']} | {r['grid']} | {r['params_m']:.1f} | {r['batch']} "
        f"| {r['per_slice_ms']:.1f} | {r['batch_ms']:.0f} | {r['support_ms']:.0f} "
        f"| {r['peak_rss_mb']:.0f} |\n"
        for r in rows
    )
    return head + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "compact", "paper"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = measure(args.child[0], int(args.child[1]), args.repeats, args.threads)
        print(json.dumps(row))
        return 0
    import torch

    load_before = os.getloadavg()
    rows = []
    for config in args.configs:
        for batch in args.batches:
            # the paper model is ~10 s per slice on a laptop CPU: one timed repeat is enough
            repeats = 1 if config == "paper" else args.repeats
            cmd = [sys.executable, __file__, "--child", config, str(batch)]
            cmd += ["--repeats", str(repeats), "--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print()
    print(table(rows))
    print(f"machine: {machine}")
    print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
