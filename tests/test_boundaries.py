"""The layering rule, checked: models/ knows no Qt, widgets/ knows no torch, app/ wires them."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "models": {"PyQt6", "pyqtgraph", "widgets", "app"},
    "widgets": {"torch", "torchvision", "timm", "cv2", "sklearn", "openTSNE", "models", "app"},
    "app/commands": {"PyQt6", "pyqtgraph", "superqt", "widgets"},
    "app/sources": {"PyQt6", "pyqtgraph", "superqt", "widgets"},
}
"""What each folder may not import: models/ knows no Qt, widgets/ no torch, and the commands and frame sources
of app/ run where there is no display."""


def _root(module: str) -> str:
    """The top-level name, with livevis's own sub-packages counted as what they are (livevis.models -> models)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "livevis" and len(parts) > 1 else parts[0]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {_root(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(_root(node.module))
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layers(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    breaches = {str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package]) for path in files}
    assert not {k: v for k, v in breaches.items() if v}


def test_app_is_grouped_by_role():
    loose = sorted(p.stem for p in (ROOT / "app").glob("*.py") if p.stem != "__init__")
    roles = sorted(p.parent.name for p in (ROOT / "app").glob("*/__init__.py"))
    assert len(loose) <= 8 and {"commands", "sources", "live", "window", "panes", "tabs"} <= set(roles), loose


def test_the_commands_run_where_qt_cannot_be_imported(tmp_path, chelsea_path, pan_video):
    """A PyQt6 that fails to import shadows the real one: render (an image, every frame of a video), figure,
    mine and bench still run, so none of them reaches Qt."""
    blocker = tmp_path / "blocked" / "PyQt6"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('PyQt6 is blocked for this test')\n")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.jpg").write_bytes(chelsea_path.read_bytes())
    env = {
        **os.environ,
        "PYTHONPATH": str(blocker.parent),
        "QT_QPA_PLATFORM": "offscreen",
        "LIVEVIS_CACHE": str(tmp_path / "cache"),
    }
    model = ["--model", "lenet"]
    commands = {
        "render": ["render", str(chelsea_path), *model, "--out", str(tmp_path / "r")],
        "render --all-frames": ["render", str(pan_video), "--all-frames", *model, "--out", str(tmp_path / "v")],
        "figure": ["figure", str(chelsea_path), *model, "--out", str(tmp_path / "f.png")],
        "mine": ["mine", str(folder), *model, "--layer", "conv1", "--top", "1", "--workers", "0"],
        "bench": ["bench", *model, "--weights", "none", "--frames", "2", "--warmup", "0", "--json"],
    }
    for name, args in commands.items():
        run = subprocess.run(
            [sys.executable, "-m", "livevis", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, (name, run.stderr[-2000:])
    check = subprocess.run([sys.executable, "-c", "import PyQt6"], env=env, capture_output=True, text=True)
    assert "blocked" in check.stderr, "the blocker shadows PyQt6"


def test_the_checker_sees_a_breach(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom PyQt6.QtCore import QObject\ndef f():\n    import torch.nn\nfrom livevis.app import x\n"
    )
    assert imported_roots(bad) == {"os", "PyQt6", "torch", "app"}


def test_importing_models_loads_no_qt():
    code = "import sys, livevis.models.pipeline; print(any(m.startswith('PyQt6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PACKAGES = {
    "livevis": "livevis",
    "app": "livevis.app",
    "models": "livevis.models",
    "widgets": "livevis.widgets",
    "assets": "livevis.assets",
}


def livevis_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the installed package by its dotted name (a package by its own name)."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules[name] = path
    return modules


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run: those under `if TYPE_CHECKING:` do not."""
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in typing_only]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the livevis modules it imports when it runs (inside functions too), with the packages on
    the way (importing a.b.c runs a.b's __init__ first), but not its own enclosing packages."""
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = []
        for node in _runtime_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        edges = set()
        for target in targets:
            parts = target.split(".")
            for end in range(2, len(parts) + 1):
                module = ".".join(parts[:end])
                if module in modules and module != name and not name.startswith(module + "."):
                    edges.add(module)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_itself_through_others_at_run_time():
    graph = import_graph(livevis_modules())
    assert len(graph) > 80 and graph["livevis.models.engine"] >= {"livevis.models.layers", "livevis.models.zoo"}
    assert import_cycles(graph) == []


def test_the_cycle_check_sees_a_cycle_and_ignores_type_checking_imports(tmp_path):
    for folder in PACKAGES:
        (tmp_path / folder).mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "a.py").write_text("from .b import f\n")
    (tmp_path / "models" / "b.py").write_text("def f():\n    from livevis.models import c\n")
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
    (tmp_path / "models" / "c.py").write_text(typing_only)
    assert import_cycles(import_graph(livevis_modules(tmp_path))) == []
    (tmp_path / "models" / "c.py").write_text("import livevis.models.a\n")
    assert import_cycles(import_graph(livevis_modules(tmp_path))) == [
        ["livevis.models.a", "livevis.models.b", "livevis.models.c"]
    ]


def test_models_is_grouped_by_capability():
    loose = [p.stem for p in (ROOT / "models").glob("*.py") if p.stem != "__init__"]
    subpackages = [p.parent.name for p in (ROOT / "models").glob("*/__init__.py")]
    assert len(loose) <= 12 and len(subpackages) >= 4, (loose, subpackages)
