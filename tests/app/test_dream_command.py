"""`livevis dream` end to end on LeNet: PNGs, the contact sheet, --json, the cache, and every kind of bad input."""

import json

import cv2
import numpy as np
import pytest

from livevis.app.cli import main


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable PNG"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_a_class_image_as_json_with_the_top5_of_the_png(tmp_path, capsys):
    args = ["dream", "--model", "lenet", "--layer", "prob", "--channel", 7, "--steps", 64, "--out", tmp_path, "--json"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["objective"] == "logit" and report["steps"] == 64 and report["size"] == 28
    assert report["objective_last"] > report["objective_first"] + 5
    assert report["seconds"] > 0 and report["cached"] is False
    image = read_rgb(report["png"])
    assert image.shape == (28, 28, 3)
    assert report["top5"][0]["index"] == 7 and len(report["top5"]) == 5

    code, out, err = run_cli(capsys, *args)
    again = json.loads(out)
    assert code == 0 and again["cached"] is True
    assert again["top5"] == report["top5"] and again["objective_last"] == report["objective_last"]


def test_channels_write_one_png_each_and_a_contact_sheet_of_them(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "dream",
        "--model",
        "lenet",
        "--layer",
        "conv2",
        "--channels",
        "0-3",
        "--steps",
        16,
        "--batch",
        3,
        "--out",
        tmp_path,
    )
    assert code == 0, err
    pngs = sorted(path for path in tmp_path.glob("*.png") if not path.name.endswith("sheet.png"))
    assert [path.name.split("-")[2] for path in pngs] == ["0", "1", "2", "3"]
    sheet = read_rgb(next(tmp_path.glob("*sheet.png")))
    # 2 x 2 tiles, each the channel's image enlarged 4 times (28 -> 112), a label band under each
    tile, band, gap = 112, 22, 4
    assert sheet.shape == (2 * (tile + band + gap) + gap, 2 * (tile + gap) + gap, 3)
    for index, path in enumerate(pngs):
        row, col = divmod(index, 2)
        top, left = gap + row * (tile + band + gap), gap + col * (tile + gap)
        enlarged = cv2.resize(read_rgb(path), (tile, tile), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(sheet[top : top + tile, left : left + tile], enlarged)
        assert (sheet[top + tile : top + tile + band, left : left + tile] < 128).any(), "no label under the tile"
    assert "contact sheet" in out and out.count("objective") == 4


def test_the_yosinski_method_on_a_gray_model(tmp_path, capsys):
    args = ["--layer", "fc1", "--channel", 5, "--method", "yosinski", "--preset", 4, "--steps", 32, "--json"]
    code, out, err = run_cli(capsys, "dream", "--model", "lenet", "--out", tmp_path, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["method"] == "yosinski" and report["preset"] == 4
    assert report["objective_last"] > report["objective_first"]
    image = read_rgb(report["png"])
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all(), "a gray model's image"


@pytest.mark.parametrize(
    "bad",
    [
        ["--layer", "conv2", "--channel", 16],
        ["--layer", "conv2", "--channels", "14-17"],
        ["--layer", "fc1", "--objective", "neuron"],
        ["--layer", "prob", "--objective", "neuron"],
        ["--layer", "conv2", "--objective", "pixel"],
        ["--layer", "conv2", "--steps", 0],
        ["--layer", "conv2", "--method", "deepdream"],
        ["--layer", "conv2", "--method", "yosinski", "--preset", 5],
        ["--layer", "conv2", "--method", "yosinski", "--preset", 0],
        ["--layer", "conv2", "--preset", 2],
        ["--layer", "conv2", "--channels", "3-1"],
        ["--layer", "conv2", "--channels", "a-b"],
        ["--layer", "nope"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, bad):
    code, out, err = run_cli(capsys, "dream", "--model", "lenet", "--out", tmp_path / "out", *bad)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("livevis: error:"), err
    assert out == "" and not (tmp_path / "out").exists()
