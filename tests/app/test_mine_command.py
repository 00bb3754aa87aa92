"""`livevis mine`: the --json shape, --out mosaics, one-line errors, and two torchrun processes equal one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from livevis.app.cli import main
from tests.conftest import use_module
from tests.models.test_mining import TENSOR_NET

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos) -> Path:
    out = tmp_path_factory.mktemp("mine")
    for i, (name, image) in enumerate(photos.items()):
        cv2.imwrite(str(out / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / f"{name}_flip_{i}.png"), cv2.cvtColor(image[: 200 + 20 * i, ::-1], cv2.COLOR_RGB2BGR))
    (out / "readme.txt").write_text("not a picture")
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_json_shape(folder, alexnet_weights_file, capsys):
    code = main(
        [
            "mine",
            str(folder),
            "--model",
            "alexnet",
            "--weights",
            str(alexnet_weights_file),
            "--device",
            "cpu",
            "--layer",
            "conv5",
            "--top",
            "3",
            "--json",
            "--workers",
            "0",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"model", "weights", "layer", "images", "skipped", "channels"} <= set(result)
    assert result["model"] == "alexnet" and result["layer"] == "conv5" and result["images"] == 8
    assert result["skipped"] == ["readme.txt"]
    assert len(result["channels"]) == 256
    channel = result["channels"][7]
    assert channel["channel"] == 7 and len(channel["top"]) == 3
    values = [entry["value"] for entry in channel["top"]]
    assert values == sorted(values, reverse=True)
    for entry in channel["top"]:
        assert (folder / entry["image"]).is_file()
        assert len(entry["at"]) == 2 and all(0 <= v < 13 for v in entry["at"])
        x, y, w, h = entry["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0


def test_two_layers_give_a_list_and_out_writes_mosaics(folder, tmp_path, capsys):
    out = tmp_path / "atlas"
    code = main(
        [
            "mine",
            str(folder),
            "--model",
            "lenet",
            "--layer",
            "conv1,conv2",
            "--top",
            "4",
            "--json",
            "--workers",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [layer["layer"] for layer in result] == ["conv1", "conv2"]
    index = json.loads((out / "index.json").read_text())
    unit = index[1]["channels"][3]
    crops = cv2.imread(str(out / unit["crops"]))
    deconv = cv2.imread(str(out / unit["deconv"]))
    assert crops.shape == deconv.shape == (2 * 96 + 2, 2 * 96 + 2, 3)  # 2 x 2 tiles for --top 4
    assert crops.std() > 10 and deconv.std() > 3  # real pictures, not blanks
    assert "unit 3" in (out / "index.html").read_text()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["mine", "/nonexistent/photos", "--model", "lenet"], "no such folder"),
        (["mine", "{folder}", "--model", "lenet", "--layer", "conv9"], "no layer 'conv9'"),
        (["mine", "{empty}", "--model", "lenet"], "holds no images"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, message, folder, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    argv = [a.format(folder=folder, empty=empty) for a in arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("livevis: error:")]) == 1
    assert message in err[-1]


def test_two_torchrun_processes_equal_one(folder, alexnet_weights_file, tmp_path, capsys):
    common = [
        str(folder),
        "--model",
        "alexnet",
        "--weights",
        str(alexnet_weights_file),
        "--device",
        "cpu",
        "--layer",
        "conv5",
        "--top",
        "3",
        "--json",
        "--workers",
        "1",
        "--batch-size",
        "2",
    ]
    assert main(["mine", *common]) == 0
    one = json.loads(capsys.readouterr().out)
    env = {**os.environ, "LIVEVIS_CACHE": str(tmp_path / "torchrun-cache"), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    livevis = Path(sys.executable).parent / "livevis"
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "--no-python", str(livevis), "mine", *common]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    two = json.loads(done.stdout)
    assert two["images"] == one["images"] == 8 and two["skipped"] == one["skipped"]
    for a, b in zip(one["channels"], two["channels"], strict=True):
        assert [e["image"] for e in a["top"]] == [e["image"] for e in b["top"]]
        assert [e["at"] for e in a["top"]] == [e["at"] for e in b["top"]]
        assert [e["box"] for e in a["top"]] == [e["box"] for e in b["top"]]
        np.testing.assert_allclose([e["value"] for e in a["top"]], [e["value"] for e in b["top"]], rtol=1e-5)
    assert not list((tmp_path / "torchrun-cache" / "atlas" / "partial").glob("*"))


def test_a_folder_of_tensor_files_from_the_command_line(tmp_path, monkeypatch, capsys):
    """A user's module as the model, .npy and .pt inputs as they are; --json and --out as for photos."""
    use_module(tmp_path, monkeypatch, "tensornet", TENSOR_NET)
    folder = tmp_path / "tensors"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        np.save(folder / f"t{i:02d}.npy", rng.standard_normal((2, 40, 48)).astype(np.float32))
    torch.save(torch.from_numpy(rng.standard_normal((2, 40, 48)).astype(np.float32)) * 5, folder / "loud.pt")
    np.save(folder / "rgb.npy", rng.standard_normal((3, 40, 48)).astype(np.float32))
    out = tmp_path / "atlas"
    code = main(
        [
            "mine",
            "tensors",
            "--model",
            "tensornet:build",
            "--weights",
            "none",
            "--device",
            "cpu",
            "--layer",
            "2",
            "--top",
            "3",
            "--json",
            "--workers",
            "1",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "rgb.npy" in captured.err
    result = json.loads(captured.out)
    assert result["images"] == 13 and result["skipped"] == ["rgb.npy"] and len(result["channels"]) == 8
    import tensornet

    model = tensornet.build().eval()
    with torch.no_grad():
        loud = model[:3](torch.load(folder / "loud.pt")[None])[0].flatten(1).amax(1)
    for channel in result["channels"]:
        values = [entry["value"] for entry in channel["top"]]
        assert len(values) == 3 and values == sorted(values, reverse=True)
        if "loud.pt" in [entry["image"] for entry in channel["top"]]:
            entry = next(e for e in channel["top"] if e["image"] == "loud.pt")
            assert abs(entry["value"] - float(loud[channel["channel"]])) < 1e-4
        for entry in channel["top"]:
            x, y, w, h = entry["box"]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 48 and y + h <= 40
    assert sum("loud.pt" in [e["image"] for e in c["top"]] for c in result["channels"]) >= 4, "5x louder: often top"
    index = json.loads((out / "index.json").read_text())
    for unit in index[0]["channels"]:
        assert "deconv" not in unit, "convolutions and ReLUs alone: its deconvolution ignores the input"
        for name in (unit["crops"], unit["guided"]):
            picture = cv2.imread(str(out / name))
            assert picture is not None and picture.shape == (98 * 2 - 2, 98 * 2 - 2, 3)
            assert picture.max() > 0
