"""Explanations for detectors and segmenters, each checked against an independent computation: the targets
against hand loops, Grad-CAM against `torch.autograd.grad` of a hand-built score at a hook of the test's
own, EigenCAM against numpy's SVD."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from torchvision.models import detection, segmentation
from torchvision.ops import box_iou

from livevis.models.attribution import detection_cams as cams
from livevis.models.errors import InputError, LayerNotFoundError, OptionError

LEVEL = "backbone.fpn:0"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.resize(data.astronaut(), (160, 120), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def detector() -> torch.nn.Module:
    torch.manual_seed(0)
    model = detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, box_score_thresh=0.0)
    return model.eval()


@pytest.fixture(scope="module")
def segmenter() -> torch.nn.Module:
    torch.manual_seed(0)
    return segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).eval()


@pytest.fixture(scope="module")
def image(photo) -> torch.Tensor:
    return torch.from_numpy(photo).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def batch(photo) -> torch.Tensor:
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return ((torch.from_numpy(photo).float() / 255 - mean) / std).permute(2, 0, 1)[None]


def _hooked_forward(model, run, module, key=None):
    """A plain forward with autograd on throughout and the module's output kept by a hook of the test's own."""
    kept = {}

    def hook(_module, _inputs, output):
        kept["value"] = output if key is None else output[key]

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            output = run()
    finally:
        handle.remove()
    return output, kept["value"]


def _hand_box_score(out, target_box, label, threshold=0.5, same_label_only=True):
    """FasterRCNNBoxScoreTarget's rule box by box: (score tensor or None, iou, index)."""
    target = torch.as_tensor(target_box, dtype=torch.float32).reshape(1, 4)
    best, best_iou = None, -1.0
    for i in range(len(out["boxes"])):
        if same_label_only and int(out["labels"][i]) != label:
            continue
        iou = box_iou(target, out["boxes"][i : i + 1])[0, 0]
        if float(iou.detach()) > best_iou:
            best, best_iou = i, float(iou.detach())
    if best is None or best_iou <= threshold or int(out["labels"][best]) != label:
        return None, max(best_iou, 0.0), None
    return box_iou(target, out["boxes"][best : best + 1])[0, 0] + out["scores"][best], best_iou, best


@pytest.fixture(scope="module")
def traced(detector, image):
    """One plain forward with autograd on: the detections with their graph, the FPN's levels and an early
    stage's output, kept by hooks of the test's own."""
    kept = {}
    handles = [
        detector.backbone.fpn.register_forward_hook(lambda _m, _i, output: kept.update(levels=output)),
        detector.backbone.body.get_submodule("4").register_forward_hook(
            lambda _m, _i, output: kept.update(stage=output)
        ),
    ]
    try:
        with torch.enable_grad():
            detections = detector([image.clone()])[0]
    finally:
        for handle in handles:
            handle.remove()
    return detections, kept["levels"], kept["stage"]


@pytest.fixture(scope="module")
def detections(traced):
    return traced[0]


def _shifted(box, right=0.08, down=-0.05):
    """The box moved by a share of its width and height, as from one frame to the next."""
    box = box.detach()
    dx, dy = right * float(box[2] - box[0]), down * float(box[3] - box[1])
    return box + torch.tensor([dx, dy, dx, dy])


def test_box_score_is_the_hand_loops_box_its_score_plus_iou(detections):
    assert len(detections["boxes"]) == 100 and detections["scores"].requires_grad
    for j in (0, 7, 42):
        target, label = _shifted(detections["boxes"][j]), int(detections["labels"][j])
        for same_label_only in (True, False):
            score, iou, index = cams.box_score([detections], target, label, same_label_only=same_label_only)
            expected, expected_iou, expected_index = _hand_box_score(detections, target, label, 0.5, same_label_only)
            assert index == expected_index
            assert iou == pytest.approx(expected_iou, abs=1e-6)
            if expected is not None:
                assert 0.5 < iou < 1.0
                assert float(score.detach()) == pytest.approx(float(expected.detach()), abs=1e-5)
                assert score.requires_grad


