"""Run every benchmark script in ``bench/`` and refresh their sections of ``docs/benchmarks.md``.

``make bench`` runs this. Scripts (``bench/*.py`` not starting with ``_``, except this one) run
one after the other in their own process (each measures its own memory and timings; running them
in parallel on a small CPU would distort the times). Two kinds of script:

- those that rewrite their own section (``real_anatomy.py`` -> "## Real anatomy", the
  file's first section; ``segmenters.py`` -> "## Segmenters", ``prompt_quality.py`` ->
  "## Prompt quality", ``confidence.py`` -> "## Confidence and automatic extent"): left to
  do it;
- those that print a Markdown table (``pipeline.py`` -> "## Pipeline", ``fob_forward.py`` ->
  "## FoB forward"): the first table of their section is replaced by the last table the
  script printed; the prose around it (the reading of the numbers) is kept.

Other sections of the file are never touched. Exit status: the number of scripts that failed.

``make bench`` stays within about 20 minutes on a 2-core CPU: it runs the real-anatomy benchmark
at ``--stride 2`` (every slice within 2 of the support, then every other one: about 15 minutes;
its section says which stride a table comes from; the every-slice run, ``python
bench/real_anatomy.py``, takes about 30 minutes) and the quick scripts. `LONG` scripts (tens of
minutes each) run only with ``--all`` (``make bench-all``) or ``--only``.
Run: ``.venv/bin/python bench/run_all.py [--all] [--only NAME ...] [--skip NAME ...]
[--skip-sam]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DOCS = BENCH.parent / "docs" / "benchmarks.md"
# script -> section whose first table it refreshes; None: the script writes its own section
TABLE_SECTIONS = {
    "pipeline": "Pipeline",
    "fob_forward": "FoB forward",
    "gui_stall": "Main-thread stalls",
}
#: Scripts left out of ``make bench`` (each takes 10-25 minutes on 2 cores): ``--all`` runs them.
LONG = ("adapt", "confidence", "cross_volume", "interaction")
#: Scripts of bench/ that fit constants rather than measure: never run from here.
NOT_BENCHMARKS = ("fit_confidence",)
#: Extra arguments of a script under ``make bench`` (not under ``--only``).
BENCH_ARGS = {"real_anatomy": ["--stride", "2"]}
OWN_SECTIONS = {
    "real_anatomy": "Real anatomy",
    "segmenters": "Segmenters",
    "prompt_quality": "Prompt quality",
    "confidence": "Confidence and automatic extent",
}


def scripts() -> list[Path]:
    """The benchmark scripts, sorted by name."""
    return sorted(
        p
        for p in BENCH.glob("*.py")
        if not p.name.startswith("_")
        and p != Path(__file__).resolve()
        and p.stem not in NOT_BENCHMARKS
    )


def last_table(text: str) -> list[str]:
    """The last block of consecutive Markdown table lines (``| ... |``) in `text`."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks[-1] if blocks else []


def replace_first_table(doc: str, section: str, table: list[str]) -> str:
    """`doc` with the first table of ``## section`` replaced by `table` (unchanged if none)."""
    lines = doc.splitlines()
    try:
        start = lines.index(f"## {section}")
    except ValueError:
        return doc
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    first = next((i for i in range(start, end) if lines[i].startswith("|")), None)
    if first is None or not table:
        return doc
    last = first
    while last + 1 < end and lines[last + 1].startswith("|"):
        last += 1
    return "\n".join(lines[:first] + table + lines[last + 1 :]) + "\n"


def plan(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(name, command) of each script to run, in order; prints what ``make bench`` leaves out."""
    out = []
    for script in scripts():
        name = script.stem
        if (args.only is not None and name not in args.only) or name in args.skip:
            continue
        if args.only is None and not args.all and name in LONG:
            print(f"== {name}: left out of make bench (long); run it with --all or --only {name}")
            continue
        cmd = [sys.executable, str(script)]
        if args.only is None and not args.all:
            cmd += BENCH_ARGS.get(name, [])
        if name == "pipeline" and args.skip_sam:
            cmd.append("--skip-sam")
        out.append((name, cmd))
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="script names (no .py) to run")
    parser.add_argument("--skip", nargs="*", default=[], help="script names to leave out")
    parser.add_argument("--skip-sam", action="store_true", help="pipeline.py without SAM")
    parser.add_argument("--all", action="store_true", help="also the long scripts (LONG)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    summary, failed = {}, 0
    for name, cmd in plan(parse(argv)):
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        print(done.stdout[-4000:], flush=True)
        summary[name] = {"returncode": done.returncode, "wall_s": round(wall, 1)}
        if done.returncode:
            failed += 1
            print(done.stderr[-4000:], file=sys.stderr)
            continue
        if name in TABLE_SECTIONS and DOCS.exists():
            table = last_table(done.stdout)
            DOCS.write_text(replace_first_table(DOCS.read_text(), TABLE_SECTIONS[name], table))
        elif name not in OWN_SECTIONS:
            print(f"note: {name}.py has no section in {DOCS.name}; its results stay in JSON")
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "run_all.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return failed


if __name__ == "__main__":
    sys.exit(main())
