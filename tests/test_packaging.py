"""Packaging: the wheel and the sdist carry the licence, the typing marker, the manifest and (the
sdist) the tests; the version has one source; CITATION.cff and CHANGELOG.md say what they must.

The distributions are built with setuptools' PEP 517 hooks (what `python -m build` and `pip`
call) from a copy of the repository under ``tmp_path``, so nothing is written into the checkout.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

import napari_fob

ROOT = Path(__file__).resolve().parents[1]
PAPER_TITLE = (
    "Focus on Background: Exploring SAM's Potential in Few-shot Medical Image Segmentation "
    "with Background-centric Prompting"
)
SKIP = (".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "build")
SKIP += ("dist", ".hypothesis", "runs", "demo_out")


def _build(source: Path, out: Path, hook: str) -> Path:
    """Run setuptools' `hook` (build_wheel / build_sdist) in `source`; returns the file made."""
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "deprecat" not in result.stderr.lower(), result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(wheel, sdist, wheel built from the unpacked sdist) of a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    wheel = _build(src, tmp, "build_wheel")
    sdist = _build(src, tmp, "build_sdist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    out = tmp / "from_sdist"
    out.mkdir()
    return wheel, sdist, _build(unpacked, out, "build_wheel")


@pytest.mark.slow  # builds three distributions (~5 s)
def test_wheel_ships_licence_typing_marker_manifest_and_samples(dists):
    for wheel in (dists[0], dists[2]):  # from the checkout and from the sdist alike
        names = set(zipfile.ZipFile(wheel).namelist())
        info = f"napari_fob-{napari_fob.__version__}.dist-info"
        assert f"{info}/licenses/LICENSE" in names
        for data in ("py.typed", "napari.yaml", "configs/train_default.yaml"):
            assert f"napari_fob/{data}" in names
        assert "napari_fob/samples/data/LICENSE-MNI.txt" in names
        assert not any(n.startswith("tests/") for n in names)
        meta = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
        assert "License-Expression: BSD-3-Clause" in meta
        assert f"Version: {napari_fob.__version__}" in meta
        assert 'Requires-Dist: napari>=0.5; extra == "gui"' in meta
        core = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
        core = [line for line in core if "extra ==" not in line]
        assert not [line for line in core if "napari" in line or "PyQt" in line], core


@pytest.mark.slow
def test_sdist_carries_the_tests_and_what_they_read(dists):
    names = {n.partition("/")[2] for n in tarfile.open(dists[1]).getnames()}
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "scripts", "bench"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert tracked, "git ls-files found nothing"
    missing = [t for t in tracked if t not in names]
    assert not missing, f"in git but not in the sdist: {missing[:10]}"
    for f in ("LICENSE", "CITATION.cff", "CHANGELOG.md", "README.md", "src/napari_fob/py.typed"):
        assert f in names
    assert not any("__pycache__" in n for n in names)


def test_version_has_one_source():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text
    assert 'version = { attr = "napari_fob.__version__" }' in text
    assert md.version("napari-fob") == napari_fob.__version__


def test_fob_version_prints_the_package_version():
    result = subprocess.run(
        [sys.executable, "-m", "napari_fob.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"fob (napari-fob) {napari_fob.__version__}"


def test_version_lookup_imports_neither_torch_nor_napari():
    code = textwrap.dedent(
        """
        import sys
        from napari_fob.cli import main
        try:
            main(["--version"])
        except SystemExit:
            pass
        print([m for m in ("torch", "napari", "qtpy") if m in sys.modules])
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


def test_licence_is_bsd3_for_the_developers():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "the napari-fob developers" in text
    assert 'license = "BSD-3-Clause"' in (ROOT / "pyproject.toml").read_text()


def test_citation_names_this_software_and_the_fob_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == napari_fob.__version__ and cff["license"] == "BSD-3-Clause"
    paper = cff["preferred-citation"]
    assert paper in cff["references"]
    assert " ".join(paper["title"].split()) == PAPER_TITLE
    assert [a["family-names"] for a in paper["authors"]] == ["Bo", "Zhu", "Koniusz", "Zhang"]
    assert paper["year"] == 2026 and "CVPR" in paper["collection-title"]
    assert paper["identifiers"][0]["value"] == "arXiv:2603.21287"


def test_changelog_lists_the_unreleased_changes():
    text = (ROOT / "CHANGELOG.md").read_text()
    unreleased = text.split("## [Unreleased]")[1].split("\n## ")[0]
    assert "Plugins menu" in unreleased
    assert "PyQt6" in unreleased and "`gui` extra" in unreleased