def test_box_score_takes_the_same_label_or_pytorch_grad_cams_overall_best():
    """A box of another class overlaps the target most: pytorch-grad-cam's rule loses the target, the
    same-label rule takes the other box of the target's class."""
    scores = torch.tensor([0.9, 0.4], requires_grad=True)
    out = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [1.0, 0, 11, 10]]),
        "labels": torch.tensor([3, 5]),
        "scores": scores,
    }
    score, iou, index = cams.box_score(out, [0.0, 0, 10, 10], 5)
    assert index == 1 and iou == pytest.approx(9 / 11) and float(score.detach()) == pytest.approx(0.4 + 9 / 11)
    (grad,) = torch.autograd.grad(score, scores)
    assert grad.tolist() == [0.0, 1.0]
    score, iou, index = cams.box_score(out, [0.0, 0, 10, 10], 5, same_label_only=False)
    assert index is None and iou == pytest.approx(1.0)
    (grad,) = torch.autograd.grad(score, scores)  # a lost box is a zero that still backpropagates
    assert float(score.detach()) == 0.0 and grad.tolist() == [0.0, 0.0]


def test_gradcam_of_a_box_is_autograd_of_the_hand_built_score(detector, image, traced):
    j = 3
    out, activation = traced[0], traced[1]["0"]
    target, label = _shifted(out["boxes"][j]), int(out["labels"][j])
    score, expected_iou, expected_index = _hand_box_score(out, target, label)
    assert expected_index is not None
    (gradient,) = torch.autograd.grad(score, activation, retain_graph=True)
    weights = gradient[0].mean(dim=(1, 2))
    expected = (weights[:, None, None] * activation[0].detach()).sum(0).clamp(min=0)

    explained = cams.explain_detection(detector, image, LEVEL, target, label, method="gradcam")
    assert explained.index == expected_index and explained.iou == pytest.approx(expected_iou, abs=1e-6)
    assert explained.score == pytest.approx(float(score.detach()), abs=1e-5)
    assert float(expected.max()) > 0 and not explained.cam.requires_grad
    torch.testing.assert_close(explained.cam, expected, rtol=1e-4, atol=1e-4 * float(expected.max()))
    torch.testing.assert_close(explained.detections["boxes"], out["boxes"].detach())
    assert all(not value.requires_grad for value in explained.detections.values())
    # the same map from the activation and its gradient
    torch.testing.assert_close(cams.gradcam_from(activation[0], gradient[0]), expected)


def test_gradcam_of_the_top_box_when_no_target_is_given(detector, image):
    with torch.inference_mode():  # as the live pipeline calls it
        explained = cams.explain_detection(detector, image, "backbone.body.16", method="gradcam")
    assert explained.index == 0 and explained.iou == pytest.approx(1.0)
    assert explained.cam.shape == (10, 14) and float(explained.cam.max()) > 0


