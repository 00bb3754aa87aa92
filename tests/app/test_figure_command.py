"""livevis figure: the notes' overview for LeNet on a real digit and for the trained EfficientNet-Lite0 on a
real photo; the PNG as written is checked for its size, its rows and the signed colours of known cells."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livevis.app.cli import main
from livevis.app.commands.figure import draw_overview, figure_heading, signed_colormap
from livevis.app.sources.files import read_frame
from livevis.models.overview import overview_rows, tile_row

WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def digit_path(tmp_path_factory):
    """A real held-out MNIST digit as a PNG, as a user would have one."""
    from livevis.models.data.datasets import mnist_split

    held_out = mnist_split()[1]
    path = tmp_path_factory.mktemp("digit") / f"digit_{held_out.labels[0]}.png"
    cv2.imwrite(str(path), held_out.images[0])
    return path


def read_png(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def pixel_of_cell(drawn, row, channel: int, i: int, j: int, png_height: int) -> tuple[int, int]:
    """Where map cell (i, j) of a channel of a layer row lands in the PNG (x, y)."""
    _, layout = tile_row(row)
    x, y, _, _ = layout.tile_rect(channel)
    ax = drawn.axes[row.path][0]
    display_x, display_y = ax.transData.transform((x + j, y + i))
    return int(display_x), int(png_height - display_y)


def colour_at(png, xy) -> np.ndarray:
    return png[xy[1], xy[0]].astype(int)


def expected_colour(value: float, scale: float) -> np.ndarray:
    from matplotlib.colors import Normalize

    return np.rint(np.array(signed_colormap()(Normalize(-scale, scale)(value))[:3]) * 255).astype(int)


def extreme_cells(row) -> dict[str, tuple[int, int, int]]:
    """(channel, i, j) of the shown maps' largest, smallest and (where any) exactly zero value."""
    cells = {
        "max": np.unravel_index(np.argmax(row.maps), row.maps.shape),
        "min": np.unravel_index(np.argmin(row.maps), row.maps.shape),
    }
    zeros = np.argwhere(row.maps == 0)
    if len(zeros):
        cells["zero"] = tuple(zeros[len(zeros) // 2])
    return {name: tuple(int(v) for v in cell) for name, cell in cells.items()}


def check_signed_colours(drawn, row, png) -> dict[str, np.ndarray]:
    """Each extreme cell is drawn in the colour the app's signed table gives its value on the layer's scale."""
    seen = {}
    for name, (channel, i, j) in extreme_cells(row).items():
        colour = colour_at(png, pixel_of_cell(drawn, row, channel, i, j, png.shape[0]))
        value = float(row.maps[channel, i, j])
        assert np.abs(colour - expected_colour(value, row.scale)).max() <= 3, (row.path, name, value, colour)
        seen[name] = colour
    return seen


def test_lenet_on_a_real_digit(digit_path, lenet, tmp_path):
    frame = read_frame(digit_path)
    rows = overview_rows(lenet, frame)
    spatial = [layer for layer in lenet.layers[1:] if layer.is_spatial]
    assert [row.path for row in rows] == ["input"] + [layer.path for layer in spatial]
    drawn = draw_overview(rows, figure_heading(lenet, digit_path))
    out = drawn.save(tmp_path / "lenet.png")
    png = read_png(out)
    width, height = drawn.figure.get_size_inches() * drawn.dpi
    assert png.shape[:2] == (round(height), round(width))
    assert len(drawn.titles) == 1 + len(spatial) == 7
    assert drawn.titles[0].startswith("input  1 x 28 x 28")
    assert [title.split()[0] for title in drawn.titles[1:]] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert "conv2  16 x 10 x 10" in drawn.titles[4]

    conv1 = rows[1]
    assert conv1.maps.shape == (6, 28, 28) and conv1.scale == pytest.approx(np.abs(conv1.maps).max())
    assert conv1.maps.min() < -0.3 * conv1.scale, "a conv's output has strongly negative cells to be drawn blue"
    seen = check_signed_colours(drawn, conv1, png)
    red, blue = seen["max"], seen["min"]
    assert red[0] > 150 and red[1] < 80 and red[2] < 80, red
    assert blue[2] > red[2] + 80 and blue[2] > blue[0] + 60, blue
    relu1 = rows[2]
    assert (relu1.maps >= 0).all() and (relu1.maps == 0).any()
    assert tuple(check_signed_colours(drawn, relu1, png)["zero"]) == WHITE
    # the digit's strokes are positive after normalisation, its background negative
    inputs = rows[0]
    assert inputs.maps.shape == (1, 28, 28) and inputs.image.shape == (28, 28, 3)
    assert inputs.maps.max() > 0 > inputs.maps.min()

    cli_out = tmp_path / "cli" / "lenet.png"
    assert main(["figure", str(digit_path), "--model", "lenet", "--out", str(cli_out)]) == 0
    assert np.array_equal(read_png(cli_out), png), "the command writes the figure the functions draw"


def test_efficientnet_lite0_on_a_real_photo(chelsea_path, lite0, tmp_path, capsys):
    frame = read_frame(chelsea_path)
    rows = overview_rows(lite0, frame, ["blocks.2", "blocks.4"], channels=16)
    assert [row.path for row in rows] == ["input", "blocks.2", "blocks.4"]
    assert rows[0].maps.shape == (3, 224, 224)
    assert rows[1].maps.shape == (16, 28, 28) and rows[2].maps.shape == (16, 14, 14)
    whole = lite0.run(frame, ["blocks.2"]).activations["blocks.2"].numpy()
    assert rows[1].scale == pytest.approx(np.abs(whole).max()), "one scale for the whole layer, not the 16 shown"
    drawn = draw_overview(rows)
    assert len(drawn.titles) == 3
    assert drawn.titles[1].startswith("blocks.2  40 x 28 x 28, the first 16 of 40 channels")
    assert drawn.titles[2].startswith("blocks.4  112 x 14 x 14, the first 16 of 112 channels")
    assert len(drawn.axes["input"]) == 4, "the photo and its three normalised channels"
    png = read_png(drawn.save(tmp_path / "lite0.png"))
    seen = check_signed_colours(drawn, rows[1], png)
    assert seen["max"][0] > seen["max"][2] + 40 and seen["min"][2] > seen["min"][0] + 40

    out = tmp_path / "lite0_cli.pdf"
    args = [
        "figure",
        str(chelsea_path),
        "--model",
        "efficientnet_lite0",
        "--layers",
        "blocks.2,blocks.4",
        "--channels",
        "16",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert "the input and 2 layers of efficientnet_lite0" in capsys.readouterr().out


def test_all_layers_draw_vector_layers_as_strips(digit_path, lenet):
    rows = overview_rows(lenet, read_frame(digit_path), "all", channels=50)
    assert [row.path for row in rows] == [layer.path for layer in lenet.layers]
    fc1, prob = rows[[row.path for row in rows].index("fc1")], rows[-1]
    assert fc1.maps.shape == (1, 1, 50) and prob.maps.shape == (1, 1, 10)
    assert prob.scale == pytest.approx(prob.maps.max()) and prob.maps.sum() == pytest.approx(1, abs=1e-5)
    drawn = draw_overview(rows)
    assert len(drawn.titles) == len(lenet.layers)
    assert "fc1  120, the first 50 of 120 units" in drawn.titles[rows.index(fc1)]


def test_a_tensor_input_is_the_input_row_as_it_is(digit_path, lenet, tmp_path):
    """A .npy holding the network input itself: its channels make the input row, and the layers see the
    same input as from the photo."""
    from_photo = overview_rows(lenet, read_frame(digit_path), ["conv1"])
    tensor = from_photo[0].maps.copy()
    np.save(tmp_path / "digit.npy", tensor)
    frame = read_frame(tmp_path / "digit.npy")
    assert frame.dtype == np.float32 and frame.shape == (1, 28, 28)
    rows = overview_rows(lenet, frame, ["conv1"])
    assert rows[0].image is None and np.array_equal(rows[0].maps, tensor)
    np.testing.assert_allclose(rows[1].maps, from_photo[1].maps, rtol=1e-5, atol=1e-5)
    drawn = draw_overview(rows)
    assert len(drawn.axes["input"]) == 1, "no photo: the channel alone"
    out = tmp_path / "tensor.svg"
    assert main(["figure", str(tmp_path / "digit.npy"), "--model", "lenet", "--out", str(out)]) == 0
    assert "<svg" in out.read_text()[:500]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "{tmp}/figure.txt"], "name it .png, .pdf or .svg"),
        (["--layers", "conv9"], "no layer 'conv9'"),
        (["--input", "{tmp}/missing.png"], "missing.png"),
        (["--channels", "0"], "positive whole number"),
    ],
    ids=["bad-suffix", "unknown-layer", "missing-input", "no-channels"],
)
def test_bad_input_is_one_line_and_exit_2(extra, message, digit_path, tmp_path, capsys):
    extra = [value.format(tmp=tmp_path) for value in extra]
    source = str(digit_path)
    if extra[0] == "--input":
        source, extra = extra[1], []
    try:
        status = main(["figure", source, "--model", "lenet", "--out", str(tmp_path / "f.png"), *extra])
    except SystemExit as exit_:  # argparse's own usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "f.png").exists()
