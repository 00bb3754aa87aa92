import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from livevis.models.errors import ColormapError
from livevis.models.render.base import (
    LEVELS,
    SEPARATOR,
    SEPARATOR_GRAY,
    colormap_table,
    grid_layout,
    level_transform,
)
from livevis.models.render.opencv_renderer import OpenCVRenderer
from livevis.models.render.torch_renderer import TorchRenderer, upsample_bilinear

MIDDLE = (LEVELS - 1) // 2
RENDERERS = [pytest.param(TorchRenderer(), id="torch"), pytest.param(OpenCVRenderer(), id="opencv")]


def as_numpy(array) -> np.ndarray:
    return array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def test_signed_colormap_zero_white_positive_red_negative_blue():
    table = colormap_table("signed")
    assert table[MIDDLE].tolist() == [255, 255, 255]
    for positive in (table[LEVELS - 1], table[MIDDLE + 60]):
        assert positive[0] > positive[1] and positive[0] > positive[2]
    for negative in (table[0], table[MIDDLE - 60]):
        assert negative[2] > negative[0] and negative[2] > negative[1]
    assert table[LEVELS - 1].sum() < table[MIDDLE + 60].sum(), "stronger responses are more saturated"
    assert table[SEPARATOR].tolist() == [SEPARATOR_GRAY] * 3


@pytest.mark.parametrize("name", ["gray", "viridis", "inferno"])
def test_sequential_colormaps_run_dark_to_bright(name):
    luma = colormap_table(name)[:LEVELS:25].astype(float) @ np.array([0.299, 0.587, 0.114])
    assert luma[0] < 60 and luma[-1] > 180
    assert (np.diff(luma) > 0).all(), "brightness rises monotonically"


def test_unknown_colormap_names_the_choices():
    with pytest.raises(ColormapError, match="signed, gray, viridis, inferno"):
        colormap_table("jet")


def test_gamma_lifts_weak_responses_and_keeps_the_sign():
    plain, lifted = colormap_table("signed"), colormap_table("signed", 0.5)
    quarter = round(MIDDLE * 0.25)  # a response of 0.25 shows as 0.5 does without gamma
    for sign in (1, -1):
        shown, meant = lifted[MIDDLE + sign * quarter], plain[MIDDLE + sign * round(MIDDLE * 0.5)]
        assert np.abs(shown.astype(int) - meant).max() <= 2
    assert lifted[MIDDLE].tolist() == [255, 255, 255]


@pytest.mark.parametrize(("channels", "rows", "cols"), [(256, 16, 16), (64, 8, 8), (96, 10, 10), (3, 2, 2), (1, 1, 1)])
def test_grid_layout_is_near_square_and_holds_every_channel(channels, rows, cols):
    layout = grid_layout(channels, 13, 13)
    assert (layout.rows, layout.cols) == (rows, cols)
    assert layout.rows * layout.cols >= channels > (layout.rows - 1) * layout.cols


def test_grid_layout_follows_the_aspect_ratio():
    wide = grid_layout(256, 13, 13, aspect=4.0)
    assert wide.width > 3 * wide.height


def _levels(maps: np.ndarray, colormap="signed", **options) -> np.ndarray:
    """The reference: levels computed directly in float64."""
    scale, offset = level_transform(maps.min(1), maps.max(1), colormap, **options)
    return np.clip(np.rint(maps * np.reshape(scale, (-1, 1)) + np.reshape(offset, (-1, 1))), 0, LEVELS - 1)


def test_per_layer_keeps_weak_channels_weak_per_channel_lifts_them():
    maps = np.stack([np.full(16, 10.0), np.full(16, 0.1), np.full(16, -10.0)])
    per_layer = _levels(maps)[:, 0] - MIDDLE
    assert per_layer.tolist() == [MIDDLE, round(MIDDLE * 0.01), -MIDDLE]
    per_channel = _levels(maps, per_channel=True)[:, 0] - MIDDLE
    assert per_channel.tolist() == [MIDDLE, MIDDLE, -MIDDLE]
    half_boost = _levels(maps, boost=0.5)[:, 0] - MIDDLE
    assert per_layer[1] < half_boost[1] < MIDDLE


def test_sequential_colormaps_span_every_level():
    maps = np.stack([np.linspace(2, 4, 9), np.linspace(3, 5, 9)])
    levels = _levels(maps, "viridis")
    assert levels.min() == 0 and levels.max() == LEVELS - 1
    per_channel = _levels(maps, "viridis", per_channel=True)
    assert (per_channel.min(1) == 0).all() and (per_channel.max(1) == LEVELS - 1).all()


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize(
    "options", [{}, {"per_channel": True}, {"boost": 0.5}], ids=["per-layer", "per-channel", "boost"]
)
@pytest.mark.parametrize("colormap", ["signed", "viridis"])
def test_renderers_quantize_as_the_reference_does(renderer, options, colormap):
    maps = (np.random.default_rng(1).normal(size=(40, 13 * 13)) * np.linspace(0.1, 3, 40)[:, None]).astype(np.float32)
    native = renderer.asarray(torch.from_numpy(maps))
    low, high, mean = (as_numpy(a) for a in renderer.channel_stats(native))
    np.testing.assert_allclose(mean, maps.mean(1), rtol=1e-5, atol=1e-6)
    assert (low == maps.min(1)).all() and (high == maps.max(1)).all()
    scale, offset = level_transform(*renderer.channel_stats(native)[:2], colormap, **options)
    levels = as_numpy(renderer.quantize(native, scale, offset))
    assert levels.dtype == np.uint8
    assert np.abs(levels.astype(int) - _levels(maps.astype(np.float64), colormap, **options)).max() <= 1


