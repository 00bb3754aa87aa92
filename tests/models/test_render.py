from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.errors import ColormapError
from models.render import (
    SEPARATOR_GRAY,
    apply_colormap,
    grid_layout,
    normalize_maps,
    render_channel_grid,
    render_overlay,
    upsample_bilinear,
)
from widgets.channel_grid import GridGeometry


def test_signed_colormap_zero_white_positive_red_negative_blue():
    colors = apply_colormap(torch.tensor([0.0, 1.0, -1.0, 0.5, -0.5]), "signed").tolist()
    assert colors[0] == [255, 255, 255]
    for positive in (colors[1], colors[3]):
        assert positive[0] > positive[1] and positive[0] > positive[2]
    for negative in (colors[2], colors[4]):
        assert negative[2] > negative[0] and negative[2] > negative[1]
    assert sum(colors[1]) < sum(colors[3]), "stronger responses are more saturated"


@pytest.mark.parametrize("name", ["gray", "viridis", "inferno"])
def test_sequential_colormaps_run_dark_to_bright(name):
    colors = apply_colormap(torch.linspace(0, 1, 11), name).float()
    luma = colors @ torch.tensor([0.299, 0.587, 0.114])
    assert luma[0] < 60 and luma[-1] > 180
    assert (luma.diff() > 0).all(), "brightness rises monotonically"


def test_unknown_colormap_names_the_choices():
    with pytest.raises(ColormapError, match="signed, gray, viridis, inferno"):
        apply_colormap(torch.zeros(3), "jet")


@pytest.mark.parametrize(("channels", "rows", "cols"), [(256, 16, 16), (64, 8, 8), (96, 10, 10), (3, 2, 2), (1, 1, 1)])
def test_grid_layout_is_near_square_and_holds_every_channel(channels, rows, cols):
    layout = grid_layout(channels, 13, 13)
    assert (layout.rows, layout.cols) == (rows, cols)
    assert layout.rows * layout.cols >= channels > (layout.rows - 1) * layout.cols


def test_grid_layout_follows_the_aspect_ratio():
    wide = grid_layout(256, 13, 13, aspect=4.0)
    assert wide.width > 3 * wide.height


