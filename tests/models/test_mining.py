"""The unit atlas against a brute-force ranking of real photos, its boxes against AlexNet's known
receptive field, its cache, its resume after a cancel, and broken files."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from livevis.models.atlas.mining import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    RunningTop,
    crop_and_resize,
    list_folder,
    load_atlas,
    mine,
    mined_folders,
)
from livevis.models.atlas.receptive_field import box_in_image, receptive_fields
from livevis.models.engine import CropRect
from livevis.models.errors import InputError
from livevis.models.progress import Cancelled
from tests.conftest import use_module

TOP = 3


def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, photos) -> Path:
    """Ten real photos of different sizes: originals, crops and flips, some in a sub-folder."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, image in photos.items():
        _write(folder / f"{name}.jpg", image)
        h, w = image.shape[:2]
        y, x = int(rng.integers(0, h // 3)), int(rng.integers(0, w // 3))
        _write(folder / "more" / f"{name}_crop_flip.png", image[y : y + h // 2 + 40, x : x + w // 2 + 60, ::-1])
    _write(folder / "more" / "chelsea_upside_down.jpg", photos["chelsea"][::-1])
    _write(folder / "coffee_small.jpg", cv2.resize(photos["coffee"], (180, 120)))
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _brute_force(engine, folder: Path, layer: str):
    """Every image's spatial maximum and its position per channel, from the live view's own Engine.run."""
    listing = list_folder(folder)
    values, positions = [], []
    for item in listing.items:
        activation = engine.run(_read(folder / item.path), [layer]).activations[layer].float()
        flat = activation.flatten(1)
        best = flat.argmax(1)
        values.append(flat.max(1).values)
        positions.append(torch.stack([best // activation.shape[2], best % activation.shape[2]], 1))
    return listing, torch.stack(values).numpy(), torch.stack(positions).numpy()


def test_worker_resize_equals_the_live_views_preprocessing(alexnet_engine, photos):
    for image in (photos["china"], photos["chelsea"][:, :200], cv2.resize(photos["coffee"], (97, 131))):
        resized, crop = crop_and_resize(image, alexnet_engine.spec.input_size)
        live, live_crop = alexnet_engine.preprocess(alexnet_engine.upload(image))
        mined, _ = alexnet_engine.preprocess(resized)
        assert crop == live_crop
        assert torch.equal(mined, live)


def test_top_images_and_peaks_match_a_brute_force_ranking(alexnet_engine, photo_folder, cache):
    (atlas,) = mine(alexnet_engine, photo_folder, "conv5", top=TOP, batch_size=4, workers=2)
    listing, values, positions = _brute_force(alexnet_engine, photo_folder, "features.10")
    assert atlas.images == len(listing.items) == 10 and atlas.skipped == []
    assert atlas.values.shape == (256, TOP)
    for channel in range(256):
        order = sorted(range(len(listing.items)), key=lambda i: (-values[i, channel], i))[:TOP]
        entries = atlas.entries(channel)
        assert [e.image for e in entries] == [listing.items[i].path for i in order], channel
        np.testing.assert_allclose([e.value for e in entries], values[order, channel], rtol=1e-5, atol=1e-6)
        for entry, i in zip(entries, order, strict=True):
            if values[i, channel] > 0:  # a map of zeros peaks everywhere: its first cell is the convention
                assert entry.at == tuple(positions[i, channel])


def test_boxes_are_alexnet_conv5_fields_mapped_into_each_image(alexnet_engine, photo_folder, cache):
    fields = receptive_fields(alexnet_engine.model, "features.10", (13, 13), 224)
    for row in range(13):
        for col in range(13):  # 163 px, stride 16, clipped to the 224 px input
            assert fields.box(row, col) == (
                max(0, 16 * col - 66),
                max(0, 16 * row - 66),
                min(224, 16 * col + 97),
                min(224, 16 * row + 97),
            )
    x0, y0, x1, y1 = fields.box(6, 5)
    assert (x1 - x0, y1 - y0) == (163, 163)
    (atlas,) = mine(alexnet_engine, photo_folder, "conv5", top=TOP, batch_size=4, workers=0)
    checked = 0
    for channel in range(0, 256, 16):
        for entry in atlas.entries(channel):
            height, width = _read(entry.path).shape[:2]
            crop = CropRect.centre_square(height, width)
            x0, y0, x1, y1 = fields.box(*entry.at)
            assert entry.input_box == (x0, y0, x1, y1)
            scale = crop.w / 224
            x, y, w, h = entry.box
            assert x == int(np.floor(crop.x + x0 * scale)) and y == int(np.floor(crop.y + y0 * scale))
            assert abs(w - (x1 - x0) * scale) <= 2 and abs(h - (y1 - y0) * scale) <= 2
            assert crop.x <= x and x + w <= crop.x + crop.w and crop.y <= y and y + h <= crop.y + crop.h
            checked += 1
    assert checked > 30
    assert box_in_image((0, 0, 224, 224), CropRect(75, 0, 300, 300), 224) == (75, 0, 300, 300)


def test_merging_ranks_ties_by_file_order_whatever_the_order_of_arrival():
    values = torch.tensor([[1.0], [0.0], [1.0], [0.0], [2.0]])
    items = torch.arange(5)
    zeros = torch.zeros(5, dtype=torch.int32)

    def part(rows):
        chosen = torch.tensor(rows)
        return RunningTop(
            values[chosen],
            items[chosen].view(-1, 1),
            zeros[chosen].view(-1, 1),
            zeros[chosen].view(-1, 1),
            zeros[chosen].view(-1, 1),
            zeros[chosen].view(-1, 1),
        )

    one = RunningTop.empty(4, 1).merged(part([0, 1, 2, 3, 4]))
    split = RunningTop.empty(4, 1).merged(part([3, 1]), part([4, 2, 0]))
    assert one.items.flatten().tolist() == split.items.flatten().tolist() == [4, 0, 2, 1]


def test_a_cancelled_run_resumes_to_the_same_atlas(alexnet_engine, photo_folder, cache, tmp_path, monkeypatch):
    calls = []

    def stop_after_two_batches(what, done, total):
        calls.append(done)
        return done < 4

    with pytest.raises(Cancelled):
        mine(alexnet_engine, photo_folder, "conv5", top=TOP, batch_size=2, workers=0, progress=stop_after_two_batches)
    assert list((cache / "atlas" / "partial").glob("*.npz")), "no checkpoint was written"
    resumed_from = []
    (resumed,) = mine(
        alexnet_engine,
        photo_folder,
        "conv5",
        top=TOP,
        batch_size=2,
        workers=0,
        progress=lambda what, done, total: resumed_from.append(done),
    )
    assert resumed_from[0] == 4 and not resumed.cached
    assert not list((cache / "atlas" / "partial").glob("*.npz"))
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "elsewhere"))
    (fresh,) = mine(alexnet_engine, photo_folder, "conv5", top=TOP, batch_size=2, workers=0)
    for name in ("items", "at", "boxes"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(fresh, name))
    np.testing.assert_array_equal(resumed.values, fresh.values)
    assert resumed.item_paths == fresh.item_paths and resumed.images == fresh.images == 10


def strict_reader(path, frame):
    """Like the app's reader, refuses truncated JPEGs (module-level: workers get it pickled)."""
    data = Path(path).read_bytes()
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise ValueError(f"{path} is a truncated JPEG")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError(f"{path} cannot be decoded")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def test_broken_and_other_files_are_skipped_and_named(alexnet_engine, photos, tmp_path, cache):
    folder = tmp_path / "mixed"
    _write(folder / "good.jpg", photos["chelsea"])
    _write(folder / "also_good.png", photos["coffee"])
    whole = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "text.jpg").write_text("this is not a picture")
    (folder / "notes.txt").write_text("notes")
    (folder / "empty.png").write_bytes(b"")

    (atlas,) = mine(alexnet_engine, folder, "conv5", top=2, batch_size=2, workers=1, reader=strict_reader)
    assert atlas.images == 2
    assert sorted(name for name, _ in atlas.skipped) == ["empty.png", "notes.txt", "text.jpg", "truncated.jpg"]
    assert {e.image for e in atlas.entries(0)} == {"good.jpg", "also_good.png"}


def test_a_changed_file_is_mined_again_and_the_app_finds_the_atlas(alexnet_engine, photos, tmp_path, cache):
    folder = tmp_path / "changing"
    for name in ("chelsea", "coffee", "astronaut"):
        _write(folder / f"{name}.jpg", photos[name])
    assert load_atlas(alexnet_engine, folder, "conv5") is None
    (first,) = mine(alexnet_engine, folder, "conv5", top=2, workers=0)
    (again,) = mine(alexnet_engine, folder, "conv5", top=2, workers=0)
    assert again.cached and not first.cached
    np.testing.assert_array_equal(again.values, first.values)
    loaded = load_atlas(alexnet_engine, folder, "features.10")
    assert loaded is not None and loaded.cached and loaded.item_paths == first.item_paths
    assert [(m.folder, m.images, m.current) for m in mined_folders(alexnet_engine, "conv5")] == [(folder, 3, True)]

    _write(folder / "coffee.jpg", photos["china"])  # same name, new content
    stat = (folder / "coffee.jpg").stat()
    os.utime(folder / "coffee.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_atlas(alexnet_engine, folder, "conv5") is None
    assert not mined_folders(alexnet_engine, "conv5")[0].current
    (changed,) = mine(alexnet_engine, folder, "conv5", top=2, workers=0)
    assert not changed.cached
    assert not np.array_equal(changed.values, first.values)


def test_video_frames_every_kth(alexnet_engine, pan_video, tmp_path, cache):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "pan.mp4").write_bytes(pan_video.read_bytes())
    assert [name for name, _ in list_folder(folder).skipped] == ["pan.mp4"]
    (atlas,) = mine(alexnet_engine, folder, "conv1", top=2, workers=0, video_step=8)
    assert atlas.images == 3
    assert {e.name for c in range(64) for e in atlas.entries(c)} <= {"pan.mp4#0", "pan.mp4#8", "pan.mp4#16"}


def test_the_models_suffixes_are_the_apps_readers():
    from livevis.models.data.images import IMAGE_SUFFIXES as APP_IMAGES
    from livevis.models.data.images import VIDEO_SUFFIXES as APP_VIDEOS

    assert set(IMAGE_SUFFIXES) == set(APP_IMAGES) and set(VIDEO_SUFFIXES) == set(APP_VIDEOS)


# ---------------------------------------------------------------------------------------------
# Tensor inputs: the network input as it is, each at its own size

TENSOR_NET = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 6, 5, stride=2, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
"""


def write_tensor_folder(root: Path) -> Path:
    """Twelve 2 x 40 x 48 .npy tensors, a 1 x 2 x 36 x 44 .pt (another shape, batched apart) and a 3-channel
    .npy that must be skipped."""
    folder = root / "tensors"
    (folder / "more").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        np.save(
            folder / ("more" if i % 4 == 0 else ".") / f"t{i:02d}.npy",
            rng.standard_normal((2, 40, 48)).astype(np.float32) * (1 + i / 4),
        )
    torch.save(torch.from_numpy(rng.standard_normal((1, 2, 36, 44)).astype(np.float32)) * 3, folder / "z.pt")
    np.save(folder / "wrong.npy", rng.standard_normal((3, 40, 48)).astype(np.float32))
    return folder


@pytest.fixture
def tensor_net(tmp_path, monkeypatch):
    """The net as a user's module in the working folder, and its Engine."""
    from livevis.models import Engine

    use_module(tmp_path, monkeypatch, "tensornet", TENSOR_NET)
    return Engine.load("tensornet:build", weights="none", device="cpu")


def _tensor_brute_force(model, folder: Path, names: list[str], layer: int):
    """Each tensor run through the model directly: per channel its spatial maximum and where."""
    from livevis.models.data.tensors import read_tensor

    values, positions, shapes = [], [], []
    for name in names:
        array = read_tensor(folder / name)
        with torch.no_grad():
            activation = model[: layer + 1](torch.from_numpy(array)[None])[0]
        flat = activation.flatten(1)
        best = flat.argmax(1)
        values.append(flat.max(1).values)
        positions.append(torch.stack([best // activation.shape[2], best % activation.shape[2]], 1))
        shapes.append(array.shape[1:])
    return torch.stack(values).numpy(), torch.stack(positions).numpy(), shapes


def test_tensor_inputs_match_a_brute_force_ranking(tensor_net, tmp_path, cache):
    folder = write_tensor_folder(tmp_path)
    listing = list_folder(folder)
    assert len(listing.tensors) == len(listing.items) == 14
    (atlas,) = mine(tensor_net, folder, "2", top=TOP, batch_size=5, workers=0)
    names = [item.path for item in listing.items if item.path != "wrong.npy"]
    assert atlas.images == 13
    assert [name for name, _ in atlas.skipped] == ["wrong.npy"]
    assert "3 channels" in atlas.skipped[0][1] and "takes 2" in atlas.skipped[0][1]
    values, positions, shapes = _tensor_brute_force(tensor_net.model, folder, names, 2)
    for channel in range(8):
        ranking = np.argsort(-values[:, channel], kind="stable")[:TOP]
        entries = atlas.entries(channel)
        assert [e.image for e in entries] == [names[i] for i in ranking]
        assert np.allclose([e.value for e in entries], values[ranking, channel], atol=1e-5)
        assert [e.at for e in entries] == [tuple(int(v) for v in positions[i, channel]) for i in ranking]
        for entry, i in zip(entries, ranking, strict=True):
            height, width = shapes[i]
            x, y, w, h = entry.box
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
            x0, y0, x1, y1 = entry.input_box
            assert entry.box == (x0, y0, x1 - x0, y1 - y0), "a tensor's crop is itself: boxes are its own pixels"
            row, col = entry.at  # conv 5 stride 2 pad 1, then conv 3 pad 1: 9 x 9 input pixels, clipped
            assert (x0, y0) == (max(0, 2 * col - 3), max(0, 2 * row - 3))
            assert (x1, y1) == (min(width, 2 * col + 6), min(height, 2 * row + 6))
    assert "z.pt" in {e.image for c in range(8) for e in atlas.entries(c)}, "the odd shape is mined too"
    again = mine(tensor_net, folder, "2", top=TOP, batch_size=5, workers=0)[0]
    assert again.cached and np.array_equal(again.items, atlas.items)


def test_photos_and_tensors_in_one_folder_are_refused_by_name(tensor_net, tmp_path, cache):
    folder = tmp_path / "mixed"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((2, 8, 8), np.float32))
    _write(folder / "b.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"a\.npy is a tensor file, b\.png is not"):
        mine(tensor_net, folder, "2", top=TOP, workers=0)
