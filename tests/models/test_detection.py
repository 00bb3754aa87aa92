"""Detectors and segmenters by name: `render` saves what an independent forward of the same torchvision model, on
the same frame, with the same random weights (given as a state-dict file), returns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision.models as tvm

from livevis.app.cli import main

FRAME_SIZE = (160, 120)


@pytest.fixture(scope="module")
def frame_file(tmp_path_factory, photos):
    import cv2

    frame = cv2.resize(photos["astronaut"], FRAME_SIZE, interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("frame") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path, frame


def torchvision_model(name: str, **options) -> torch.nn.Module:
    """torchvision's own build of a model, random weights, nothing fetched."""
    if name.startswith(("deeplabv3", "fcn")):
        options.setdefault("aux_loss", True)
    torch.manual_seed(0)
    return tvm.get_model(name, weights=None, weights_backbone=None, **options).eval()


def rendered(tmp_path, capsys, name, frame_path, *extra):
    weights = tmp_path / f"{name}.pt"
    model = torchvision_model(name)
    if name.startswith("fasterrcnn"):  # random scores sit near 1/91, under the trained threshold: lift one class
        with torch.no_grad():
            model.roi_heads.box_predictor.cls_score.bias[1] += 8.0
    torch.save(model.state_dict(), weights)
    out = tmp_path / "out"
    code = main(
        ["render", str(frame_path), "--model", name, "--weights", str(weights), "--device", "cpu", "--out", str(out)]
        + ["--save-activations", "--json", *extra]
    )
    about = json.loads(capsys.readouterr().out)
    assert code == 0
    return model, dict(np.load(out / "activations.npz")), about, out


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"])
def test_a_detectors_boxes_equal_an_independent_forward(tmp_path, capsys, frame_file, name):
    frame_path, frame = frame_file
    model, saved, about, out = rendered(tmp_path, capsys, name, frame_path, "--score-threshold", "0.05")
    image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        expected = model([image])[0]
    assert len(expected["boxes"]) > 10  # enough detections for the comparison to mean something
    np.testing.assert_array_equal(saved["input"][0], image.numpy())  # the whole frame, as it is, in [0, 1]
    assert "crop" not in saved
    np.testing.assert_allclose(saved["boxes"], expected["boxes"].numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(saved["scores"], expected["scores"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(saved["labels"], expected["labels"].numpy())
    assert saved["labels"].dtype == np.int64 and saved["boxes"].dtype == np.float32
    assert len(about["detections"]) == len(expected["boxes"])
    assert about["drawn"] == int((expected["scores"] >= 0.05).sum())
    assert (out / "detections.png").is_file()
    # it opens on the pyramid's finest level (SSD's first feature map); the tree lists every level as a layer
    assert about["layer_name"] == ("backbone.fpn:0" if name.startswith("faster") else "backbone:0")
    if name.startswith("faster"):
        layers = [row["name"] for row in _layers(capsys, name)]
        assert {"backbone.fpn:0", "backbone.fpn:1", "backbone.fpn:pool", "rpn.head.conv"} <= set(layers)
        assert layers.index("backbone.fpn:pool") < layers.index("rpn.head.conv")  # in the order they run


def _layers(capsys, name):
    assert main(["layers", "--model", name, "--weights", "none", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_a_segmenters_classes_equal_an_independent_forward(tmp_path, capsys, frame_file, name):
    frame_path, frame = frame_file
    model, saved, about, out = rendered(tmp_path, capsys, name, frame_path)
    transform = tvm.get_model_weights(name).DEFAULT.transforms()
    x = transform(torch.from_numpy(frame).permute(2, 0, 1))[None]
    with torch.no_grad():
        expected = model(x)["out"][0]
    np.testing.assert_allclose(saved["input"], x.numpy(), atol=1e-5)
    np.testing.assert_allclose(saved["segmentation"], expected.numpy(), rtol=1e-4, atol=1e-4)
    shares = {entry["class"]: entry["share"] for entry in about["segmentation"]}
    classes = expected.argmax(0)
    for index, share in shares.items():
        assert share == pytest.approx(float((classes == index).float().mean()), abs=1e-4)
    # each pixel in its class's colour over the frame, the background left as it is (the legend beside it)
    import cv2

    from livevis.models.detection.draw import SEGMENT_OPACITY, class_colours

    picture = cv2.cvtColor(cv2.imread(str(out / "segmentation.png")), cv2.COLOR_BGR2RGB)[
        : frame.shape[0], : frame.shape[1]
    ]
    shown = cv2.resize(classes.numpy().astype(np.uint8), FRAME_SIZE, interpolation=cv2.INTER_NEAREST)
    tinted = frame * (1 - SEGMENT_OPACITY) + class_colours(21)[shown] * SEGMENT_OPACITY
    expected_picture = np.where((shown > 0)[..., None], tinted, frame)
    assert np.abs(picture.astype(float) - expected_picture).max() <= 1.0


def _kept(model, module, key=None):
    """A forward hook keeping a module's output (one entry of a mapping) with its graph."""
    kept = {}

    def hook(_module, _inputs, output):
        kept["out"] = output if key is None else output[key]

    return kept, module.register_forward_hook(hook)


def test_gradcam_of_a_box_equals_a_hand_written_backward(tmp_path, capsys, frame_file):
    """`--box 0 --backprop gradcam`: the box's score (FasterRCNNBoxScoreTarget: its score plus its IoU with
    itself) backpropagated to the pyramid's finest level, and Grad-CAM's formula there, by hand."""
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    frame_path, frame = frame_file
    model, saved, about, out = rendered(tmp_path, capsys, name, frame_path, "--box", "0", "--backprop", "gradcam")
    kept, handle = _kept(model, model.backbone.fpn, "0")
    image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0
    detections = model([image])[0]
    handle.remove()
    (gradient,) = torch.autograd.grad(detections["scores"][0] + 1.0, kept["out"])
    weights = gradient[0].mean(dim=(1, 2))
    expected = torch.relu((weights[:, None, None] * kept["out"][0]).sum(0)).detach()
    assert expected.max() > 0
    np.testing.assert_allclose(saved["gradcam"], expected.numpy(), rtol=1e-3, atol=1e-5 * float(expected.max()))
    np.testing.assert_allclose(saved["explained_box"], detections["boxes"][0].detach().numpy(), atol=1e-3)
    explained = about["explained"]
    assert explained["index"] == 0 and explained["iou"] == pytest.approx(1.0)
    assert explained["layer"] == "backbone.fpn.layer_blocks.0"
    assert (out / "backprop.png").is_file()


def test_eigencam_of_a_segmenter_is_the_layers_first_principal_component(tmp_path, capsys, frame_file):
    name = "lraspp_mobilenet_v3_large"
    frame_path, frame = frame_file
    model, saved, about, _ = rendered(tmp_path, capsys, name, frame_path, "--backprop", "eigencam")
    kept, handle = _kept(model, model.get_submodule(about["explained"]["layer"]))
    with torch.no_grad():
        model(torch.from_numpy(saved["input"]))
    handle.remove()
    activation = kept["out"][0].double()
    cells = activation.reshape(activation.shape[0], -1).T
    centred = cells - cells.mean(0)
    projection = (centred @ torch.linalg.svd(centred, full_matrices=False).Vh[0]).reshape(activation.shape[1:])
    projection = projection if projection.max() >= -projection.min() else -projection
    np.testing.assert_allclose(saved["eigencam"], projection.clamp(min=0).numpy(), rtol=1e-3, atol=1e-4)
    assert about["explained"]["method"] == "eigencam" and about["explained"]["layer"] == "classifier.cbr.2"


MASK_RCNN = """
import torch
import torchvision


def build():
    torch.manual_seed(1)
    return torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=128, max_size=160, box_score_thresh=0.0,
        rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=40, box_detections_per_img=12,
    )
"""
TWO_OUTPUTS = """
import torch


class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x), self.conv(x).mean()


def build():
    return Pair()
"""


def test_a_users_factory_is_recognised_as_a_detector_by_its_output(tmp_path, capsys, monkeypatch, frame_file):
    """`module:factory` returning Mask R-CNN: its boxes, scores, labels and masks saved as it returns them."""
    from tests.conftest import use_module

    frame_path, frame = frame_file
    use_module(tmp_path, monkeypatch, "mydetector", MASK_RCNN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import mydetector

    model = mydetector.build().eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    out = tmp_path / "out"
    args = ["render", frame_path, "--model", "mydetector:build", "--weights", tmp_path / "weights.pt", "--out", out]
    assert main([str(a) for a in [*args, "--save-activations", "--json"]]) == 0
    about = json.loads(capsys.readouterr().out)
    saved = np.load(out / "activations.npz")
    with torch.no_grad():
        expected = model([torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0])[0]
    assert len(expected["boxes"]) == 12 and len(about["detections"]) == 12
    np.testing.assert_allclose(saved["boxes"], expected["boxes"].numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(saved["labels"], expected["labels"].numpy())
    np.testing.assert_allclose(saved["masks"], expected["masks"][:, 0].numpy(), atol=1e-5)
    assert saved["masks"].shape == (12, FRAME_SIZE[1], FRAME_SIZE[0])


def test_other_kinds_of_model_get_one_line_saying_what_livevis_expected(tmp_path, capsys, monkeypatch, frame_file):
    from tests.conftest import use_module

    use_module(tmp_path, monkeypatch, "pair", TWO_OUTPUTS)
    cases = {
        "r3d_18": "is a video model",
        "raft_small": "is an optical flow model",
        "pair:build": "the model outputs tuple of 2",
    }
    for name, said in cases.items():
        code = main(["render", str(frame_file[0]), "--model", name, "--weights", "none", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and said in err and "livevis shows models" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("name", "task", "layer"),
    [("digits_detector", "detect", "backbone.fpn:0"), ("digits_segmenter", "segment", "classifier.0.2")],
)
def test_the_digit_scene_models_are_in_the_zoo_by_name(name, task, layer):
    from livevis.models import Engine

    engine = Engine.load(name, weights="none", device="cpu")
    assert engine.task == task and engine.whole_frame and engine.layer().name == layer
    assert engine.class_names[0] == "__background__" and engine.class_names[1:] == [str(d) for d in range(10)]


def test_the_explained_box_is_followed_from_frame_to_frame(tmp_path, frame_file):
    """A box picked on one frame is found on the next, shifted one, as the detection of its label that overlaps
    it most (IoU computed here by hand), and outlined there."""
    from livevis.models import Engine, ViewOptions, Visualizer

    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    model = torchvision_model(name)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[1] += 8.0
    torch.save(model.state_dict(), tmp_path / "w.pt")
    engine = Engine.load(name, tmp_path / "w.pt", device="cpu")
    frame = frame_file[1]
    shifted = np.ascontiguousarray(np.roll(frame, 6, axis=1))
    options = ViewOptions(views=("backprop", "detections"), backprop="eigencam")  # as the window orders them
    visualizer = Visualizer(engine, options)
    first = visualizer.process(frame, options)
    picked = first.values["boxes"][7]
    target = (*map(float, picked), float(first.values["labels"][7]))
    later = visualizer.process(shifted, options.with_(box_target=target))
    boxes, labels = later.values["boxes"], later.values["labels"]
    x0, y0 = np.maximum(boxes[:, 0], picked[0]), np.maximum(boxes[:, 1], picked[1])
    x1, y1 = np.minimum(boxes[:, 2], picked[2]), np.minimum(boxes[:, 3], picked[3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / (areas + (picked[2] - picked[0]) * (picked[3] - picked[1]) - inter)
    iou[labels != target[4]] = -1
    assert iou.max() > 0.3
    assert later.values["explained_index"] == int(iou.argmax())
    np.testing.assert_allclose(later.values["explained_box"], boxes[iou.argmax()], atol=1e-4)
    assert later.values["selected_box"] == int(iou.argmax())


def test_the_trained_digit_detector_finds_the_digits_of_a_held_out_scene(tmp_path, capsys):
    """Trained weights on a real photo: the boxes render saves are those of the detector's own forward, and the
    confident ones name digits drawn on the scene (8, 7 and 2 among them)."""
    import cv2

    from livevis.assets import SAMPLES_DIR
    from livevis.models.zoo.digit_scenes import digits_detector

    scene = SAMPLES_DIR / "digits_china.jpg"
    out = tmp_path / "out"
    args = ["render", scene, "--model", "digits_detector", "--device", "cpu", "--out", out, "--save-activations"]
    assert main([str(a) for a in [*args, "--backprop", "eigencam", "--json"]]) == 0
    about = json.loads(capsys.readouterr().out)
    saved = np.load(out / "activations.npz")
    frame = cv2.cvtColor(cv2.imread(str(scene)), cv2.COLOR_BGR2RGB)
    with torch.no_grad():
        expected = digits_detector()([torch.from_numpy(frame).permute(2, 0, 1).float() / 255.0])[0]
    np.testing.assert_allclose(saved["boxes"], expected["boxes"].numpy(), rtol=1e-5, atol=1e-3)
    confident = {int(label) - 1 for label, score in zip(saved["labels"], saved["scores"], strict=True) if score > 0.9}
    assert {8, 7, 2} <= confident
    assert about["explained"]["index"] == 0 and saved["eigencam"].max() > 0


def test_a_checkpoint_saved_with_frozen_batch_norms_loads(tmp_path):
    """torchvision's trained detectors are saved from frozen batch norms, which keep no `num_batches_tracked`;
    livevis builds plain ones (nothing downloaded), and the file loads all the same, every tensor in place."""
    from livevis.models.zoo import get_spec
    from livevis.models.zoo.weights import load_weights

    spec = get_spec("fasterrcnn_mobilenet_v3_large_320_fpn")
    saved = {k: v + 1 for k, v in torchvision_model(spec.name).state_dict().items() if "num_batches" not in k}
    torch.save(saved, tmp_path / "frozen.pth")
    model = spec.build()
    load_weights(model, spec, tmp_path / "frozen.pth")
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())
