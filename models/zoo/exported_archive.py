"""Whether opening a .pt2 (torch.export) file would run code, told from the archive itself before torch
opens it, without unpickling or evaluating anything.

`torch.export.load` runs what a file carries in several ways: it unpickles with `weights_only=False` every
weight or constant its JSON config marks `use_pickle`, and every custom or opaque object; it unpickles the
sample inputs fully when they do not load as tensors alone; it loads AOTInductor's compiled libraries; it
hands each shape expression to `sympy.sympify`, which evaluates Python; it `exec`s the program's guards; and
a graph node's target may name any callable reachable from `torch` (`torch.serialization.os.system`), which
the program then calls as it runs. A file that torch.export.save wrote from a plain network holds none of
these: its weights are raw tensor bytes, its graph calls tensor operators, its expressions are arithmetic.
Anything else is refused unless the user says they trust the file.
"""

from __future__ import annotations

import ast
import io
import json
import math
import operator
import pickletools
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import UnsafeModelFileError, WeightsError

_ARCHIVE_FILES = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
)
_SAMPLE_INPUT_FILES = re.compile(
    r"data\.pkl|data/\d+|version|\.format_version|\.storage_alignment|byteorder|\.data/\w+"
)
_TENSOR_PICKLE_GLOBALS = frozenset(
    {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.device",
    }
)
_STRING_PUSHES = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_FILE_OPERATORS = frozenset({"aten::save", "aten::from_file", "debugprims::load_tensor"})
"""Tensor operators that read or write files named by the program."""
_SYMPY_FROM_TEXT = frozenset({"Symbol", "Float", "Integer", "Rational"})
_SYMPY_CLASSES = _SYMPY_FROM_TEXT | frozenset(
    {
        *("Add", "Mul", "Pow", "Max", "Min", "Abs", "Mod", "floor", "ceiling", "Piecewise", "ExprCondPair"),
        *("Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan"),
        *("Equality", "Unequality", "And", "Or", "Not", "BooleanTrue", "BooleanFalse"),
    }
)
_GUARD_NAMES = frozenset({"L", "math", "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"})
_GUARD_ATTRIBUTES = frozenset({"size", "stride", "storage_offset", "dim", "numel", "isnan", "isinf", "inf"})
_ARITHMETIC_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Load,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)
_TRUST_HINT = "pass --trust-model-file to open it anyway, only if you trust where it came from"


def check_exported_archive(path: Path) -> None:
    """Raises UnsafeModelFileError saying what in the file would run code, WeightsError where it is not
    a torch.export archive at all; returns where torch may open it."""
    try:
        with zipfile.ZipFile(path) as archive:
            problem = _archive_problem(path, archive)
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:
        # a file that is not the JSON and zip torch.export writes: torch would fail on it as well
        raise WeightsError(f"{path} is not a TorchScript or torch.export (.pt2) model file ({exc})") from None
    if problem:
        raise UnsafeModelFileError(
            f"{path} was not opened: {problem}, which would run code as it loads or runs; {_TRUST_HINT}"
        )


def _archive_problem(path: Path, archive: zipfile.ZipFile) -> str | None:
    entries = _entries_by_name(archive)
    if entries is None:
        return "its zip listing names one file twice (in upper or lower case), so what is checked may not be what loads"
    if "archive_version" not in entries:
        if any(name.endswith("serialized_exported_program.json") for name in entries):
            return "it is a torch.export file of the old layout, whose weights are pickles"
        raise WeightsError(f"{path} is not a TorchScript or torch.export (.pt2) model file (no archive_version)")
    for name in entries:
        problem = _entry_problem(name)
        if problem:
            return problem
    for name, info in entries.items():
        if name.endswith(("_weights_config.json", "_constants_config.json")):
            problem = _payload_config_problem(json.loads(archive.read(info)), name.startswith("data/constants/"))
        elif name.startswith("data/sample_inputs/"):
            problem = _sample_inputs_problem(archive.read(info))
        elif name.startswith("models/"):
            problem = _program_problem(json.loads(archive.read(info)))
        else:
            continue
        if problem:
            return problem
    return None


