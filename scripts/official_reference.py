"""Run the FoB authors' code on the CPU and write the numbers of the official-equivalence fixture.

Not run by the tests (it needs their code and OpenCV); it documents how
tests/model/fixtures/official_equivalence.json was made. Usage:

    git clone https://github.com/primebo1/FoB_SAM /tmp/fobsam      # their code, read only
    pip install --target /tmp/refsite opencv-python-headless==4.11.0.86 info-nce-pytorch==0.1.4
    PYTHONPATH=/tmp/refsite .venv/bin/python scripts/official_reference.py /tmp/fobsam \
        tests/model/fixtures/official_equivalence.json

Their files are not changed: this driver makes their model build on the CPU (CUDA checks
answered, ``.cuda()`` a no-op, their hard-coded backbone file replaced by an empty state
dict), loads weights made from each tensor's name (tests/model/official_recipe.py), feeds
slices of the bundled MNI T1, and records their outputs and intermediates (support ring,
foreground prototype, threshold t, heatmaps, coarse argmax points, refined background points,
foreground points) by wrapping their methods without changing what they compute.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "model"))

import official_recipe as recipe  # noqa: E402

HEAT_STEP = 16  # heatmaps are stored on every 16th pixel of the 256 grid (and at the peaks)


def build_their_model(code: Path):
    """Their FewShotSeg on the CPU, its weights from the recipe; returns (model, key rows)."""
    sys.path.insert(0, str(code))
    cuda_check, tensor_cuda, load = torch.cuda.is_available, torch.Tensor.cuda, torch.load
    torch.cuda.is_available = lambda: True  # their __init__ exits without CUDA
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.load = lambda *a, **k: {}  # their encoder loads a backbone from a hard-coded path
    try:
        from models.FoB import FewShotSeg

        model = FewShotSeg({})
    finally:
        torch.cuda.is_available, torch.load = cuda_check, load
    model.device = torch.device("cpu")
    rows = [(k, list(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
    model.load_state_dict(recipe.deterministic_state(rows), strict=True)
    return model.eval(), rows, tensor_cuda


def record(model) -> dict:
    """Wrap their methods so one forward pass leaves its intermediates in the returned dict."""
    seen: dict = {"coarse": [], "heat": [], "contour": []}

    def wrap(name, after):
        original = getattr(model, name)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            after(args, out)
            return out

        setattr(model, name, wrapper)

    wrap("uniform_sample_contour", lambda a, out: seen["contour"].append(np.asarray(out)))
    wrap(
        "get_keypoint_predictions",
        lambda a, out: (seen["coarse"].append(out), seen["heat"].append(a[0])),
    )
    wrap("getPred", lambda a, out: seen.update(threshold=a[2], fg_prob_feature=out))
    wrap("attention_suppress", lambda a, out: seen.update(fg_prototype=a[1]))
    return seen


def peak_gap(heat: np.ndarray) -> float:
    """Smallest gap, over channels, between each channel's maximum and its largest value below
    it (exact ties are copies made by the upsampling's edge clamping: they stay ties)."""
    flat = heat.reshape(heat.shape[0], -1)
    top = flat.max(axis=1, keepdims=True)
    below = np.where(flat < top, flat, -np.inf).max(axis=1)
    return float((top[:, 0] - below).min())


def main(code: Path, out: Path) -> None:
    torch.manual_seed(0)
    model, rows, _ = build_their_model(code)
    inputs = recipe.mni_inputs()
    sup01 = inputs["support_image"].astype(np.float64)
    mean, std = float(sup01.mean()), float(sup01.std())

    def their_image(img01):
        z = ((img01.astype(np.float64) - mean) / std).astype(np.float32)
        return torch.from_numpy(z)[None, None].expand(1, 3, -1, -1).contiguous()

    sup_img = their_image(inputs["support_image"])
    sup_mask = torch.from_numpy(inputs["support_mask"].astype(np.float32))[None]
    # their Resize on tensors vs plain bilinear (the compatibility mode's): the same when upsampling
    plain = F.interpolate(sup_img, size=(256, 256), mode="bilinear", align_corners=False)
    resize_diff = float((model.pre_process(sup_img) - plain).abs().max())
    queries = []
    for z, q01 in zip(recipe.QUERY_Z, inputs["query_images"]):
        seen = record(model)
        label = torch.ones(1, *q01.shape, dtype=torch.long)  # their gate: the query has the organ
        with torch.no_grad():
            neg, pos = model(
                [[sup_img.clone()]], [[sup_mask.clone()]], [their_image(q01)], label, False
            )
        heat = seen["heat"][0][0].detach().numpy()  # (Np, 256, 256)
        prob = F.interpolate(
            seen["fg_prob_feature"][None], size=(256, 256), mode="bilinear", align_corners=True
        )
        prob = prob[0, 0].numpy()
        queries.append({
            "z": z,
            "bg_xy": np.asarray(neg)[0].tolist(),
            "fg_xy": np.asarray(pos)[0].tolist(),
            "coarse_xy": np.asarray(seen["coarse"][0])[0].tolist(),
            "threshold": float(seen["threshold"].reshape(-1)[0]),
            "heat_max": heat.reshape(heat.shape[0], -1).max(axis=1).tolist(),
            "heat_sub": heat[:, ::HEAT_STEP, ::HEAT_STEP].tolist(),
            "heat_peak_gap": peak_gap(heat),
            "fg_count": int((prob > 0.96).sum()),
            "fg_margin": float(np.abs(prob - 0.96).min()),
        })  # fmt: skip
        support_ring = seen["contour"][0].tolist()
        fg_proto = seen["fg_prototype"].reshape(-1).numpy()
    import cv2  # their dependency, for the contour records

    contours = []
    for mask in recipe.contour_masks():
        found, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        contours.append(max(found, key=cv2.contourArea)[:, 0, :].tolist())
    fixture = {
        "about": "Outputs of the FoB authors' code (github primebo1/FoB_SAM, commit below) on "
        "the CPU, made by scripts/official_reference.py; numbers only, no code or weights.",
        "their_commit": sys.argv[3] if len(sys.argv) > 3 else None,
        "torch": torch.__version__,
        "recipe": recipe.RECIPE,
        "zscore": [mean, std],
        "resize_max_diff": resize_diff,
        "keys": rows,
        "support_ring_xy": support_ring,
        "fg_prototype": fg_proto.tolist(),
        "heat_step": HEAT_STEP,
        "queries": queries,
        "opencv": cv2.__version__,
        "contours": contours,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    for q in queries:
        print(
            q["z"],
            "gap",
            q["heat_peak_gap"],
            "fg",
            q["fg_count"],
            "margin",
            q["fg_margin"],
            "t",
            q["threshold"],
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
