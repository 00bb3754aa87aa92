"""A cache entry that cannot be read is a miss: set aside as NAME.damaged with one log line, and made again,
for every cache livevis reads (optimised images, receptive fields, atlases and their sidecars, concepts,
embeddings, downloaded weights)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from livevis.models.atlas import receptive_field
from livevis.models.atlas.mining import mine, mined_folders
from livevis.models.atlas.store import atlas_dir
from livevis.models.cache import DAMAGED_SUFFIX, read_entry
from livevis.models.concepts.dataset import fit_concepts
from livevis.models.dream.run import cache_file, dream, plan
from livevis.models.zoo.registry import HubWeights, get_spec
from livevis.models.zoo.weights import hub_checkpoint_dir, resolve_weights

LOGGER = "livevis.models.cache"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def three_photos(tmp_path, photos) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        assert cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    return folder


def set_aside_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def damaged(path: Path) -> Path:
    return path.with_name(path.name + DAMAGED_SUFFIX)


def test_a_truncated_optimised_image_is_set_aside_and_optimised_again(lenet, cache, caplog):
    request = plan(lenet, "conv2", 1, steps=8, seed=3)
    made = dream(lenet, request)
    stored = cache_file(lenet, request, 1)
    stored.write_bytes(stored.read_bytes()[:100])  # cut short, as by a full disk: zipfile.BadZipFile
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        again = dream(lenet, request)
    assert not again.cached
    np.testing.assert_array_equal(again.images, made.images)
    (line,) = set_aside_lines(caplog)
    assert stored.name in line and "BadZipFile" in line
    assert damaged(stored).is_file()
    assert dream(lenet, request).cached, "the image made again was stored again"


def test_an_empty_receptive_field_file_is_set_aside_and_mining_still_ends(
    alexnet_engine, three_photos, cache, caplog, monkeypatch
):
    monkeypatch.setattr(receptive_field, "_MEMORY", {})  # found by an earlier test: found and written again here
    (first,) = mine(alexnet_engine, three_photos, "conv5", top=2, workers=0)
    (fields,) = (atlas_dir() / "fields").glob("*.npy")
    fields.write_bytes(b"")
    monkeypatch.setattr(receptive_field, "_MEMORY", {})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (again,) = mine(alexnet_engine, three_photos, "conv5", top=2, workers=0, use_cache=False)
    np.testing.assert_array_equal(again.boxes, first.boxes)
    (line,) = set_aside_lines(caplog)
    assert fields.name in line
    assert damaged(fields).read_bytes() == b"" and np.load(fields).shape == (13, 13, 4)


def _without_created(text: str) -> str:
    meta = json.loads(text)
    del meta["created"]
    return json.dumps(meta)


@pytest.mark.parametrize(
    "damage",
    [lambda _: "[]", _without_created, lambda _: "", lambda text: text[: len(text) // 2]],
    ids=["a list", "no created", "empty", "cut short"],
)
def test_a_damaged_atlas_sidecar_is_written_again_from_its_atlas(alexnet_engine, three_photos, cache, caplog, damage):
    mine(alexnet_engine, three_photos, "conv5", top=2, workers=0)
    (sidecar,) = atlas_dir().glob("*.json")
    good = json.loads(sidecar.read_text())
    sidecar.write_text(damage(sidecar.read_text()))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        listed = mined_folders(alexnet_engine, "conv5")
    assert [(m.folder, m.images, m.created) for m in listed] == [(three_photos, 3, good["created"])]
    assert json.loads(sidecar.read_text()) == good
    assert len(set_aside_lines(caplog)) == 1 and damaged(sidecar).is_file()
    assert mined_folders(alexnet_engine, "conv5") == listed


def test_a_truncated_atlas_is_set_aside_and_mined_again(alexnet_engine, three_photos, cache, caplog):
    (first,) = mine(alexnet_engine, three_photos, "conv5", top=2, workers=0)
    (stored,) = atlas_dir().glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:300])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (again,) = mine(alexnet_engine, three_photos, "conv5", top=2, workers=0)
    assert not again.cached
    np.testing.assert_array_equal(again.values, first.values)
    assert len(set_aside_lines(caplog)) == 1 and damaged(stored).is_file()


def test_truncated_concepts_are_set_aside_and_fitted_again(alexnet_engine, three_photos, cache, caplog):
    first = fit_concepts(alexnet_engine, three_photos, "conv5", 3)
    first.file.write_bytes(first.file.read_bytes()[:300])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        again = fit_concepts(alexnet_engine, three_photos, "conv5", 3)
    assert not again.cached
    np.testing.assert_allclose(again.channels, first.channels, rtol=1e-5, atol=1e-6)
    assert len(set_aside_lines(caplog)) == 1 and damaged(first.file).is_file()
    assert fit_concepts(alexnet_engine, three_photos, "conv5", 3).cached


def test_cut_short_downloaded_weights_are_set_aside_and_downloaded_again(
    tmp_path, monkeypatch, alexnet_weights_file, caplog
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    data = alexnet_weights_file.read_bytes()
    served = tmp_path / "server" / f"alexnet-test-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    served.parent.mkdir()
    served.write_bytes(data)
    spec = replace(get_spec("alexnet"), weights=HubWeights(served.as_uri()))
    cached = hub_checkpoint_dir() / served.name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        state, info = resolve_weights(spec, progress=False)
    assert info.source.startswith("download ") and cached.read_bytes() == data
    assert torch.equal(state["features.0.weight"], torch.load(served, weights_only=True)["features.0.weight"])
    assert len(set_aside_lines(caplog)) == 1 and damaged(cached).is_file()


def test_an_entry_outside_the_cache_is_never_renamed(tmp_path, cache, caplog):
    """A file a user named (a concepts file, say) is theirs: it is read, or reported, and left alone."""
    own = tmp_path / "mine.npz"
    own.write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_entry(own, np.load) is None
    assert own.read_bytes() == b"not a zip" and not damaged(own).exists()
    (line,) = set_aside_lines(caplog)
    assert "mine.npz" in line and "left as it is" in line


def test_a_missing_entry_or_cache_folder_is_a_plain_miss(tmp_path, caplog):
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_entry(tmp_path / "none.npz", np.load) is None
        assert read_entry(blocked / "under_a_file.npz", np.load) is None
    assert set_aside_lines(caplog) == []