def _entries_by_name(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo] | None:
    """The archive's files by their name under its root folder, in lower case (torch finds a file whatever its
    case); None where two names are the same that way."""
    infos = [info for info in archive.infolist() if not info.filename.endswith("/")]
    if not infos:
        raise ValueError("an empty archive")
    root = infos[0].filename.split("/", 1)[0] + "/"
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.startswith(root):
            raise ValueError(f"{info.filename} lies outside the archive's folder {root}")
        name = info.filename[len(root) :].lower()
        if name in entries:
            return None
        entries[name] = info
    return entries


def _entry_problem(name: str) -> str | None:
    """What an archive file is, where it is something torch would run or livevis does not know."""
    folder, _, file = name.rpartition("/")
    if name in _ARCHIVE_FILES or folder == "extra" or name.startswith("extra/"):
        return None
    if folder == "models" and file.endswith(".json"):
        return None
    if folder == "data/sample_inputs" and file.endswith(".pt"):
        return None
    if folder == "data/weights" and (file.startswith("weight_") or file.endswith("_weights_config.json")):
        return None
    if folder == "data/constants" and (file.startswith("tensor_") or file.endswith("_constants_config.json")):
        return None
    if folder in ("data/weights", "data/constants") and file.endswith(".pt"):
        return f"its {folder.removeprefix('data/')} are pickles ({name})"
    if folder == "data/constants":
        return f"its constant {file} is a pickled Python object"
    if name.startswith("data/aotinductor/"):
        return f"it carries compiled native code ({name})"
    return f"it holds {name}, which livevis cannot check"


def _payload_config_problem(config: dict, constants: bool) -> str | None:
    kind = "constant" if constants else "weight"
    for name, payload in config["config"].items():
        if payload.get("use_pickle") is not False:
            return f"its {kind} {name!r} is a pickle"
        if constants and not str(payload.get("path_name", "")).startswith("tensor_"):
            return f"its constant {name!r} is a pickled Python object"
    return None


def _sample_inputs_problem(data: bytes) -> str | None:
    """Sample inputs are one torch.save zip of tensors; torch unpickles them fully where they are not."""
    if not data:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as saved:
            entries = _entries_by_name(saved)
            if entries is None:
                return "its sample inputs' zip names one file twice"
            unknown = [name for name in entries if not _SAMPLE_INPUT_FILES.fullmatch(name)]
            if unknown:
                return f"its sample inputs hold {unknown[0]}, which livevis cannot check"
            if "data.pkl" not in entries:
                return "its sample inputs are not a torch.save file of tensors"
            names = pickle_globals(saved.read(entries["data.pkl"]))
    except (zipfile.BadZipFile, ValueError):
        return "its sample inputs are a pickle in an old layout"
    if names is None:
        return "its sample inputs are a pickle whose contents cannot be told without running it"
    unknown = sorted(name for name in names if not _is_tensor_global(name))
    if unknown:
        return f"its sample inputs hold Python objects beyond tensors ({unknown[0]})"
    return None


def pickle_globals(data: bytes) -> list[str] | None:
    """Every global (module.name) a pickle names, read from its opcodes without running any; None where
    one cannot be told that way (a name built at load time, the extension registry, a broken pickle)."""
    names: list[str] = []
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # the values the opcodes just before pushed, where they are strings
    try:
        for opcode, argument, _ in pickletools.genops(data):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                names.append(argument.replace(" ", "."))
                pushed = []
            elif name == "STACK_GLOBAL":
                if len(pushed) < 2 or None in pushed[-2:]:
                    return None
                names.append(f"{pushed[-2]}.{pushed[-1]}")
                pushed = []
            elif name in _STRING_PUSHES:
                pushed.append(argument if isinstance(argument, str) else None)
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(argument))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                # a memo slot keeps the top of the stack, a string only where a string was pushed last
                memo[len(memo) if name == "MEMOIZE" else argument] = pushed[-1] if pushed else None
            elif name.startswith("EXT"):
                return None
            elif name != "FRAME":
                pushed = []
    except (ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError):
        return None
    return names


def _is_tensor_global(name: str) -> bool:
    if name in _TENSOR_PICKLE_GLOBALS:
        return True
    module, _, attribute = name.rpartition(".")
    if module != "torch" or not attribute.isidentifier() or attribute.startswith("_"):
        return False
    found = getattr(torch, attribute, None)
    return isinstance(found, torch.dtype) or (isinstance(found, type) and attribute.endswith("Storage"))


