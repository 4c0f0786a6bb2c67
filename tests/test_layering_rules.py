"""The package's layering, read from the source (AST): what each sub-package may import, no import
cycles, no private names taken from another module, a short package root, short files.

Every import counts: at module level, inside functions (lazy imports) and under
``TYPE_CHECKING``. Cycles are counted over the imports that run (lazy ones included); an import
under ``TYPE_CHECKING`` never runs, so it may point back (annotations only).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "napari_fob"
GLUE = {"_reader", "_writer", "_sample_data"}  # the npe2 glue at the root
MAX_ROOT_MODULES = 8  # besides the glue and cli.py
MAX_LINES = 400
SCIENCE = {"numpy", "scipy", "skimage", "nibabel"}
TORCH = {"torch", "torchvision", "segment_anything"}

# unit -> (napari_fob units it may import, third-party top-level modules it may import).
# A unit is a sub-package, or a root module ("devices", "cli", the "glue", the package root).
RULES: dict[str, tuple[set[str], set[str]]] = {
    "root": (set(), set()),
    "geometry": (set(), SCIENCE),
    # the format readers and writers (highdicom: DICOM-SEG); platformdirs for the user folders
    "core": (
        {"root", "geometry"},
        SCIENCE | {"pydicom", "SimpleITK", "highdicom", "platformdirs"},
    ),
    "devices": (set(), {"torch"}),
    "model": ({"core", "devices"}, TORCH),
    "prompting": ({"root", "core", "geometry", "model", "devices"}, SCIENCE | {"torch"}),
    "segmenters": (  # pooch and requests: the weights download; sam2 + hydra: SAM 2.1
        {"core", "geometry", "devices"},
        SCIENCE | TORCH | {"tqdm", "yaml", "pooch", "requests", "sam2", "hydra"},
    ),
    "session": ({"root", "core", "geometry", "prompting"}, SCIENCE | {"pydantic"}),  # sidecar
    "samples": ({"core"}, SCIENCE | {"nilearn"}),  # real anatomy: the bench extra, lazily
    "training": (
        {"core", "geometry", "model", "prompting", "segmenters", "devices"},
        SCIENCE | TORCH | {"tqdm", "yaml", "tensorboard", "pydantic"},  # config value checks
    ),
    "commands": (
        {"root", "cli", "core", "geometry", "prompting", "samples", "segmenters", "session",
         "training", "devices", "model"},
        SCIENCE | {"matplotlib", "tqdm", "yaml", "torch"},
    ),  # fmt: skip
    "cli": ({"root", "commands"}, set()),
    "main": ({"cli"}, set()),
    "glue": ({"core", "samples"}, {"numpy", "napari"}),
    "_widgets": (
        {"root", "core", "geometry", "prompting", "segmenters", "session", "training"},
        {"numpy", "napari", "qtpy", "pandas"},
    ),
}
GUI = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "pandas", "magicgui", "vispy"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module (dotted)
    target: str  # imported module (dotted), or a third-party top-level name
    names: tuple[str, ...]  # names taken with "from target import ..."
    lazy: bool  # inside a function
    typing_only: bool  # under `if TYPE_CHECKING:`
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def unit_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    head = parts[1]
    if head in GLUE:
        return "glue"
    if head == "__main__":
        return "main"
    return head


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[Import] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, lazy: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True, typing_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy, typing_only)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    out.append(Import(module, alias.name, (), lazy, typing_only, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    target = f"{base}.{child.module}" if child.module else base
                else:
                    target = child.module or ""
                names = tuple(a.name for a in child.names)
                # "from pkg import mod" imports the module pkg.mod, not an attribute of pkg
                subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
                attrs = tuple(n for n in names if f"{target}.{n}" not in MODULES)
                for sub in subs:
                    out.append(Import(module, sub, (), lazy, typing_only, child.lineno))
                if attrs or not subs:
                    out.append(Import(module, target, attrs, lazy, typing_only, child.lineno))
            else:
                visit(child, lazy, typing_only)

    visit(tree, False, False)
    return out


ALL_IMPORTS = [imp for m, p in sorted(MODULES.items()) for imp in imports_of(m, p)]


def _project(target: str) -> bool:
    return target == "napari_fob" or target.startswith("napari_fob.")


def test_every_import_is_allowed_by_the_table():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for imp in ALL_IMPORTS:
        unit = unit_of(imp.source)
        allowed_units, allowed_third = RULES[unit]
        if _project(imp.target):
            target_unit = unit_of(imp.target)
            if target_unit != unit and target_unit not in allowed_units:
                bad.append(f"{imp.source}:{imp.line} imports {imp.target} ({target_unit})")
        else:
            top = imp.target.split(".")[0]
            if top not in stdlib and top not in allowed_third:
                bad.append(f"{imp.source}:{imp.line} imports {top}")
    assert not bad, "imports outside the layering table:\n" + "\n".join(bad)


def test_only_widgets_and_glue_import_gui_toolkits():
    bad = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in ALL_IMPORTS
        if imp.target.split(".")[0] in GUI and unit_of(imp.source) not in {"_widgets", "glue"}
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles_counting_lazy_imports():
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in ALL_IMPORTS:
        if _project(imp.target) and not imp.typing_only and imp.target in MODULES:
            if imp.target != imp.source:
                graph[imp.source].add(imp.target)
    cycles = _strongly_connected(graph)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_names_taken_from_another_module():
    bad = [
        f"{imp.source}:{imp.line} takes {name} from {imp.target}"
        for imp in ALL_IMPORTS
        if _project(imp.target)
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not bad, "\n".join(bad)


def test_no_module_reads_another_objects_private_attributes():
    """``x._name`` only on ``self``/``cls``, or for a name the module itself defines (its own
    classes' helpers, argparse defaults it set): the session's records, the form and other
    objects' internals are reached through their public API."""
    bad = []
    for module, path in sorted(MODULES.items()):
        tree = ast.parse(path.read_text())
        defined = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.keyword) and node.arg:
                defined.add(node.arg)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in defined
            ):
                bad.append(f"{module}:{node.lineno} reads {ast.unparse(node)}")
    assert not bad, "\n".join(bad)


def test_the_package_root_is_short():
    root = [p.stem for p in PACKAGE.glob("*.py")]
    others = [m for m in root if m not in GLUE | {"cli", "__init__", "__main__"}]
    assert len(others) <= MAX_ROOT_MODULES, sorted(others)


def test_no_source_file_is_too_long():
    long = {
        str(p.relative_to(SRC)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_every_unit_has_a_rule_and_a_docstring():
    units = {unit_of(m) for m in MODULES}
    assert units <= set(RULES), units - set(RULES)
    missing = [
        str(p.relative_to(SRC))
        for p in PACKAGE.rglob("__init__.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert not missing, f"sub-packages without a docstring saying what they hold: {missing}"


@pytest.mark.parametrize(
    "code, expected",
    [
        ("import a\nb = 1\n", ["a"]),
        ("def f():\n    import torch\n", ["torch lazy"]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
         ["typing", "torch typing"]),
    ],
)  # fmt: skip
def test_the_import_reader_sees_lazy_and_typing_imports(tmp_path, code, expected):
    path = tmp_path / "m.py"
    path.write_text(code)
    found = [
        imp.target + (" lazy" if imp.lazy else "") + (" typing" if imp.typing_only else "")
        for imp in imports_of("napari_fob.m", path)
    ]
    assert found == expected


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out
