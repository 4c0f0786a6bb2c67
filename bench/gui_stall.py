"""Main-thread stalls of the annotator as napari really loads it (Plugins menu, threads on).

A 20 ms QTimer ticks on napari's main thread; the largest gap between two ticks while an action
runs is how long the user could not move the mouse, type or see the canvas update. Eight actions
on each bundled sample, through napari's plugin manager with real clicks and a real mouse drag:

- open sample: ``File > Open Sample`` (napari adds the image and two labels layers; the first
  layers of a session also pay napari's own lazy imports);
- open annotator: ``Plugins > napari-fob > FoB annotator``, until its layers are created;
- predict: one support slice (the sample's liver / first structure), ``Predict prompts`` over
  the range the widget proposes, until the worker is done;
- commit range: ``Commit range`` with the random walker (no SAM weights on this machine);
- gallery: the Gallery tab shown, until every slice's thumbnail is drawn;
- drag: one background point dragged with the mouse on the canvas;
- undo: ``Undo`` (the drag);
- save: the session saved to a folder (what the Save dialog's OK does).

Target: no action stalls the main thread longer than 100 ms. Prints a Markdown table (the
"Main-thread stalls" section of docs/benchmarks.md) and writes bench/results/gui_stall.json.
Needs a display: without one it re-runs itself under ``xvfb-run`` with ``QT_QPA_PLATFORM=xcb``.

Run: ``.venv/bin/python bench/gui_stall.py [--samples abdomen-phantom mni-brain] [--prompts fob]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "_widgets"))  # the real-input helpers
TARGET_MS = 100.0
ACTIONS = (
    "open sample", "open annotator", "predict", "commit range", "gallery", "drag", "undo", "save",
)  # fmt: skip
SAMPLES = {"abdomen-phantom": "abdomen CT phantom", "mni-brain": "MNI T1"}


class StackSampler:
    """With ``--profile``: samples the main thread's stack whenever the meter is late, so the
    table's stalls can be traced to their code (printed per action, most frequent first)."""

    def __init__(self, meter: StallMeter) -> None:
        import collections
        import threading

        self.meter, self.samples = meter, collections.Counter()
        self.main = threading.main_thread().ident
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        import threading
        import traceback

        while True:
            time.sleep(0.01)
            if time.perf_counter() - self.meter.last > 0.05:
                me = threading.get_ident()
                for ident, frame in sys._current_frames().items():
                    if ident == me:
                        continue
                    # Another thread's stack matters when it holds the interpreter lock in a
                    # long C call (scipy.ndimage, imports): the main thread then waits for it.
                    who = "main" if ident == self.main else "worker"
                    stack = traceback.extract_stack(frame)[-14:]
                    key = (f"[{who}]",) + tuple(
                        f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}"
                        for f in stack
                    )
                    self.samples[key] += 1

    def report(self, title: str) -> None:
        print(f"--- where the main thread was while late: {title}")
        for stack, n in self.samples.most_common(6):
            print(f"  {n} x 10 ms:\n    " + "\n    ".join(stack))
        self.samples.clear()


