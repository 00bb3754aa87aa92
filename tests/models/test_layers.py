import pytest
import torch

from livevis.models.errors import LayerNotFoundError
from livevis.models.layers import ActivationCapture

ALEXNET_NAMES = [
    "input",
    "conv1",
    "relu1",
    "pool1",
    "conv2",
    "relu2",
    "pool2",
    "conv3",
    "relu3",
    "conv4",
    "relu4",
    "conv5",
    "relu5",
    "pool5",
    "features",
    "avgpool",
    "drop5",
    "fc6",
    "relu6",
    "drop6",
    "fc7",
    "relu7",
    "fc8",
    "classifier",
    "prob",
]


def test_alexnet_layers_in_order_with_caffe_names(alexnet_engine):
    layers = alexnet_engine.layers
    assert [layer.name for layer in layers] == ALEXNET_NAMES
    conv5 = alexnet_engine.layer("conv5")
    assert conv5.path == "features.10"
    assert conv5.shape == (256, 13, 13)
    assert alexnet_engine.layer() == conv5, "conv5 is AlexNet's default layer, as in the Toolbox"
    assert alexnet_engine.layer("conv1").shape == (64, 55, 55)
    assert alexnet_engine.layer("fc7").shape == (4096,)
    assert layers[-1].shape == (1000,)


def test_vgg16_names_follow_caffe_blocks():
    from livevis.models import Engine

    names = [layer.name for layer in Engine.load("vgg16", weights="none", device="cpu").layers]
    assert names[1:6] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "conv5_3" in names and names.index("conv5_3") < names.index("pool5") < names.index("fc6")


def test_resnet18_lists_in_execution_order_not_declaration_order(resnet18_engine):
    paths = [layer.path for layer in resnet18_engine.layers]
    assert paths[:5] == ["input", "conv1", "bn1", "relu", "maxpool"]
    # BasicBlock declares relu before conv2 and downsample, but calls it last (after the residual add).
    block = [p for p in paths if p.startswith("layer2.0.")]
    assert block == [
        "layer2.0.conv1",
        "layer2.0.bn1",
        "layer2.0.conv2",
        "layer2.0.bn2",
        "layer2.0.downsample.0",
        "layer2.0.downsample.1",
        "layer2.0.downsample",
        "layer2.0.relu",
    ]
    assert paths.index("layer2.0") < paths.index("layer2.1.conv1")
    assert paths.index("layer1") < paths.index("layer2.0.conv1")
    shapes = {layer.path: layer.shape for layer in resnet18_engine.layers}
    assert shapes["layer1"] == (64, 56, 56)
    assert shapes["layer4"] == (512, 7, 7)
    assert shapes["fc"] == (1000,)
    assert paths[-1] == "prob"


def test_unknown_layer_says_how_to_list_layers(alexnet_engine):
    with pytest.raises(LayerNotFoundError, match="livevis layers"):
        alexnet_engine.layer("conv9")


def test_capture_keeps_signed_conv5_despite_inplace_relu(alexnet_engine, photos):
    result = alexnet_engine.run(photos["chelsea"], ["features.10", "features.11"])
    conv5, relu5 = result.activations["features.10"], result.activations["features.11"]
    assert conv5.min() < 0, "the in-place ReLU overwrote the captured conv5 output"
    assert relu5.min() >= 0
    assert torch.equal(relu5, conv5.clamp_min(0))
    with torch.inference_mode():
        direct = alexnet_engine.model.features[:11](result.input)[0]
    torch.testing.assert_close(conv5, direct, atol=1e-5, rtol=1e-5)


def test_capture_releases_its_hooks(alexnet_engine):
    module = alexnet_engine.model.features[10]
    with ActivationCapture(alexnet_engine.model, ["features.10"]) as capture:
        assert len(module._forward_hooks) == 1
        alexnet_engine.model(torch.zeros(1, 3, 224, 224))
    assert not module._forward_hooks
    assert capture.activations["features.10"].shape == (1, 256, 13, 13)


def test_a_capture_takes_only_its_own_threads_forward(alexnet_engine):
    """Two threads share one model: each one's capture holds what its own forward computed."""
    import threading

    import torch

    from livevis.models.layers import ActivationCapture

    model = alexnet_engine.model
    torch.manual_seed(0)
    mine, theirs = torch.randn(1, 3, 224, 224), torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        expected = ActivationCapture(model, ["features.10"])
        with expected:
            model(mine)
    started, release = threading.Event(), threading.Event()

    def other_thread():
        with torch.inference_mode():
            started.set()
            for _ in range(20):
                model(theirs)
            release.set()

    worker = threading.Thread(target=other_thread)
    with torch.inference_mode(), ActivationCapture(model, ["features.10"]) as capture:
        worker.start()
        started.wait(10)
        model(mine)
        release.wait(60)
    worker.join(60)
    assert torch.equal(capture.activations["features.10"], expected.activations["features.10"])
