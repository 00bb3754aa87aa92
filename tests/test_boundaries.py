"""The layering rule, checked: models/ knows no Qt, widgets/ knows no torch, app/ wires them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "models": {"PyQt6", "pyqtgraph", "widgets", "app"},
    "widgets": {"torch", "torchvision", "timm", "cv2", "sklearn", "openTSNE", "models", "app"},
}


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