def test_grid_places_each_channel_in_its_tile_with_separators():
    torch.manual_seed(0)
    maps = torch.randn(10, 5, 7)
    grid, grid_layout_ = render_channel_grid(maps, "signed")
    layout = GridGeometry(**asdict(grid_layout_))
    assert grid.shape == (grid_layout_.height, grid_layout_.width, 3) == (4 * 6 + 1, 3 * 8 + 1, 3)  # 4 rows x 3 columns
    colored = apply_colormap(normalize_maps(maps, "signed"), "signed")
    for channel in range(10):
        x, y, w, h = layout.tile_rect(channel)
        assert torch.equal(grid[y : y + h, x : x + w], colored[channel])
        assert layout.channel_at(x + w // 2, y + h // 2) == channel
    assert (grid[0] == SEPARATOR_GRAY).all() and (grid[:, 0] == SEPARATOR_GRAY).all()
    assert (grid[6] == SEPARATOR_GRAY).all(), "1 px separator between tile rows"
    x, y, w, h = layout.tile_rect(11)  # the two unused tiles stay separator grey
    assert (grid[y : y + h, x : x + w] == SEPARATOR_GRAY).all()
    assert layout.channel_at(0, 0) is None and layout.channel_at(x + 1, y + 1) is None


def test_grid_scale_repeats_pixels():
    maps = torch.randn(4, 3, 3)
    small, _ = render_channel_grid(maps, "gray")
    big, layout = render_channel_grid(maps, "gray", scale=3)
    assert big.shape == (small.shape[0] * 3, small.shape[1] * 3, 3) == (layout.height, layout.width, 3)
    assert torch.equal(big[::3, ::3], small)


def test_feature_vectors_become_one_tile_per_unit():
    grid, layout = render_channel_grid(torch.linspace(-1, 1, 4096), "signed")
    assert layout.channels == 4096 and layout.rows * layout.cols >= 4096
    assert grid.shape == (layout.height, layout.width, 3)


def test_per_layer_keeps_weak_channels_weak_per_channel_lifts_them():
    maps = torch.stack([torch.full((4, 4), 10.0), torch.full((4, 4), 0.1)])
    per_layer = normalize_maps(maps, "signed")
    per_channel = normalize_maps(maps, "signed", per_channel=True)
    assert per_layer[0].max() == 1.0 and per_layer[1].max() == pytest.approx(0.01)
    assert per_channel[1].max() == pytest.approx(1.0)
    half_boost = normalize_maps(maps, "signed", boost=0.5)
    assert 0.01 < half_boost[1].max() < 1.0


def test_normalisation_of_sequential_colormaps_spans_zero_to_one():
    maps = torch.stack([torch.linspace(2, 4, 9).view(3, 3), torch.linspace(3, 5, 9).view(3, 3)])
    normalized = normalize_maps(maps, "viridis")
    assert normalized.min() == 0 and normalized.max() == 1


def test_gamma_lifts_weak_responses_and_keeps_the_sign():
    maps = torch.tensor([[[1.0, 0.25, -0.25]]])
    lifted = normalize_maps(maps, "signed", gamma=0.5)
    assert lifted[0, 0].tolist() == pytest.approx([1.0, 0.5, -0.5])


def test_upsampling_matches_torch_bilinear():
    small = torch.rand(13, 11, 3) * 255
    ours = upsample_bilinear(small, 200, 150)
    reference = F.interpolate(small.permute(2, 0, 1)[None], size=(200, 150), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, reference[0].permute(1, 2, 0), atol=1e-3, rtol=1e-5)


def _frame():
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8))


def test_overlay_colours_strong_responses_and_leaves_silent_ones_alone():
    frame = _frame()
    crop = (40, 0, 120, 120)
    normalized = torch.zeros(6, 6)
    normalized[:, 3:] = 1.0
    out = render_overlay(frame, normalized, crop, "signed", opacity=0.5, mark_peak=False)
    assert torch.equal(out[:, :40], frame[:, :40]) and torch.equal(out[:, 160:], frame[:, 160:])
    # left third of the crop: response 0, the frame shows through unchanged
    assert (out[:, 40:70].int() - frame[:, 40:70].int()).abs().max() <= 1
    # right third: response 1, half frame and half the colormap's red
    red = apply_colormap(torch.tensor(1.0), "signed").float()
    expected = frame[:, 130:160].float() * 0.5 + red * 0.5
    assert (out[:, 130:160].float() - expected).abs().max() <= 1.0
    untouched = render_overlay(frame, normalized, crop, "signed", opacity=0.0, mark_peak=False)
    assert torch.equal(untouched, frame)


def test_mask_mode_darkens_where_the_channel_is_inactive():
    frame = torch.full((100, 100, 3), 200, dtype=torch.uint8)
    normalized = torch.zeros(10, 10)
    normalized[:, 5:] = 1.0
    out = render_overlay(frame, normalized, (0, 0, 100, 100), mode="mask", mark_peak=False)
    assert (out[:, :40] == 0).all()
    assert (out[:, 60:] == 200).all()


def test_peak_ring_is_drawn_around_the_peak_cell():
    frame = torch.zeros((130, 130, 3), dtype=torch.uint8)
    normalized = torch.zeros(13, 13)
    normalized[2, 10] = 1.0  # centre of that cell: x = 105, y = 25
    out = render_overlay(frame, normalized, (0, 0, 130, 130), opacity=0.0)
    green = (out == torch.tensor([0, 255, 0], dtype=torch.uint8)).all(-1).nonzero().float()
    assert len(green) > 20
    centre = green.mean(0)
    assert abs(centre[0] - 25) < 2 and abs(centre[1] - 105) < 2
