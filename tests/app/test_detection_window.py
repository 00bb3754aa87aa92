"""A detector live in the window: the whole frame in, its boxes drawn, a box picked with a click, the stats."""

from __future__ import annotations

import json

import numpy as np
import torch
from PyQt6.QtCore import QPointF

from tests.app.conftest import wait_result
from tests.models.test_detection import torchvision_model

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


def test_a_detector_on_a_video_draws_its_boxes_and_a_click_picks_one(qtbot, make_window, tmp_path, video):
    model = torchvision_model(NAME)
    with torch.no_grad():  # random scores sit near 1/91: lift one class over the trained threshold
        model.roi_heads.box_predictor.cls_score.bias[1] += 8.0
    weights = tmp_path / "detector.pt"
    torch.save(model.state_dict(), weights)
    window = make_window(video, model=NAME, weights=str(weights))
    result = wait_result(qtbot, window, lambda r: "detections" in r.views.images)
    pane = window.live.panes["detections"]
    assert window.model.task == "detect" and pane.fits_model
    qtbot.waitUntil(lambda: pane.isVisible())
    qtbot.waitUntil(lambda: window.worker.processed >= 3, timeout=60_000)
    result = window.last_result
    views = result.views
    assert views.frame.shape == (480, 640, 3) and views.crop.w == 640  # the whole frame, no centre crop
    with torch.no_grad():
        expected = model([torch.from_numpy(views.frame).permute(2, 0, 1).float() / 255.0])[0]
    np.testing.assert_allclose(views.values["boxes"], expected["boxes"].numpy(), rtol=1e-5, atol=1e-3)
    drawn = views.values["detections_drawn"]
    assert len(drawn) == int((expected["scores"] >= result.options["score_threshold"]).sum()) > 0
    # a click inside the first drawn box picks it
    box = views.values["boxes"][drawn[0]]
    pane.image.clicked.emit(float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)
    assert window.state.box_target is not None and window.state.box_target[4] == float(views.values["labels"][drawn[0]])
    stats = window.stats_dict()
    assert stats["model"] == NAME and stats["detections"] == len(window.last_result.views.values["boxes"])
    json.dumps(stats)
    pane._hovered(10.0, 10.0, QPointF(0, 0))  # no segmentation: nothing to say under the cursor


def test_a_segmenter_colours_its_classes_and_a_legend_click_picks_one(qtbot, make_window, tmp_path, video):
    from livevis.models.zoo.digit_scenes import digits_segmenter, normalise

    torch.manual_seed(0)
    model = digits_segmenter(weights=None).eval()
    torch.save(model.state_dict(), tmp_path / "segmenter.pt")
    window = make_window(video, model="digits_segmenter", weights=str(tmp_path / "segmenter.pt"))
    result = wait_result(qtbot, window, lambda r: "segmentation" in r.views.images)
    pane = window.live.panes["detections"]
    qtbot.waitUntil(lambda: pane.isVisible() and pane.legend.count() > 0)
    views = result.views
    with torch.no_grad():
        out = model(normalise(torch.from_numpy(views.frame).permute(2, 0, 1)[None].float() / 255.0))["out"][0]
    classes = views.values["segmentation_classes"]
    np.testing.assert_array_equal(classes, out.argmax(0).numpy())  # a 640 x 480 frame is the segmenter's size
    pane.legend.itemClicked.emit(pane.legend.item(pane.legend.count() - 1))
    picked = pane.legend.item(pane.legend.count() - 1).data(0x0100)
    assert window.state.class_index == picked
    pane.image.clicked.emit(100.0, 50.0)
    assert window.state.class_index == int(classes[50, 100])
