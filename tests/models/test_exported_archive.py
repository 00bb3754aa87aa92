"""A .pt2 file that would run code as torch opens it is refused before torch opens it: real files written by
torch.export.save, then rewritten the way a hostile file would be (a weight or the sample inputs replaced by
a pickle that creates a file, a shape expression that sympy evaluates as Python, a graph that calls
os.system, guards that torch pastes into Python source)."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.export import Dim

from livevis.models import Engine
from livevis.models.errors import UnsafeModelFileError, WeightsError
from livevis.models.zoo.custom import load_model_file
from livevis.models.zoo.exported_archive import is_plain_arithmetic, is_shape_guard, pickle_globals

LIVEVIS = Path(sys.executable).parent / "livevis"
Rewrite = Callable[[str, dict[str, bytes], Path], None]


class CreatesFile:
    """Unpickled, it opens (and so creates) the file at `path`: code that ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _tiny_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()


def save_program(path: Path, *, dynamic_batch: bool = False) -> Path:
    shapes = ({0: Dim("batch", min=1, max=8)},) if dynamic_batch else None
    batch = 2 if dynamic_batch else 1  # torch specialises a dynamic size traced at 1
    program = torch.export.export(_tiny_network(), (torch.zeros(batch, 3, 16, 16),), dynamic_shapes=shapes)
    torch.export.save(program, str(path))
    return path


