"""Write the bundled ``abdomen-phantom`` sample (seed 0) that ``load_sample`` reads.

Generating the phantom takes about a second of scipy on a 2-core machine, and napari runs
sample-data functions on its main thread, so ``File > Open Sample`` froze the viewer for that
long. The package therefore ships seed 0 as a file; other seeds are generated. Re-run after any
change to `napari_fob.samples.phantom` (a test fails until the file matches the generator)::

    .venv/bin/python scripts/make_phantom_sample.py [--out src/napari_fob/samples/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_fob.samples.bundled import BUNDLED_SEED, save_bundled
from napari_fob.samples.phantom import make_abdomen_phantom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "src" / "napari_fob" / "samples" / "data"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args(argv)
    image, labels, _ = make_abdomen_phantom(seed=BUNDLED_SEED)
    path = save_bundled(args.out, image, labels)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
