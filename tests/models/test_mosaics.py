"""The atlas mosaics: gradient pictures with their outliers saturated (checked against numpy), and guided
backpropagation where a network's deconvolution is the same for every image (EfficientNet-Lite0)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from livevis.models import ViewOptions, Visualizer
from livevis.models.atlas import mine
from livevis.models.atlas.mosaics import (
    GAP,
    SATURATED,
    TILE,
    deconvolution_sees_the_image,
    gradient_picture,
    unit_backprop,
    unit_mosaics,
)


def reference_picture(g: np.ndarray) -> np.ndarray:
    """H x W x 3: zero grey, +-the (1 - SATURATED) quantile of |g| white and black per channel, clipped past."""
    peak = np.quantile(np.abs(g), 1 - SATURATED)
    return np.clip(np.rint((0.5 + 0.5 * np.clip(g / peak, -1, 1)) * 255), 0, 255).astype(np.uint8)


def test_a_gradient_picture_saturates_its_largest_hundredth_and_keeps_signs_and_order():
    rng = np.random.default_rng(0)
    g = rng.laplace(size=(3, 40, 50)).astype(np.float32)
    g[0, 3, 4] = 80.0  # an outlier, as gradients have: scaled by it, the rest would be a flat grey
    picture = gradient_picture(torch.from_numpy(g))
    expected = reference_picture(g.transpose(1, 2, 0))
    assert np.abs(picture.astype(int) - expected).max() <= 1
    assert (picture == 255).mean() <= 2 * SATURATED and (picture == 0).mean() <= 2 * SATURATED
    scaled_by_the_outlier = 0.5 + 0.5 * g / np.abs(g).max()
    assert np.abs(picture / 255.0 - 0.5).mean() > 10 * np.abs(scaled_by_the_outlier - 0.5).mean(), "not a flat grey"
    flat = picture[..., 1].ravel().astype(int)
    order = np.argsort(g[1].ravel())
    assert (np.diff(flat[order]) >= 0).all(), "a larger gradient is never drawn darker"
    sparse = np.zeros((1, 30, 30), np.float32)
    sparse[0, 10, 10], sparse[0, 20, 5] = 2.0, -1.0  # mostly zero: scaled by its largest value
    picture = gradient_picture(sparse)
    assert picture[10, 10].tolist() == [255] * 3 and picture[20, 5].tolist() == [64] * 3
    assert picture[0, 0].tolist() == [128] * 3


def test_efficientnet_lite0s_deconvolution_is_the_same_for_every_image(lite0, lenet, photos):
    """Its deconvolution passes max(g, 0) back through every ReLU6 and has no max-pooling switches: nothing of
    the image reaches it. Guided backpropagation keeps the forward's ReLU masks: it differs per image."""
    layer = lite0.layer().path
    both = torch.minimum(*(lite0.run(photos[name], [layer]).activations[layer] for name in ("chelsea", "coffee")))
    channel, row, col = np.unravel_index(int(both.argmax()), tuple(both.shape))  # a unit active in both
    assert both[channel, row, col] > 0
    for mode, same in (("deconv", True), ("guided", False)):
        chelsea, coffee = (
            unit_backprop(lite0, photos[name], layer, int(channel), (int(row), int(col)), mode)
            for name in ("chelsea", "coffee")
        )
        assert chelsea.abs().max() > 0 and torch.equal(chelsea, coffee) == same, mode
    assert not deconvolution_sees_the_image(lite0, layer) and not deconvolution_sees_the_image(lite0, "blocks.4")
    live = Visualizer(lite0).process(photos["chelsea"], ViewOptions(backprop="deconv"))
    assert live.values["backprop_sees_the_image"] is False, "the backprop pane says so too"
    digit = np.zeros((28, 28, 3), np.uint8)
    cv2.line(digit, (8, 6), (20, 22), (255, 255, 255), 3)
    other = cv2.flip(digit, 1)
    seen = [unit_backprop(lenet, image, "relu2", 3, (5, 5), "deconv") for image in (digit, other)]
    assert not torch.equal(*seen) and deconvolution_sees_the_image(lenet, "relu2"), "max-pooling switches"


@pytest.fixture
def photo_folder(tmp_path, photos, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    for name, image in photos.items():
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / f"{name}_flipped.jpg"), cv2.cvtColor(image[:, ::-1], cv2.COLOR_RGB2BGR))
    return tmp_path


def test_lite0s_unit_mosaics_show_guided_backprop_that_reads(lite0, photo_folder):
    from livevis.app.sources.files import read_frame

    (atlas,) = mine(lite0, photo_folder, workers=0, top=4)
    mosaics = unit_mosaics(lite0, atlas, 5, lambda entry: read_frame(entry.path))
    assert mosaics.method == "guided"
    assert mosaics.gradients.shape == mosaics.crops.shape == (2 * TILE + GAP, 2 * TILE + GAP, 3)
    tiles = [mosaics.gradients[r : r + TILE, c : c + TILE] for r in (0, TILE + GAP) for c in (0, TILE + GAP)]
    for tile in tiles:
        drawn = tile[tile.max(axis=2) > 0].astype(int)  # not the black margins of a tile
        assert (np.abs(drawn - 128).max(axis=1) > 24).mean() > 0.02, "structure that reads, not a flat grey"
    assert not np.array_equal(tiles[0], tiles[1])