def _numpy_eigencam(activation: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's get_2d_projection with its sign correction, in float64."""
    cells = np.nan_to_num(activation.astype(np.float64)).reshape(activation.shape[0], -1).T
    cells = cells - cells.mean(axis=0)
    _, _, vt = np.linalg.svd(cells, full_matrices=False)
    projection = cells @ vt[0]
    if abs(projection.min()) > abs(projection.max()):
        projection = -projection
    return projection.reshape(activation.shape[1:])


@pytest.mark.parametrize("small_gram", [cams.SMALL_GRAM, 0], ids=["gram", "iteration"])
def test_eigencam_is_numpys_first_principal_component(traced, small_gram, monkeypatch):
    """A layer of fewer cells than channels (an FPN level), one of more (an early stage), and noise with a
    NaN, its first components close; through the Gram matrices and through subspace iteration."""
    monkeypatch.setattr(cams, "SMALL_GRAM", small_gram)
    level, stage = traced[1]["0"], traced[2]
    noise = torch.randn(64, 12, 9, generator=torch.Generator().manual_seed(1))
    noise[5, 2, 3] = float("nan")
    for activation in (level[0].detach(), stage[0].detach(), noise):
        _, h, w = activation.shape
        expected = _numpy_eigencam(activation.numpy())
        got = cams.eigencam(activation)
        assert got.shape == (h, w) and got.dtype == torch.float32
        assert np.abs(got.numpy() - expected).max() <= 1e-4 * np.abs(expected).max()
    assert level.shape[2] * level.shape[3] < level.shape[1] and stage.shape[2] * stage.shape[3] > stage.shape[1]


def test_eigencam_explanation_is_the_layers_component_and_the_detections_a_plain_forwards(detector, image, traced):
    explained = cams.explain_detection(detector, image, "backbone.fpn:1", method="eigencam")
    torch.testing.assert_close(explained.cam, cams.eigencam(traced[1]["1"][0].detach()).clamp(min=0))
    torch.testing.assert_close(explained.detections["scores"], traced[0]["scores"].detach())
    # 120 x 160 resized to 320 x 426, padded to 320 x 448
    assert explained.covered == pytest.approx((1.0, 426 / 448))


def test_a_lost_box_explains_nothing(detector, image):
    explained = cams.explain_detection(detector, image, LEVEL, [0.0, 0.0, 4.0, 4.0], 1, method="gradcam")
    assert explained.index is None and explained.score == 0.0 and explained.iou < 0.5
    assert float(explained.cam.abs().max()) == 0.0


def test_the_selected_box_is_tracked_to_the_next_frame(detections):
    boxes, labels = detections["boxes"].detach(), detections["labels"]
    j = 5
    moved = _shifted(boxes[j], -0.1, 0.1)
    expected = max(
        (i for i in range(len(boxes)) if labels[i] == labels[j]),
        key=lambda i: float(box_iou(moved[None], boxes[i : i + 1])),
    )
    assert cams.track_box(moved, int(labels[j]), boxes, labels) == expected
    assert cams.track_box(boxes[j], int(labels[j]), boxes, labels) == j
    absent = int(labels.max()) + 1
    assert cams.track_box(boxes[j], absent, boxes, labels) is None
    assert cams.track_box([500.0, 500.0, 510.0, 510.0], int(labels[j]), boxes, labels) is None
    assert cams.track_box(boxes[j], int(labels[j]), boxes[:0], labels[:0]) is None


def test_segmentation_target_is_the_hand_sum_and_its_gradcam_autograds(segmenter, batch):
    output, activation = _hooked_forward(segmenter, lambda: segmenter(batch.clone()), segmenter.backbone, "high")
    out = output["out"]
    top = out[0].detach().argmax(0).numpy()
    logits = out[0].detach().numpy()
    class_index = int(np.bincount(top.ravel()).argmax())
    hand = sum(float(logits[class_index, y, x]) for y, x in zip(*np.nonzero(top == class_index), strict=True))
    score = cams.segmentation_class_score(out, class_index)
    assert float(score.detach()) == pytest.approx(hand, rel=1e-4)
    mask = torch.zeros(out.shape[2:], dtype=torch.bool)
    mask[10:20, 30:50] = True
    assert float(cams.segmentation_class_score(out, 2, mask).detach()) == pytest.approx(
        float(logits[2, 10:20, 30:50].sum()), rel=1e-4
    )

    (gradient,) = torch.autograd.grad(score, activation)
    weights = gradient[0].mean(dim=(1, 2))
    expected = (weights[:, None, None] * activation[0].detach()).sum(0).clamp(min=0)
    explained = cams.explain_segmentation(segmenter, batch, "backbone:high", method="gradcam")
    assert explained.class_index == class_index and explained.pixels == int((top == class_index).sum())
    assert explained.score == pytest.approx(hand, rel=1e-4)
    assert float(expected.max()) > 0
    torch.testing.assert_close(explained.cam, expected, rtol=1e-4, atol=1e-4 * float(expected.max()))

    eigen = cams.explain_segmentation(segmenter, batch, "backbone:low", 2, method="eigencam")
    _, low = _hooked_forward(segmenter, lambda: segmenter(batch.clone()), segmenter.backbone, "low")
    torch.testing.assert_close(eigen.cam, cams.eigencam(low[0].detach()).clamp(min=0))
    with pytest.raises(OptionError, match="out of range"):
        cams.segmentation_class_score(out, 21)


def test_cam_on_frame_puts_a_cell_where_the_padded_input_had_it():
    cam = torch.zeros(10, 14)
    cam[2, 12] = 1.0
    frame = cams.cam_on_frame(cam, (1.0, 426 / 448), (120, 160))
    assert frame.shape == (120, 160)
    y, x = divmod(int(frame.argmax()), 160)
    # cell (2, 12) of 14 columns over 448 padded pixels: its centre at 12.5 / 14 * 448 = 400 of 426 -> 150 of 160
    assert abs(y - 2.5 * 12) <= 1 and abs(x - 400 * 160 / 426) <= 1


def test_bad_layers_and_inputs_say_what_to_do(detector, image, segmenter, batch):
    with pytest.raises(LayerNotFoundError, match="backbone.fpn:0, backbone.fpn:1, backbone.fpn:pool"):
        cams.explain_detection(detector, image, "backbone.fpn")
    with pytest.raises(LayerNotFoundError, match="no layer"):
        cams.explain_detection(detector, image, "backbone.nope")
    with pytest.raises(LayerNotFoundError, match="leave out"):
        cams.explain_segmentation(segmenter, batch, "classifier:0")
    with pytest.raises(OptionError, match="eigencam, gradcam"):
        cams.explain_detection(detector, image, LEVEL, method="scorecam")
    with pytest.raises(InputError):
        cams.explain_detection(detector, image[None], LEVEL)
