"""GPU check: the FoB predictor and the SAM segmenter on CUDA against the CPU, same inputs.

Prints, per phantom structure, how far the CUDA prompts are from the CPU ones and the time for
all its slices on each device, then SAM (vit_b, random weights: no checkpoint is needed) mask
agreement and timings. Results of one run: docs/benchmarks.md, "On a GPU". Run from the
repository root on a machine with a GPU: ``python scripts/gpu_check.py`` (``DEVS=cpu,cpu``
compares the CPU with itself).
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _pq_cases import Case, _ct  # noqa: E402
from napari_fob.prompting.predictor import load_predictor  # noqa: E402
from napari_fob.samples.phantom import make_abdomen_phantom  # noqa: E402

DEVS = tuple(os.environ.get("DEVS", "cpu,cuda").split(","))
print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))
image, labels, names = make_abdomen_phantom(seed=205)
case = Case("phantom", "p205", image, _ct(image), labels, names)
for lab in (1, 2, 3):
    zs = [z for z in range(image.shape[0]) if (labels[z] == lab).any()]
    z0 = zs[len(zs) // 2]
    q = [z for z in zs if z != z0]
    out = {}
    for dev in DEVS:
        p = load_predictor("default", device=dev)
        p.set_support(case.image01[z0], labels[z0] == lab, slice_index=z0)
        p.predict([case.image01[z] for z in q[:4]], slice_indices=q[:4])
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out[dev] = p.predict([case.image01[z] for z in q], slice_indices=q)
        if dev == "cuda":
            torch.cuda.synchronize()
        print(f"label {lab} {dev}: {len(q)} slices {time.perf_counter() - t:.3f} s")
    pairs = list(zip(out[DEVS[0]], out[DEVS[1]]))
    bg_dist = [float(np.abs(a.bg - b.bg).max()) for a, b in pairs]
    fg = [
        float(np.abs(a.fg - b.fg).max()) if a.fg.shape == b.fg.shape else float("inf")
        for a, b in pairs
    ]
    bg, frac = max(bg_dist), np.mean([d < 0.5 for d in bg_dist])
    print(
        f"label {lab}: max |bg cpu - cuda| {bg:.3f} px, slices with bg within 0.5 px {frac:.2f}, "
        f"fg max diff {max(fg):.3f}, fg counts equal {all(np.isfinite(fg))}"
    )

from segment_anything import sam_model_registry  # noqa: E402

from napari_fob.segmenters.sam import SamSegmenter  # noqa: E402

masks = {}
for dev in DEVS:
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"](checkpoint=None)
    seg = SamSegmenter.from_model(sam, model_id="vit_b-random-init", device=dev)
    p = load_predictor("default", device="cpu")
    z0 = 30
    p.set_support(case.image01[z0], labels[z0] == 1, slice_index=z0)
    (ps,) = p.predict([case.image01[z0 + 2]], slice_indices=[z0 + 2])
    t = time.perf_counter()
    m = seg.segment(image[z0 + 2], ps, window=case.window)
    t1 = time.perf_counter() - t
    t = time.perf_counter()
    m = seg.segment(image[z0 + 2], ps, window=case.window)
    t2 = time.perf_counter() - t
    masks[dev] = np.asarray(m, bool)
    print(
        f"SAM {dev}: embed+decode {t1:.3f} s, decode {t2 * 1000:.1f} ms, mask px {masks[dev].sum()}"
    )
agree = (masks[DEVS[0]] == masks[DEVS[1]]).mean()
print(f"SAM cpu vs cuda mask agreement {agree:.5f}")
