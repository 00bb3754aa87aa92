"""livevis embed --tensorboard: what TensorBoard's embedding projector reads, read back with its own config
format, against the points, classes and thumbnails of the run."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from livevis.app.cli import main

SAMPLES = 300


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def read_projector_config(folder):
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    return text_format.Parse((folder / "projector_config.pbtxt").read_text(), ProjectorConfig())


def test_each_layer_is_a_projector_embedding_with_classes_and_thumbnails(cache, tmp_path, capsys):
    from livevis.models import Engine
    from livevis.models.data.datasets import embedding_dataset
    from livevis.models.embeddings.tsne import embed_dataset

    board = tmp_path / "board"
    status = main(
        [
            "embed",
            "--dataset",
            "mnist",
            "--samples",
            str(SAMPLES),
            "--layers",
            "conv2,fc3",
            "--out",
            str(tmp_path / "embeddings.png"),
            "--tensorboard",
            str(board),
            "--json",
        ]
    )
    assert status == 0
    assert json.loads(capsys.readouterr().out)["samples"] == SAMPLES, "--json still prints only the JSON"

    config = read_projector_config(board)
    assert [embedding.tensor_name.split(":")[0] for embedding in config.embeddings] == ["conv2", "fc3"]
    # the same run again comes from the cache: the points the maps were made from
    engine = Engine.load("lenet", device="cpu")
    data, _ = embedding_dataset("mnist", SAMPLES, 0, engine.spec.input_size)
    run = embed_dataset(engine, data, "mnist", ["conv2", "fc3"])
    assert all(layer.cached for layer in run.layers)
    expected_names = [run.classes[label] for label in run.labels]
    for embedding, layer, dimension in zip(config.embeddings, run.layers, (50, 10), strict=True):
        points = np.loadtxt(board / embedding.tensor_path, delimiter="\t", dtype=np.float32)
        assert points.shape == (SAMPLES, dimension), "PCA to 50 where a layer has more (conv2: 400), else as is"
        np.testing.assert_allclose(points, layer.reduced, rtol=1e-4, atol=1e-4)
        names = (board / embedding.metadata_path).read_text().splitlines()
        assert names == expected_names and set(names) == {str(d) for d in range(10)}
        assert list(embedding.sprite.single_image_dim) == [32, 32]
        sprite = cv2.imread(str(board / embedding.sprite.image_path), cv2.IMREAD_COLOR)
        side = int(np.ceil(np.sqrt(SAMPLES))) * 32
        assert sprite.shape == (side, side, 3)
        first = cv2.cvtColor(sprite[:32, :32], cv2.COLOR_BGR2RGB)
        assert np.abs(first.astype(int) - run.thumbnails[0]).max() <= 1, "thumbnail 0 is the sprite's first cell"


def test_without_tensorboard_it_says_what_to_install_before_computing(cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as where the package is missing
    status = main(
        [
            "embed",
            "--dataset",
            "mnist",
            "--samples",
            "100",
            "--out",
            str(tmp_path / "e.png"),
            "--tensorboard",
            str(tmp_path / "board"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "pip install tensorboard" in err
    assert not cache.exists(), "nothing was computed"