@pytest.mark.parametrize("renderer", RENDERERS)
def test_grid_places_each_channel_in_its_tile_with_separators(renderer):
    maps = torch.from_numpy(np.random.default_rng(0).normal(size=(10, 5, 7)).astype(np.float32))
    grid, layout_ = renderer.channel_grid(renderer.asarray(maps), "signed")
    grid = as_numpy(grid)
    layout = layout_
    assert grid.shape == (layout_.height, layout_.width, 3) == (4 * 6 + 1, 3 * 8 + 1, 3)  # 4 rows x 3 columns
    colours = colormap_table("signed")[_levels(maps.reshape(10, -1).double().numpy()).astype(int)].reshape(10, 5, 7, 3)
    for channel in range(10):
        x, y, w, h = layout.tile_rect(channel)
        assert np.abs(grid[y : y + h, x : x + w].astype(int) - colours[channel]).max() <= 3
        assert layout.channel_at(x + w // 2, y + h // 2) == channel
    assert (grid[0] == SEPARATOR_GRAY).all() and (grid[:, 0] == SEPARATOR_GRAY).all()
    assert (grid[6] == SEPARATOR_GRAY).all(), "1 px separator between tile rows"
    x, y, w, h = layout.tile_rect(11)  # the two unused tiles stay separator grey
    assert (grid[y : y + h, x : x + w] == SEPARATOR_GRAY).all()
    assert layout.channel_at(0, 0) is None and layout.channel_at(x + 1, y + 1) is None


@pytest.mark.parametrize("renderer", RENDERERS)
def test_grid_scale_repeats_pixels(renderer):
    maps = renderer.asarray(torch.randn(4, 3, 3))
    small, _ = renderer.channel_grid(maps, "gray")
    big, layout = renderer.channel_grid(maps, "gray", scale=3)
    small, big = as_numpy(small), as_numpy(big)
    assert big.shape == (small.shape[0] * 3, small.shape[1] * 3, 3) == (layout.height, layout.width, 3)
    assert (big[::3, ::3] == small).all()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_feature_vectors_become_one_tile_per_unit(renderer):
    grid, layout = renderer.channel_grid(renderer.asarray(torch.linspace(-1, 1, 4096)), "signed")
    grid = as_numpy(grid)
    assert layout.channels == 4096 and layout.rows * layout.cols >= 4096
    assert grid.shape == (layout.height, layout.width, 3)
    first, last = layout.tile_rect(0), layout.tile_rect(4095)
    assert (grid[first[1], first[0]] == colormap_table("signed")[0]).all(), "-1 is the bluest"
    assert (grid[last[1], last[0]] == colormap_table("signed")[LEVELS - 1]).all(), "+1 the reddest"


@pytest.mark.parametrize("colormap", ["signed", "inferno"])
@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_both_renderers_draw_the_same_grid(colormap, gamma):
    maps = torch.from_numpy(np.random.default_rng(2).normal(size=(256, 13, 13)).astype(np.float32))
    renderers = (TorchRenderer(), OpenCVRenderer())
    pictures = [as_numpy(r.channel_grid(r.asarray(maps), colormap, gamma=gamma)[0]) for r in renderers]
    difference = np.abs(pictures[0].astype(int) - pictures[1].astype(int))
    assert difference.max() <= 8 and difference.mean() < 0.05, "a level apart at the very most, and rarely"


def test_upsampling_matches_torch_bilinear():
    small = torch.rand(13, 11, 3) * 255
    ours = upsample_bilinear(small, 200, 150)
    reference = F.interpolate(small.permute(2, 0, 1)[None], size=(200, 150), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, reference[0].permute(1, 2, 0), atol=1e-3, rtol=1e-5)


def _frame(renderer, shape=(120, 200, 3)):
    return renderer.asarray(torch.from_numpy(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)))


