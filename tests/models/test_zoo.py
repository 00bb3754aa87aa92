"""Every registered model, the bundled trained LeNet, and users' own models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import livevis.models.zoo.weights
from livevis.models import Engine, ViewOptions, Visualizer, model_names
from livevis.models.data.datasets import mnist_split
from livevis.models.errors import ModelNotFoundError, WeightsError
from livevis.models.zoo import get_spec
from livevis.models.zoo.lenet import WEIGHTS_FILE, LeNet5, accuracy
from tests.conftest import use_module

LENET_OPTIONS = {"input_size": 28, "mean": (0.1307,), "std": (0.3081,)}


HARDSWISH_MINIMUM = -0.375
"""The lowest value any activation the registered models use can output (ReLU, ReLU6: 0; SiLU: -0.278)."""


@pytest.mark.parametrize("name", [name for name in model_names() if not get_spec(name).task])
def test_every_registered_model_builds_lists_layers_renders_and_opens_on_features(name, photos):
    """Each model opens on a layer whose maps look like features: after an activation (its outputs never
    below an activation's minimum, on a real photo), 7 to 28 cells a side. AlexNet keeps conv5, the
    Toolbox's choice; a transformer opens on a block two thirds down (its tokens as maps)."""
    engine = Engine.load(name, weights="none", device="cpu")
    layer = engine.layer()
    assert layer.is_spatial and layer.path in {entry.path for entry in engine.layers}
    assert engine.layers[0].path == "input" and engine.layers[-1].path == "prob"
    assert len(engine.categories) == engine.layers[-1].channels
    views = Visualizer(engine).process(photos["coffee"])
    assert views.images["grid"].shape == (views.values["grid_layout"].height, views.values["grid_layout"].width, 3)
    assert views.images["overlay"].shape == photos["coffee"].shape
    assert "UNTRAINED" in engine.weights.label
    assert all(7 <= side <= 28 for side in layer.shape[1:]), layer
    if name == "alexnet":
        assert layer.name == "conv5" and layer.module_type == "Conv2d"
        return
    if engine.blocks:
        assert layer == engine.blocks[round(2 * (len(engine.blocks) - 1) / 3)] and layer.prefix_tokens
        return
    maps = engine.run(photos["coffee"], [layer.path]).activations[layer.path]
    assert maps.min() >= HARDSWISH_MINIMUM and maps.max() > 0, f"{layer.path} is not after an activation"


def test_efficientnet_lite0_opens_after_an_activation_not_on_a_linear_bottleneck(lite0, photos):
    """Trained weights: blocks.4 (the former default) ends in a linear bottleneck whose maps go as far below
    zero as above it; the default, the last activation at 14 x 14, is a ReLU6."""
    layer = lite0.layer()
    assert (layer.path, layer.shape, layer.module_type) == ("blocks.5.0.bn1.act", (672, 14, 14), "ReLU6")
    run = lite0.run(photos["chelsea"], [layer.path, "blocks.4"])
    features, bottleneck = run.activations[layer.path], run.activations["blocks.4"]
    assert features.min() >= 0 and features.max() <= 6
    assert bottleneck.min() < -0.3 * bottleneck.max(), "signed maps: what the test above tells apart"


PLAIN_NET = """
import torch


class PlainNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.Conv2d(8, 8, 3, stride=2)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3)))
"""


def test_a_users_model_opens_on_its_deepest_activation_of_7_to_28_cells(tmp_path, monkeypatch):
    """`models.engine._default_layer` for a model without a spec's choice."""
    engine = Engine.load("timm:resnet18", weights="none", device="cpu")
    assert engine.layer().path == "layer4.1.act2" and engine.layer().shape == (512, 7, 7)
    lenet = Engine.load("livevis.models.zoo.lenet:LeNet5", weights="none", device="cpu", **LENET_OPTIONS)
    assert lenet.layer().path == "relu2" and lenet.layer().shape == (16, 10, 10)

    use_module(tmp_path, monkeypatch, "plainnet", PLAIN_NET)  # functional ReLUs: no activation module to find
    plain = Engine.load(
        "plainnet:PlainNet", weights="none", device="cpu", input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3
    )
    assert plain.layer().path == "conv2" and plain.layer().shape == (8, 7, 7), "the last map of 7 cells or more"


@pytest.fixture(scope="module")
def held_out_digits():
    return mnist_split()[1]


def test_bundled_lenet_scores_98_percent_on_held_out_mnist(held_out_digits):
    engine = Engine.load("lenet", device="cpu")
    assert engine.weights.trained and engine.weights.source == "bundled lenet_mnist.pth"
    assert len(held_out_digits) == 2000
    assert accuracy(engine.model, held_out_digits.images, held_out_digits.labels) >= 0.98


def test_lenet_through_the_live_pipeline_reads_digits(held_out_digits):
    """A digit given as an RGB frame goes through the same preprocessing as a webcam frame."""
    visualizer = Visualizer(Engine.load("lenet", device="cpu"), ViewOptions(layer="conv1"))
    right = 0
    for image, label in zip(held_out_digits.images[:100], held_out_digits.labels[:100], strict=True):
        views = visualizer.process(np.repeat(image[..., None], 3, axis=2))
        right += views.values["top5"][0].label == str(label)
    assert right >= 95
    assert views.values["grid_layout"].channels == 6 and views.images["channel_tile"].shape == (28, 28, 3)


def _lenet_with_bundled_weights() -> LeNet5:
    model = LeNet5()
    model.load_state_dict(torch.load(WEIGHTS_FILE, weights_only=True))
    return model.eval()


def _digits_right(engine: Engine, digits, n: int = 200) -> float:
    visualizer = Visualizer(engine, ViewOptions(layer="input"))
    images, labels = digits.images[:n], digits.labels[:n]
    hits = [
        visualizer.process(np.repeat(i[..., None], 3, 2)).values["top5"][0].index == y
        for i, y in zip(images, labels, strict=True)
    ]
    return float(np.mean(hits))


def test_a_users_torch_export_program_shows_every_layer(tmp_path, held_out_digits):
    path = tmp_path / "lenet.pt2"
    torch.export.save(torch.export.export(_lenet_with_bundled_weights(), (torch.zeros(1, 1, 28, 28),)), str(path))
    labels = tmp_path / "digits.txt"
    labels.write_text("\n".join(str(d) for d in range(10)))
    engine = Engine.load(str(path), device="cpu", labels=labels, **LENET_OPTIONS)
    assert [layer.path for layer in engine.layers][:4] == ["input", "conv1", "relu1", "pool1"]
    assert engine.layer().path == "relu2"
    assert _digits_right(engine, held_out_digits) >= 0.97


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_users_torchscript_file_runs_with_input_and_output(tmp_path, held_out_digits):
    path = tmp_path / "lenet.torchscript"
    torch.jit.save(torch.jit.script(_lenet_with_bundled_weights()), str(path))
    engine = Engine.load(str(path), device="cpu", **LENET_OPTIONS)
    assert [layer.path for layer in engine.layers] == ["input", "prob"]
    assert engine.categories[3] == "class 3", "no labels file: classes are numbered"
    hits = Visualizer(engine).process(np.repeat(held_out_digits.images[0][..., None], 3, 2)).values["top5"][0]
    assert hits.label == f"class {held_out_digits.labels[0]}"
    with pytest.raises(WeightsError, match="inside the model file"):
        Engine.load(str(path), weights="none", device="cpu", **LENET_OPTIONS)


def test_a_users_factory_with_a_state_dict(held_out_digits, alexnet_weights_file):
    engine = Engine.load("livevis.models.zoo.lenet:LeNet5", weights=WEIGHTS_FILE, device="cpu", **LENET_OPTIONS)
    assert engine.weights.trained and engine.layer().path == "relu2", "the last layer with maps of 7x7 or more"
    assert _digits_right(engine, held_out_digits) >= 0.97
    with pytest.raises(WeightsError, match="no known trained weights"):
        Engine.load("livevis.models.zoo.lenet:LeNet5", device="cpu", **LENET_OPTIONS)
    with pytest.raises(WeightsError, match="tensor 'conv1.weight' is missing"):
        Engine.load("livevis.models.zoo.lenet:LeNet5", weights=alexnet_weights_file, device="cpu", **LENET_OPTIONS)
    with pytest.raises(ModelNotFoundError, match="no callable 'LeNet9'"):
        Engine.load("livevis.models.zoo.lenet:LeNet9", weights="none", device="cpu")


def test_timm_models_by_name():
    engine = Engine.load("timm:resnet18", weights="none", device="cpu")
    assert engine.spec.family == "timm"
    with pytest.raises(ModelNotFoundError, match="timm has no model"):
        Engine.load("timm:no_such_net", weights="none", device="cpu")


def test_unknown_names_list_every_way_to_name_a_model():
    with pytest.raises(ModelNotFoundError, match="timm:NAME.*module:factory"):
        Engine.load("resnet9000", weights="none", device="cpu")


def test_timm_weights_offline_say_where_to_put_them_quickly(tmp_path, monkeypatch):
    import time
    from urllib.error import URLError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    offline = lambda *a, **k: (_ for _ in ()).throw(URLError("offline"))  # noqa: E731
    monkeypatch.setattr(livevis.models.zoo.weights, "urlopen", offline)
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=r"model\.safetensors \(from https://huggingface\.co/timm/resnet18"):
        Engine.load("timm:resnet18", device="cpu")
    assert time.perf_counter() - start < 20, "no retry loop when offline"


def test_timm_weights_from_our_cache(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = timm.create_model("resnet18", pretrained=False)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    save_file(reference.state_dict(), str(cache / "timm--timm--resnet18.a1_in1k.safetensors"))
    engine = Engine.load("timm:resnet18", device="cpu")
    assert engine.weights.trained and "cache" in engine.weights.source
    assert torch.equal(engine.model.conv1.weight, reference.conv1.weight)
