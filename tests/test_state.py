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