def _map_levels(renderer, values: np.ndarray):
    """Normalised responses in [-1, 1] -> signed levels."""
    return renderer.asarray(torch.from_numpy(np.rint(values * MIDDLE + MIDDLE).astype(np.uint8)))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_overlay_colours_strong_responses_and_leaves_silent_ones_alone(renderer):
    frame = _frame(renderer)
    crop = (40, 0, 120, 120)
    response = np.zeros((6, 6))
    response[:, 3:] = 1.0
    out = as_numpy(renderer.render_overlay(frame, _map_levels(renderer, response), crop, "signed", opacity=0.5))
    frame = as_numpy(frame).astype(int)
    assert (out[:, :40] == frame[:, :40]).all() and (out[:, 160:] == frame[:, 160:]).all()
    # left third of the crop: response 0, the frame shows through unchanged
    assert np.abs(out[:, 40:70] - frame[:, 40:70]).max() <= 1
    # right third: response 1, half frame and half the colormap's red
    expected = frame[:, 130:160] * 0.5 + colormap_table("signed")[LEVELS - 1] * 0.5
    assert np.abs(out[:, 130:160] - expected).max() <= 1.5
    same_frame = renderer.asarray(torch.from_numpy(frame.astype(np.uint8)))
    untouched = renderer.render_overlay(same_frame, _map_levels(renderer, response), crop, "signed", opacity=0.0)
    untouched = as_numpy(untouched)
    assert (untouched == frame).all()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_mask_mode_darkens_where_the_channel_is_inactive(renderer):
    frame = renderer.asarray(torch.full((100, 100, 3), 200, dtype=torch.uint8))
    response = np.zeros((10, 10))
    response[:, 5:] = 1.0
    out = as_numpy(renderer.render_overlay(frame, _map_levels(renderer, response), (0, 0, 100, 100), mode="mask"))
    assert (out[:, :40] == 0).all()
    assert (out[:, 60:] == 200).all()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_heatmap_mode_covers_every_level_at_one_opacity(renderer):
    """Grad-CAM's drawing: level 0 darkens the frame by the opacity (inferno's black), the top level blends its
    bright yellow in at the same weight; nothing is left uncovered, unlike the overlay's silent cells."""
    frame = _frame(renderer)
    levels = np.zeros((6, 6), np.uint8)
    levels[:, 3:] = LEVELS - 1
    crop = (40, 0, 120, 120)
    out = as_numpy(
        renderer.render_overlay(
            frame, renderer.asarray(torch.from_numpy(levels)), crop, "inferno", mode="heatmap", opacity=0.4
        )
    )
    frame = as_numpy(frame).astype(float)
    assert (out[:, :40] == frame[:, :40]).all() and (out[:, 160:] == frame[:, 160:]).all()
    table = colormap_table("inferno").astype(float)
    for columns, level in ((slice(40, 70), 0), (slice(130, 160), LEVELS - 1)):
        expected = frame[:, columns] * 0.6 + table[level] * 0.4
        assert np.abs(out[:, columns] - expected).max() <= 1.5


def test_both_renderers_draw_the_same_overlay():
    levels = np.random.default_rng(3).integers(0, LEVELS, (13, 13), dtype=np.uint8)
    frame = np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    pictures = [
        as_numpy(
            r.render_overlay(
                r.asarray(torch.from_numpy(frame)),
                r.asarray(torch.from_numpy(levels)),
                (80, 0, 480, 480),
                "signed",
                gamma=0.7,
            )
        )
        for r in (TorchRenderer(), OpenCVRenderer())
    ]
    difference = np.abs(pictures[0].astype(int) - pictures[1].astype(int))
    assert difference.max() <= 4 and difference.mean() < 1.0


@pytest.mark.parametrize("renderer", RENDERERS)
def test_paste_resizes_the_picture_into_the_crop_and_leaves_the_rest(renderer):
    """Against cv2.resize of the picture written over a copy of the frame by hand; the frame is untouched."""
    frame = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    picture = np.random.default_rng(6).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    expected = frame.copy()
    expected[0:480, 80:560] = cv2.resize(picture, (480, 480), interpolation=cv2.INTER_LINEAR)
    kept = frame.copy()
    on_device = renderer.asarray(torch.from_numpy(frame))
    out = as_numpy(renderer.paste(on_device, renderer.asarray(torch.from_numpy(picture)), (80, 0, 480, 480)))
    assert np.array_equal(frame, kept), "the frame itself is not drawn on"
    assert np.array_equal(out[:, :80], frame[:, :80]) and np.array_equal(out[:, 560:], frame[:, 560:])
    assert np.abs(out.astype(int) - expected).max() <= 2


def test_paste_past_the_frame_edge_is_refused():
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        OpenCVRenderer().paste(frame, np.zeros((10, 10, 3), dtype=np.uint8), (50, 50, 80, 80))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_peak_ring_is_drawn_around_the_peak_cell(renderer):
    frame = renderer.asarray(torch.zeros((130, 130, 3), dtype=torch.uint8))
    levels = _map_levels(renderer, np.zeros((13, 13)))
    out = as_numpy(renderer.render_overlay(frame, levels, (0, 0, 130, 130), opacity=0.0, peak_index=2 * 13 + 10))
    green = np.argwhere((out == (0, 255, 0)).all(-1)).astype(float)  # cell (2, 10): centre x = 105, y = 25
    assert len(green) > 20
    centre = green.mean(0)
    assert abs(centre[0] - 25) < 2 and abs(centre[1] - 105) < 2
    radius = np.hypot(*(green - (25, 105)).T)
    assert 4 <= radius.min() and radius.max() <= 8, "a ring, not a disc"
