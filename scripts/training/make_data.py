"""Build the training data of the shipped default FoB model into a folder outside the repository.

Writes ``OUT/images/phantom_<seed>.nii.gz`` (abdomen phantoms, training seeds only), a copy of
the bundled MNI T1 (``OUT/images/mni_t1.nii.gz``, image only: its ground truth is never used
for training), one validation phantom with labels, then runs ``fob pseudolabel`` on the training
images and writes ``OUT/manifest.yaml``. Evaluation uses phantom seeds 0-9: never generated here.

    .venv/bin/python scripts/training/make_data.py --out /work/fobtrain/data --seeds 100-131
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

# Phantom grid for training: the default field of view at a coarser grid (the model resizes
# every slice to its grid anyway), so pseudo-labelling and loading stay cheap on a small CPU.
TRAIN_SHAPE = (48, 128, 128)
TRAIN_SPACING = (64 * 2.5 / 48, 160 * 1.5 / 128, 160 * 1.5 / 128)
VAL_SEED = 90  # validation phantom: neither a training seed (100+) nor an evaluation seed (0-9)


def parse_seeds(text: str) -> list[int]:
    """``"100-131"`` or ``"100,101"`` -> list of ints."""
    if "-" in text:
        lo, hi = (int(t) for t in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(t) for t in text.split(",")]


def write_phantom(seed: int, folder: Path, *, with_labels: bool) -> tuple[Path, Path | None]:
    from napari_fob.core.io import write_image, write_labels
    from napari_fob.core.volume import Volume
    from napari_fob.samples.phantom import make_abdomen_phantom, phantom_affine

    data, labels, _ = make_abdomen_phantom(seed=seed, shape=TRAIN_SHAPE, spacing=TRAIN_SPACING)
    vol = Volume.from_array(data, affine=phantom_affine(data.shape, TRAIN_SPACING))
    image_path = write_image(folder / f"phantom_{seed}.nii.gz", data, vol, dtype="int16")
    label_path = None
    if with_labels:
        label_path = write_labels(folder / f"phantom_{seed}_labels.nii.gz", labels, vol)
    return image_path, label_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="data folder (outside the repository)")
    parser.add_argument("--seeds", default="100-131", help="training phantom seeds (>= 100)")
    parser.add_argument("--no-mni", action="store_true", help="leave the MNI T1 out of training")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    if min(seeds) < 100:
        raise ValueError(f"--seeds: training seeds must be >= 100 (0-99 are held out), got {seeds}")
    out = Path(args.out)
    images, pseudo = out / "images", out / "pseudo"
    images.mkdir(parents=True, exist_ok=True)
    train = [write_phantom(s, images, with_labels=False)[0] for s in seeds]
    if not args.no_mni:
        from napari_fob.samples.mni import IMAGE_FILE

        train.append(Path(shutil.copy(IMAGE_FILE, images / "mni_t1.nii.gz")))
    val_image, val_labels = write_phantom(VAL_SEED, images, with_labels=True)
    cmd = [sys.executable, "-m", "napari_fob.cli", "pseudolabel", *map(str, train)]
    subprocess.run(cmd + ["--out", str(pseudo), "--jobs", str(args.jobs)], check=True)
    lines = ["volumes:"]
    for path in train:
        stem = path.name[: -len(".nii.gz")]
        window = "mr-percentile" if stem.startswith("mni") else "ct-abdomen"
        lines += [
            f"  - image: images/{path.name}",
            f"    pseudo: pseudo/{stem}_supervoxels.nii.gz",
            f"    intensity: {window}",
        ]
    lines += [
        f"  - image: images/{val_image.name}",
        f"    labels: images/{val_labels.name}",
        "    intensity: ct-abdomen",
        "    split: val",
    ]
    (out / "manifest.yaml").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'manifest.yaml'}: {len(train)} training volumes, 1 validation volume")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
