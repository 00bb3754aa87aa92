"""livevis installs as one top-level package: nothing named app, models, widgets or assets lands in
the environment, so a user's own `models` package is theirs."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIVEVIS = Path(sysconfig.get_path("scripts")) / "livevis"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_no_generic_top_level_names_are_importable_outside_the_repository(tmp_path):
    for name in ("models", "app", "widgets", "assets"):
        result = _run([sys.executable, "-c", f"import {name}"], tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, name
    found = _run(
        [
            sys.executable,
            "-c",
            "import livevis.models, livevis.app, livevis.widgets, livevis.assets as a; print(a.SAMPLES_DIR.is_dir())",
        ],
        tmp_path,
    )
    assert found.returncode == 0 and found.stdout.strip() == "True", found.stderr


def test_a_users_own_models_package_is_the_one_loaded(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mynet.py").write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(8, 10))\n"
    )
    result = _run([str(LIVEVIS), "layers", "--model", "models.mynet:build", "--input-size", "32", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    shapes = {row["path"]: (row["type"], row["shape"]) for row in json.loads(result.stdout)}
    assert shapes["0"] == ("Conv2d", [8, 30, 30]) and shapes["4"] == ("Linear", [10])


def test_python_dash_m_livevis_is_the_command(tmp_path):
    result = _run([sys.executable, "-m", "livevis", "--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("livevis "), result.stderr


def test_every_package_folder_is_listed_for_the_wheel():
    """setuptools installs only the packages pyproject.toml lists: a sub-package missing there would be
    absent from a wheel while an editable install still finds it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {package: ROOT / folder for package, folder in config["package-dir"].items()}
    found = {
        ".".join((package, *init.parent.relative_to(folder).parts))
        for package, folder in folders.items()
        for init in folder.rglob("__init__.py")
    }
    assert found and found == listed