class StallMeter:
    """Largest gap between ticks of a 20 ms timer on the main thread, per measured action."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self.last = time.perf_counter()
        self.gap = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gap = max(self.gap, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last, self.gap = time.perf_counter(), 0.0

    def stop(self) -> float:
        """The largest gap in ms since `start`, counting the one still open."""
        self._tick()
        return 1000.0 * self.gap


def measure_sample(sample: str, prompts: str, out_dir: Path, profile: bool = False) -> dict:
    """Stall (ms) and wall time (s) of each action on one sample, in a fresh viewer."""
    import napari
    import numpy as np
    from real_input import button, data_to_canvas, drag, open_annotator, wait

    from napari_fob._widgets import layers as L

    rows: dict[str, dict[str, float]] = {}

    def run(name: str, action, done=lambda: True, timeout_s: float = 300.0) -> None:
        meter.start()
        t0 = time.perf_counter()
        action()
        end = t0 + timeout_s
        while not done() and time.perf_counter() < end:
            wait(20)
        wait(100)  # what the action's end leaves to draw
        rows[name] = {"stall_ms": meter.stop(), "wall_s": time.perf_counter() - t0}
        if sampler is not None:
            sampler.report(f"{sample} {name}")

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 950)
    meter = StallMeter()  # after the viewer: its timer ticks on napari's application
    sampler = StackSampler(meter) if profile else None
    wait(500)
    state: dict = {}

    def open_annotator_now() -> None:
        state["w"] = open_annotator(viewer, settle=False)

    run("open sample", lambda: viewer.open_sample("napari-fob", sample))
    run("open annotator", open_annotator_now, lambda: not state["w"].creating_layers)
    w = state["w"]
    if prompts == "mask-ring":
        w._c.prompts.setCurrentIndex(1)
    w._c.segmenter.setCurrentText("random-walker")
    wait(200)
    idle = lambda: not w.busy  # noqa: E731
    run("predict", lambda: button(w, "predict").click(), idle)
    run("commit range", lambda: button(w, "commit range").click(), idle)
    run("gallery", lambda: w._tabs.setCurrentIndex(1), w._gallery.drawn)
    w._tabs.setCurrentIndex(0)
    bg = viewer.layers[L.BG_LAYER]
    z = int(np.round(bg.data[len(bg.data) // 2, 0]))
    viewer.dims.set_current_step(0, z)
    viewer.layers.selection.active = bg
    bg.mode = "select"
    wait(300)
    row = int(np.flatnonzero(np.round(bg.data[:, 0]).astype(int) == z)[0])
    start = data_to_canvas(viewer, bg, bg.data[row])
    goal = data_to_canvas(viewer, bg, bg.data[row] + np.array([0.0, 5.0, 5.0]))
    run("drag", lambda: drag(viewer, start, goal))
    run("undo", lambda: button(w, "undo").click())
    run("save", lambda: w.save_session(out_dir / sample))
    w.close()
    viewer.close()
    return rows


def measure_gallery(n_slices: int) -> dict:
    """Stall and wall time of showing the gallery of one structure prompted on `n_slices` slices.

    A phantom of `n_slices` slices (its liver spans most of them), the mask-ring generator over
    the liver's whole extent (fast: the gallery is measured, not the prompts), then the Gallery
    tab shown until every thumbnail is drawn.
    """
    import napari
    import numpy as np
    from real_input import button, open_annotator, wait

    from napari_fob._widgets import layers as L
    from napari_fob.samples.phantom import make_abdomen_phantom

    image, labels, _ = make_abdomen_phantom(shape=(n_slices, 128, 128), seed=3)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 950)
    viewer.add_image(image, name="phantom", contrast_limits=(-160, 240))
    w = open_annotator(viewer)
    meter = StallMeter()
    zs = np.flatnonzero((labels == 1).any(axis=(1, 2)))
    z = int(zs[len(zs) // 2])
    support = np.zeros(labels.shape, np.uint8)
    support[z][labels[z] == 1] = 1
    viewer.layers[L.SUPPORT_LAYER].data = support
    w._c.prompts.setCurrentIndex(1)  # mask-ring
    w._c.z_from.setValue(int(zs[0]))
    w._c.z_to.setValue(int(zs[-1]))
    button(w, "predict").click()
    end = time.perf_counter() + 600
    while (w.busy or w.session is None) and time.perf_counter() < end:
        wait(50)
    meter.start()
    t0 = time.perf_counter()
    w._tabs.setCurrentIndex(1)
    while time.perf_counter() < end and not w._gallery.drawn():
        wait(20)
    wait(100)
    n = w._gallery.view.count()
    row = {"stall_ms": meter.stop(), "wall_s": time.perf_counter() - t0, "slices": n}
    w.close()
    viewer.close()
    return row


def table(results: dict, machine: str) -> str:
    lines = [
        f"| action | {' | '.join(f'{s} stall (ms)' for s in results)} | "
        f"{' | '.join(f'{s} wall (s)' for s in results)} |",
        "|---|" + "---:|" * (2 * len(results)),
    ]
    for action in ACTIONS:
        stalls = [f"{results[s][action]['stall_ms']:.0f}" for s in results]
        walls = [f"{results[s][action]['wall_s']:.1f}" for s in results]
        lines.append(f"| {action} | {' | '.join(stalls)} | {' | '.join(walls)} |")
    worst = max(r["stall_ms"] for res in results.values() for r in res.values())
    verdict = "met" if worst <= TARGET_MS else f"not met (worst {worst:.0f} ms)"
    return "\n".join(lines) + f"\n\nTarget {TARGET_MS:.0f} ms: {verdict}. Machine: {machine}.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", nargs="+", default=list(SAMPLES), choices=list(SAMPLES))
    parser.add_argument("--prompts", choices=("fob", "mask-ring"), default="fob")
    parser.add_argument("--profile", action="store_true", help="print where the stalls are")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "gui_stall.json")
    parser.add_argument(
        "--gallery-slices", type=int, default=200,
        help="also time the gallery of one structure on this many slices (0: not)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, __file__]
        return subprocess.run([*cmd, *(argv or sys.argv[1:])], env=env).returncode
    os.environ.pop("NAPARI_FOB_NOTHREADS", None)  # threads on: what users run
    import warnings

    warnings.filterwarnings("ignore")
    import torch  # noqa: F401, I001  (before any OpenGL context: _widgets/_mesa_guard.py)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Qt {_qt_api()}, {args.prompts}"
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            s: measure_sample(s, args.prompts, Path(tmp), args.profile) for s in args.samples
        }
    text = table(results, machine)
    report = {"machine": machine, "results": results}
    if args.gallery_slices > 0:
        big = measure_gallery(args.gallery_slices)
        report["gallery_large"] = big
        text += (
            f"\nGallery of {big['slices']} slices: stall {big['stall_ms']:.0f} ms, all "
            f"thumbnails drawn in {big['wall_s']:.1f} s.\n"
        )
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip Qt/vispy teardown at exit, which can hang under Xvfb


def _qt_api() -> str:
    import qtpy

    return qtpy.API_NAME


if __name__ == "__main__":
    sys.exit(main())
