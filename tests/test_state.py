"""The live state: one evented model, values checked as they are set."""

from __future__ import annotations

import pytest

from livevis.geometry import GridLayout, grid_layout
from livevis.state import COLORMAPS, LiveState


def test_every_change_is_an_event_and_bad_values_change_nothing():
    state = LiveState()
    seen = []
    state.events.all.connect(lambda info: seen.append((info.signal.name, info.args[0])))
    state.channel = 7
    state.colormap = "viridis"
    assert seen == [("channel", 7), ("colormap", "viridis")]
    for name, bad in [
        ("channel", -1),
        ("channel", "abc"),
        ("channel", True),
        ("colormap", "jet"),
        ("gamma", 0),
        ("boost", 1.5),
        ("opacity", -0.1),
        ("norm", "global"),
        ("overlay_mode", "x"),
    ]:
        with pytest.raises(ValueError):
            setattr(state, name, bad)
    assert (state.channel, state.colormap, state.gamma) == (7, "viridis", 1.0) and len(seen) == 2


def test_update_checks_everything_before_setting_anything():
    state = LiveState(layer="features.10", channel=3)
    with pytest.raises(ValueError, match="colormap"):
        state.update(channel=5, colormap="nope")
    assert state.channel == 3
    with pytest.raises(ValueError, match="no 'colour'"):
        state.update(colour="red")
    state.update(layer="features.8", channel=0)
    assert (state.layer, state.channel) == ("features.8", 0)
    assert state.view_options()["colormap"] in COLORMAPS


def test_grid_geometry_maps_pixels_to_channels_and_back():
    layout = grid_layout(10, 13, 13, aspect=2.0, scale=2)
    assert isinstance(layout, GridLayout) and layout.rows * layout.cols >= 10
    for channel in range(10):
        x, y, w, h = layout.tile_rect(channel)
        assert layout.channel_at(x + w / 2, y + h / 2) == channel
        assert layout.channel_at(x - 1, y + h / 2) is None, "a separator belongs to no channel"
    assert layout.moved(0, 0, -1) == 0 and layout.moved(0, 0, 1) == 1
    assert layout.moved(9, 5, 5) == 9, "clamped to the last channel"


def test_a_grid_fitted_to_a_pane_fills_it_with_the_largest_tiles_and_maps_pixels_back():
    from livevis.geometry import fitted_layout

    for channels, tile, size in ((256, (13, 13), (440, 680)), (672, (14, 14), (600, 420)), (4096, (3, 3), (900, 900))):
        layout = fitted_layout(channels, *tile, *size)
        assert layout.width <= size[0] and layout.height <= size[1] and layout.rows * layout.cols >= channels
        tiles = channels * layout.cell_h * layout.cell_w
        assert tiles >= 0.7 * size[0] * size[1], (channels, layout)
        assert layout.cell_h / layout.cell_w == pytest.approx(tile[0] / tile[1], rel=0.1), "tiles keep their shape"
        for channel in (0, channels // 2, channels - 1):
            x, y, w, h = layout.tile_rect(channel)
            assert (w, h) == (layout.cell_w, layout.cell_h)
            assert layout.channel_at(x, y) == layout.channel_at(x + w - 1, y + h - 1) == channel
            assert layout.channel_at(x - 1, y) is None, "the separator before it"
        # no other column count gives larger tiles
        for cols in range(1, channels + 1):
            rows = -(-channels // cols)
            assert min((size[0] - 1) // cols - 1, (size[1] - 1) // rows - 1) <= max(layout.cell_w, layout.cell_h)
    big = fitted_layout(4, 7, 7, 300, 300)
    assert big.cell_h > 100, "few channels: large tiles"


def test_the_renderers_draw_a_fitted_grid_alike_each_map_cell_a_block():
    import numpy as np
    import torch

    from livevis.geometry import fitted_layout
    from livevis.models.render import OpenCVRenderer, TorchRenderer

    levels = np.random.default_rng(0).integers(0, 255, (10, 5 * 4), dtype=np.uint8)
    layout = fitted_layout(10, 5, 4, 173, 97)
    cpu = OpenCVRenderer().grid_image(levels, (5, 4), layout, "gray")
    gpu = TorchRenderer().grid_image(torch.from_numpy(levels), (5, 4), layout, "gray").numpy()
    assert cpu.shape == (layout.height, layout.width, 3) and np.array_equal(cpu, gpu)
    for channel in (0, 7, 9):
        x, y, w, h = layout.tile_rect(channel)
        # each pixel shows the map cell it falls in, cells spread evenly: cell r spans rows r*h/5 .. (r+1)*h/5
        rows, cols = (np.arange(h) * 5) // h, (np.arange(w) * 4) // w
        expected = levels[channel].reshape(5, 4)[rows][:, cols]
        np.testing.assert_array_equal(cpu[y : y + h, x : x + w], OpenCVRenderer().colorize(expected, "gray"))
        assert np.bincount(rows).min() >= h // 5, "every cell gets at least its share of the pixels"
