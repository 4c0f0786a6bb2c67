"""The fit of each atlas to the template (issue 15): how the AAL3 and HCPEx labels agree with
the ICBM152 template's own tissue maps, per structure.

The data (template, atlases on its grid, the tune / test split by structure, the slicing) is
`napari_fob.samples.real_anatomy`; it is re-exported here, so the benchmarks and scripts of
`bench/` and `scripts/` import it as ``_real_anatomy_data``.

    python bench/_real_anatomy_data.py --fit      # Markdown table: fit of each atlas
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from napari_fob.samples.real_anatomy import (  # noqa: F401  re-exported for bench/ and scripts/
    ATLASES,
    TEST_STRUCTURES,
    TUNE_STRUCTURES,
    Case,
    SliceCase,
    atlas_files,
    available,
    cases,
    central_slice,
    check_atlas,
    load_case,
    load_template,
    plane_of_axis,
    refuse_test,
    resample_nearest,
    split_of,
    structures,
)

# --------------------------------------------------------------------------------- fit


@lru_cache(maxsize=1)
def _tissue_maps() -> tuple[np.ndarray, np.ndarray]:
    """(distance in mm to the grey-matter edge, |grad T1| at 1 mm) on the template grid.

    The grey-matter edge is the set of voxel faces between gm > 0.5 and gm <= 0.5; a voxel
    touching it (on either side) is at distance 0.
    """
    t1, gm, _wm, _affine = load_template()
    grey = gm > 0.5
    edge = (grey & ~ndi.binary_erosion(grey)) | (ndi.binary_dilation(grey) & ~grey)
    dist = ndi.distance_transform_edt(~edge).astype(np.float32)
    grad = ndi.gaussian_gradient_magnitude(t1, sigma=1.0).astype(np.float32)
    return dist, grad


def _structure_fit(mask: np.ndarray) -> dict[str, float]:
    t1, gm, _wm, _affine = load_template()
    dist, grad = _tissue_maps()
    box = ndi.find_objects(mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in box)
    m = mask[box]
    inner = m & ~ndi.binary_erosion(m)  # the structure's boundary voxels
    outer = ndi.binary_dilation(m, iterations=2) & ~m  # a 2 mm shell around it
    g = gm[box]
    gm_in, gm_out = float(g[m].mean()), float(g[outer].mean())
    return {
        "ml": float(m.sum()) / 1000.0,
        "gm_in": gm_in,
        "gm_edge": float(g[inner].mean()),
        "gm_out": gm_out,
        "contrast": gm_in - gm_out,
        "edge_mm": float(np.mean(dist[box][inner])),
        "t1_grad": float(grad[box][inner].mean()),
    }


def fit_table(
    atlases: Iterable[str] = ATLASES, split: str | None = None
) -> list[dict[str, object]]:
    """Per atlas and structure, how its labels agree with the template's own tissue.

    Columns: `ml` (volume), `gm_in` (mean grey-matter probability inside), `gm_edge` (on its
    boundary voxels), `gm_out` (in the 2 mm shell outside), `contrast` (gm_in - gm_out: high
    when the boundary sits on a grey-matter edge), `edge_mm` (mean distance of the boundary
    voxels to the template's grey-matter edge; 0 = on it), `t1_grad` (mean |grad T1|,
    Gaussian sigma 1 mm, T1 in [0, 1], on the boundary voxels: high on an image edge), and
    `dice_other` (Dice with the same structure in the other atlas, where both have it).
    The pallidum is white matter to the template's tissue maps (bright on T1), so its
    grey-matter numbers say little; `t1_grad` still measures its edge.
    """
    atlases = [check_atlas(a) for a in atlases]
    loaded = {a: load_case(a) for a in ATLASES}  # both: dice_other compares them
    rows: list[dict[str, object]] = []
    for atlas in atlases:
        case = loaded[atlas]
        for name in structures(atlas, split):
            mask = case.mask(name)
            row: dict[str, object] = {"atlas": atlas, "structure": name,
                                      "split": split_of(name)}  # fmt: skip
            row.update(_structure_fit(mask))
            dice = float("nan")
            for other in (o for o in ATLASES if o != atlas):
                try:
                    om = loaded[other].mask(name)
                except KeyError:
                    continue
                dice = 2.0 * np.count_nonzero(mask & om) / (mask.sum() + om.sum())
            row["dice_other"] = dice
            rows.append(row)
    return rows


def preferred_atlas(rows: list[dict[str, object]], split: str = "test") -> str:
    """The atlas whose `split` structures fit the template best: highest mean `contrast`
    (grey matter inside, not just outside), ties to the higher mean `t1_grad`."""

    def mean(atlas, key):
        vals = [float(r[key]) for r in rows if r["atlas"] == atlas and r["split"] == split]
        return float(np.mean(vals)) if vals else float("-inf")

    present = sorted({str(r["atlas"]) for r in rows})
    return max(present, key=lambda a: (round(mean(a, "contrast"), 3), mean(a, "t1_grad")))


_DIGITS = {"ml": 1, "t1_grad": 3}
_COLUMNS = ("ml", "gm_in", "gm_edge", "gm_out", "contrast", "edge_mm", "t1_grad", "dice_other")


def fit_markdown(rows: list[dict[str, object]]) -> str:
    """The fit table as Markdown: one row per structure, atlases side by side."""
    atlases = sorted({str(r["atlas"]) for r in rows}, key=ATLASES.index)
    by = {(r["atlas"], r["structure"]): r for r in rows}
    names = list(dict.fromkeys(str(r["structure"]) for r in rows))
    head = ["structure", "split"] + [f"{a} {c}" for a in atlases for c in _COLUMNS[:-1]]
    head.append("dice")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name, split_of(name) or ""]
        dice = ""
        for a in atlases:
            r = by.get((a, name))
            for c in _COLUMNS[:-1]:
                cells.append("" if r is None else f"{float(r[c]):.{_DIGITS.get(c, 2)}f}")
            if r is not None and np.isfinite(float(r["dice_other"])):
                dice = f"{float(r['dice_other']):.2f}"
        cells.append(dice)
        lines.append("| " + " | ".join(cells) + " |")
    for split in ("test", "tune"):
        if any(r["split"] == split for r in rows):
            means = []
            for a in atlases:
                sel = [r for r in rows if r["atlas"] == a and r["split"] == split]
                if sel:
                    means.append(
                        f"{a}: contrast {np.mean([r['contrast'] for r in sel]):.3f}, "
                        f"edge_mm {np.mean([r['edge_mm'] for r in sel]):.2f}, "
                        f"t1_grad {np.mean([r['t1_grad'] for r in sel]):.3f}"
                    )
            lines.append("")
            lines.append(f"Mean over the {split} split: " + "; ".join(means) + ".")
    if any(r["split"] == "test" for r in rows) and len(atlases) > 1:
        lines.append(f"Preferred atlas (test split): {preferred_atlas(rows)}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="print the fit table (Markdown)")
    parser.add_argument("--split", choices=("test", "tune", "all"), default="all")
    parser.add_argument("--planes", action="store_true", help="print each axis' plane")
    args = parser.parse_args(argv)
    if not (args.fit or args.planes):
        parser.print_help()
        return 2
    if args.planes:
        affine = load_template()[3]
        for axis in range(3):
            print(f"axis {axis}: {plane_of_axis(affine, axis)}")
    if args.fit:
        print(fit_markdown(fit_table(split=None if args.split == "all" else args.split)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
