"""Networks that are not classifiers, with inputs that are not photos: the notes' dynamics net, which takes
a scene and a grabbing point (2 x H x W) and predicts the scene after the motion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livevis.app.cli import main
from livevis.models import Engine, ViewOptions, Visualizer
from livevis.models.data.tensors import read_tensor
from livevis.models.errors import InputError
from tests.conftest import use_module

DYNAMICS_NET = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(self.relu(self.conv1(x))))


class DynamicsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 8, 3, padding=1)
        self.block1 = Block(8)
        self.block2 = Block(8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        return x[:, :1] + self.head(self.block2(self.block1(torch.relu(self.stem(x)))))


def build():
    torch.manual_seed(0)
    return DynamicsNet()
"""


@pytest.fixture
def dynamics(tmp_path, monkeypatch):
    """The net as a user's module in the working folder, and a 2 x 48 x 64 scene as a .npy file."""
    use_module(tmp_path, monkeypatch, "dynnet", DYNAMICS_NET)
    scene = np.random.default_rng(0).standard_normal((2, 48, 64)).astype(np.float32)
    np.save(tmp_path / "scene.npy", scene)
    return tmp_path, scene


def test_a_two_channel_image_to_image_net_loads_and_lists_its_output(dynamics):
    engine = Engine.load("dynnet:build", weights="none", device="cpu", input_size=64)
    assert not engine.is_classifier and engine.categories == []
    assert engine.spec.in_channels == 2, "taken from the first convolution"
    assert [layer.path for layer in engine.layers][-2:] == ["head", "output"]
    assert engine.layer("output").shape == (1, 64, 64)


def test_render_of_a_tensor_input_equals_a_direct_forward(dynamics, capsys):
    folder, scene = dynamics
    code = main(
        [
            "render",
            "scene.npy",
            "--model",
            "dynnet:build",
            "--weights",
            "none",
            "--layer",
            "block1",
            "--save-activations",
            "--out",
            "out",
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["top5"] == [] and report["peak"]["frame_xy"][0] < 64
    saved = np.load(folder / "out" / "activations.npz")
    assert "top5_index" not in saved
    assert np.array_equal(saved["input"][0], scene), "the input as it is: no crop, resize or normalisation"
    import dynnet

    model = dynnet.build().eval()
    outputs = {}
    model.block1.register_forward_hook(lambda m, i, out: outputs.setdefault("block1", out.detach().clone()))
    with torch.no_grad():
        model(torch.from_numpy(scene)[None])
    assert np.allclose(saved["activation"], outputs["block1"][0].numpy(), atol=1e-6)


def test_the_output_layer_and_backprop_work_on_a_non_classifier(dynamics):
    _, scene = dynamics
    visualizer = Visualizer(Engine.load("dynnet:build", weights="none", device="cpu"))
    views = visualizer.process(scene, ViewOptions(layer="output", backprop="guided"), with_activations=True)
    assert views.activation.shape == (1, 48, 64) and views.values["top5"] == []
    assert views.frame.dtype == np.uint8 and views.frame.shape == (48, 64, 3)
    assert views.values["backprop_gradient"].shape == (2, 48, 64)
    assert views.images["input_signed"].shape[1] > views.images["input_signed"].shape[0], (
        "each input channel drawn signed"
    )
    with pytest.raises(Exception, match="Grad-CAM explains a class"):
        visualizer.process(scene, ViewOptions(layer="block2", backprop="gradcam"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((2, 8, 8), np.float32), "has 2 channels but alexnet takes 3"),
        (np.full((3, 8, 8), np.nan, np.float32), "192 NaN or infinite values"),
        (np.zeros((8, 8), np.float32), "a tensor input is C x H x W"),
        (np.zeros((2, 3, 8, 8), np.float32), "a tensor input is C x H x W"),
    ],
)
def test_bad_tensor_inputs_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "input.npy"
    np.save(path, content)
    code = main(["render", str(path), "--weights", "none", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_a_pt_file_and_a_batch_of_one_read_as_c_h_w(tmp_path):
    torch.save(torch.ones(1, 2, 5, 7), tmp_path / "x.pt")
    assert read_tensor(tmp_path / "x.pt").shape == (2, 5, 7)
    (tmp_path / "notes.pt").write_text("not a tensor")
    with pytest.raises(InputError, match="not a tensor file"):
        read_tensor(tmp_path / "notes.pt")


def test_render_of_a_folder_with_a_network_that_does_not_classify(dynamics, capsys):
    folder, scene = dynamics
    (folder / "scenes").mkdir()
    for name in ("a", "b"):
        np.save(folder / "scenes" / f"{name}.npy", scene * (1 if name == "a" else -1))
    args = ["render", str(folder / "scenes"), "--model", "dynnet:build", "--weights", "none", "--layer", "block1"]
    code = main([*args, "--out", str(folder / "views")])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    assert "peak" in lines["a.npy"] and "peak" in lines["b.npy"], "a line per scene, with no classes to name"
    assert (folder / "views" / "a" / "grid.png").is_file() and (folder / "views" / "b" / "grid.png").is_file()