def rewritten(source: Path, target: Path, rewrite: Rewrite, marker: Path) -> Path:
    """`source`'s archive with some of its files changed by `rewrite(root folder, files, marker)`."""
    with zipfile.ZipFile(source) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    rewrite(next(iter(files)).split("/")[0], files, marker)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _torch_saved(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def weight_as_pickle(root: str, files: dict[str, bytes], marker: Path) -> None:
    config_name = f"{root}/data/weights/model_weights_config.json"
    config = json.loads(files[config_name])
    payload = next(iter(config["config"].values()))
    payload["use_pickle"] = True
    files[config_name] = json.dumps(config).encode()
    files[f"{root}/data/weights/{payload['path_name']}"] = _torch_saved(CreatesFile(marker))


def sample_inputs_as_pickle(root: str, files: dict[str, bytes], marker: Path) -> None:
    files[f"{root}/data/sample_inputs/model.pt"] = _torch_saved(((CreatesFile(marker),), {}))


def constant_as_opaque_object(root: str, files: dict[str, bytes], marker: Path) -> None:
    config_name = f"{root}/data/constants/model_constants_config.json"
    config = {"config": {"c": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}}}
    files[config_name] = json.dumps(config).encode()
    files[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(CreatesFile(marker))


def _edit_program(files: dict[str, bytes], root: str, edit: Callable[[dict], None]) -> None:
    name = f"{root}/models/model.json"
    program = json.loads(files[name])
    edit(program)
    files[name] = json.dumps(program).encode()


def shape_expression_as_python(root: str, files: dict[str, bytes], marker: Path) -> None:
    def edit(program: dict) -> None:
        text = json.dumps(program)
        written = '"expr_str": "Symbol('
        assert written in text, "a dynamic batch is written as a shape expression"
        program.clear()
        program.update(
            json.loads(text.replace(written, f"{written[:-7]}(open({str(marker)!r}, 'w') and 0) + Symbol(", 1))
        )

    _edit_program(files, root, edit)


def graph_calls_os_system(root: str, files: dict[str, bytes], marker: Path) -> None:
    def edit(program: dict) -> None:
        node = next(n for n in program["graph_module"]["graph"]["nodes"] if n["target"].endswith("relu.default"))
        node["target"] = "torch.serialization.os.system"

    _edit_program(files, root, edit)


def guards_as_python(root: str, files: dict[str, bytes], marker: Path) -> None:
    _edit_program(files, root, lambda program: program.update(guards_code=[f"open({str(marker)!r}, 'w') is not None"]))


def compiled_code(root: str, files: dict[str, bytes], marker: Path) -> None:
    files[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pt2")
    return {
        "static": save_program(folder / "tiny.pt2"),
        "dynamic": save_program(folder / "tiny_dynamic.pt2", dynamic_batch=True),
    }


HOSTILE = {
    "weight_as_pickle": (weight_as_pickle, "static", "weight '0.weight' is a pickle"),
    "sample_inputs_as_pickle": (sample_inputs_as_pickle, "static", "sample inputs hold Python objects"),
    "constant_as_opaque_object": (constant_as_opaque_object, "static", "is a pickled Python object"),
    "shape_expression_as_python": (shape_expression_as_python, "dynamic", "shape expression"),
    "graph_calls_os_system": (graph_calls_os_system, "static", "torch.serialization.os.system"),
    "guards_as_python": (guards_as_python, "static", "guard"),
    "compiled_code": (compiled_code, "static", "compiled native code"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_pt2_that_would_run_code_is_refused_and_nothing_in_it_runs(tmp_path, exported, kind):
    rewrite, base, reason = HOSTILE[kind]
    marker = tmp_path / "code_ran"
    path = rewritten(exported[base], tmp_path / "evil.pt2", rewrite, marker)
    with pytest.raises(UnsafeModelFileError) as refused:
        Engine.load(str(path), device="cpu")
    message = str(refused.value)
    assert reason in message and "--trust-model-file" in message and "\n" not in message
    assert not marker.exists(), "the file's code ran"


def test_pickles_in_a_pt2_do_run_once_the_user_trusts_the_file(tmp_path, exported):
    """The check is what keeps the code from running: torch itself runs it, as the trusted path shows."""
    marker = tmp_path / "code_ran"
    path = rewritten(exported["static"], tmp_path / "evil.pt2", sample_inputs_as_pickle, marker)
    load_model_file(path, trusted=True)
    assert marker.exists()


@pytest.mark.parametrize("base", ["static", "dynamic"])
def test_pt2_files_as_torch_export_writes_them_load_untouched(exported, base):
    engine = Engine.load(str(exported[base]), device="cpu", input_size=16)
    assert [layer.path for layer in engine.layers][:3] == ["input", "0", "1"]


def test_a_pt2_naming_one_file_twice_in_two_cases_is_refused(tmp_path, exported):
    """torch finds a file in the archive whatever its case: a second copy could be the one that loads."""

    def shadow_config(root: str, files: dict[str, bytes], marker: Path) -> None:
        files[f"{root}/data/weights/MODEL_weights_config.json"] = files[
            f"{root}/data/weights/model_weights_config.json"
        ]

    path = rewritten(exported["static"], tmp_path / "twice.pt2", shadow_config, tmp_path / "unused")
    with pytest.raises(UnsafeModelFileError, match="names one file twice"):
        load_model_file(path)


def test_a_file_that_is_no_pt2_archive_is_still_a_weights_error(tmp_path):
    path = tmp_path / "bad.pt2"
    path.write_bytes(b"PK\x03\x04 not an exported program")
    with pytest.raises(WeightsError, match=r"bad\.pt2 is not a TorchScript or torch\.export \(\.pt2\) model file"):
        load_model_file(path)


def test_pickle_globals_are_read_without_running_the_pickle(tmp_path):
    marker = tmp_path / "code_ran"
    assert pickle_globals(pickle.dumps(CreatesFile(marker), protocol=2)) == ["io.open"]
    assert pickle_globals(pickle.dumps(CreatesFile(marker), protocol=4)) == ["io.open"]
    assert pickle_globals(pickle.dumps({"a": [1, 2.0, "x"]}, protocol=4)) == []
    assert pickle_globals(b"\x80\x04not a pickle") is None
    assert not marker.exists()


def test_a_global_named_by_strings_the_pickle_moved_around_cannot_be_told():
    """STACK_GLOBAL takes its names from the stack: strings pushed, then popped, must not pass for them."""
    hidden = b"\x80\x04" + b"\x8c\x02os\x8c\x06system" + b"\x8c\x0bcollections\x8c\x0bOrderedDict" + b"00\x93."
    assert pickle_globals(hidden) is None


@pytest.mark.parametrize(
    "text, plain",
    [
        ("s0", True),
        ("Symbol('s31', positive=True, integer=True)", True),
        ("Max(Integer(1), Add(Symbol('s82', positive=True, integer=True), Integer(-2)))", True),
        ("Float('1.5', precision=53)", True),
        ("Symbol('a b')", False),
        ("Max('__import__(1)')", False),
        ("Symbol('s0', integer='x')", False),
        ("2*s77 + 1", True),
        ("Max(1, s0)", True),
        ("Eq(s0, 3)", True),
        ("FloorDiv(s0 - 1, 2) + 1", True),
        ("(s0 - 1)//2 >= 0", True),
        ("__import__('os').system('x')", False),
        ("exec(s0)", False),
        ("s0.__class__", False),
        ("Max(1, s0)[0]", False),
        ("(lambda: 0)()", False),
    ],
)
def test_shape_expressions_pass_only_as_arithmetic(text, plain):
    assert is_plain_arithmetic(text) is plain


@pytest.mark.parametrize(
    "text, plain",
    [
        ("L['x'].size()[0] == 3", True),
        ("2 <= L['x'].size()[1] and L['x'].stride()[0] == 48", True),
        ("math.isnan(L['y'])", True),
        ("L['x'].__class__", False),
        ("open('x', 'w')", False),
        ('L["x"].size()[0] == 3, "message"', False),
    ],
)
def test_guards_pass_only_as_checks_of_input_shapes(text, plain):
    assert is_shape_guard(text) is plain


def _layers(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LIVEVIS), "layers", *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_the_command_line_refuses_a_pt2_carrying_a_pickle_in_one_line(tmp_path, exported):
    marker = tmp_path / "code_ran"
    rewritten(exported["static"], tmp_path / "evil.pt2", weight_as_pickle, marker)
    run = _layers("--model", "evil.pt2", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("livevis: error: evil.pt2 was not opened: its weight '0.weight' is a pickle")
    assert len(run.stderr.splitlines()) == 1 and run.stdout == ""
    assert not marker.exists(), "the file's code ran"


def test_the_command_line_opens_a_pt2_carrying_a_pickle_once_told_to_trust_it(tmp_path, exported):
    marker = tmp_path / "code_ran"
    rewritten(exported["static"], tmp_path / "trusted.pt2", sample_inputs_as_pickle, marker)
    run = _layers("--model", "trusted.pt2", "--input-size", "16", "--trust-model-file", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert marker.exists() and "input" in run.stdout