def _program_problem(program: dict) -> str | None:
    for key, value in _json_items(program):
        if key == "target" and isinstance(value, str):
            problem = _call_target_problem(value)
        elif key == "expr_str" and isinstance(value, str):
            problem = None if is_plain_arithmetic(value) else f"its shape expression {value[:60]!r} is not arithmetic"
        else:
            continue
        if problem:
            return problem
    for guard in program.get("guards_code") or ():
        if not isinstance(guard, str) or not is_shape_guard(guard):
            return f"its guard {str(guard)[:60]!r} is Python code beyond a check of input shapes"
    return None


def _json_items(value) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair in a JSON document, at any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _call_target_problem(target: str) -> str | None:
    """A graph node's target resolved as torch resolves it; only tensor operators, higher-order operators
    (whose bodies are graphs of the same file) and torch's symbolic arithmetic pass."""
    if target.startswith("#"):
        return f"its graph calls {target}, an extension livevis does not know"
    roots = (("_operator", operator), ("torch", torch), ("math", math))
    found: object = next((module for prefix, module in roots if target.startswith(prefix)), None)
    if found is None:
        return None  # torch keeps the text as it is, and fails on it
    for part in target.split(".")[1:]:
        if not hasattr(found, part):
            return None
        found = getattr(found, part)
    if isinstance(found, torch._ops.OpOverload):
        name = found._schema.name
        return f"its graph calls {name}, which reads or writes files" if name in _FILE_OPERATORS else None
    if isinstance(found, torch._ops.HigherOrderOperator) or any(found is op for op in _symbolic_operators()):
        return None
    return f"its graph calls {target}, which is not a tensor operator"


def _symbolic_operators() -> tuple:
    """The Python functions torch's graphs call on symbolic sizes."""
    try:
        from torch._export.serde.serialize import _SYM_OPS
    except ImportError:
        _SYM_OPS = ()
    return (*_SYM_OPS, operator.getitem, torch.sym_int, torch.sym_float, torch.sym_max, torch.sym_min, torch.sym_not)


def _sympy_function_names() -> frozenset[str]:
    from torch.utils._sympy import functions

    own = {name for name, value in vars(functions).items() if isinstance(value, type) and not name.startswith("_")}
    return frozenset(own) | _SYMPY_CLASSES


def is_plain_arithmetic(text: str) -> bool:
    """A shape expression as torch writes them (`Add(Symbol('s0', positive=True, integer=True), Integer(-2))`,
    `Max(1, s0)`): calls of sympy's and torch's expression classes on numbers, and names given as words.
    sympy evaluates it as Python."""
    if any(character in text for character in '"\\!\n\r;'):
        return False
    tree = _parse_expression(text)
    if tree is None:
        return False
    functions = _sympy_function_names()
    # a text constant only as what Symbol('s0') or Float('1.5') is made of: a word or a number
    texts = {
        id(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_FROM_TEXT
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        if re.fullmatch(r"[A-Za-z]\w*|[-+]?[\d.]+(e[-+]?\d+)?", node.args[0].value)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in functions:
                return False
        elif isinstance(node, ast.keyword):
            if node.arg is None or node.arg.startswith("_") or not isinstance(node.value, ast.Constant):
                return False
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                return False
        elif isinstance(node, ast.Constant):
            if not (isinstance(node.value, int | float) or id(node) in texts):
                return False
        elif not isinstance(node, _ARITHMETIC_NODES):
            return False
    return True


def is_shape_guard(text: str) -> bool:
    """A guard as torch writes them (`L['x'].size()[0] == 3`, `2 <= L['x'].size()[1]`); torch pastes it
    into Python source and runs it."""
    if any(character in text for character in '"\\\n\r;'):
        return False
    tree = _parse_expression(text)
    if tree is None:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in _GUARD_NAMES:
                return False
        elif isinstance(node, ast.Attribute):
            if node.attr not in _GUARD_ATTRIBUTES:
                return False
        elif isinstance(node, ast.Constant):
            value = node.value
            if not (value is None or isinstance(value, int | float) or re.fullmatch(r"[\w.]+", str(value))):
                return False
        elif isinstance(node, ast.Call):
            if node.keywords:
                return False
        elif not isinstance(node, _ARITHMETIC_NODES + (ast.Subscript, ast.Slice, ast.Tuple)):
            return False
    return True


def _parse_expression(text: str) -> ast.Expression | None:
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
