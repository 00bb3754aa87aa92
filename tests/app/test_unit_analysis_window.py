"""The backprop pane and the unit probes in the window (offscreen)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, Qt

from tests.app.conftest import TIMEOUT_MS, wait_result


def test_b_and_n_cycle_the_backprop_pane_which_follows_the_frames(qtbot, make_window, video):
    window = make_window(video)
    result = wait_result(qtbot, window)
    assert "backprop" not in result.options.views and not window.live.is_open("backprop"), "off: not computed"
    assert window.state.backprop_view == "normblur", "a first launch draws backprop in a readable view"
    seen_modes = []
    for mode in ("grad", "deconv", "guided", "gradcam"):
        qtbot.keyClick(window, Qt.Key.Key_B)
        result = wait_result(
            qtbot, window, lambda r, m=mode: r.options["backprop"] == m and "backprop" in r.views.images
        )
        seen_modes.append(result.options["backprop"])
        assert window.live.is_open("backprop") and window.live.panes["backprop"].isVisible()
        assert result.views.images["backprop"].shape[:2] == result.views.images["overlay"].shape[:2]
    assert seen_modes == ["grad", "deconv", "guided", "gradcam"]
    assert "Grad-CAM of" in window.live.panes["backprop"].title_text()
    qtbot.keyClick(window, Qt.Key.Key_B)
    wait_result(qtbot, window, lambda r: r.options["backprop"] == "eigencam" and "backprop" in r.views.images)
    assert "EigenCAM" in window.live.panes["backprop"].title_text()
    qtbot.keyClick(window, Qt.Key.Key_B)  # after eigencam: off
    wait_result(qtbot, window, lambda r: r.options["backprop"] == "off" and "backprop" not in r.views.images)
    assert not window.live.is_open("backprop")
    qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.keyClick(window, Qt.Key.Key_N)
    first = wait_result(qtbot, window, lambda r: r.options["backprop_view"] == "raw" and "backprop" in r.views.images)
    later = wait_result(qtbot, window, lambda r: r.sequence > first.sequence + 2 and "backprop" in r.views.images)
    assert not np.array_equal(first.views.images["backprop"], later.views.images["backprop"]), "it follows the frame"
    assert "ReLU calls" in window.live.panes["backprop"].title_text()


def test_clicking_the_frame_lists_the_units_that_fire_there(qtbot, make_window, video):
    window = make_window(video)
    result = wait_result(qtbot, window)
    image = window.live.panes["input"].image
    crop = result.views.crop
    point = image.to_widget(crop.x + crop.w / 2, crop.y + crop.h / 2)
    with qtbot.waitSignal(window.worker.units_ranked, timeout=TIMEOUT_MS) as ranked:
        qtbot.mouseClick(image, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
    cell, units = ranked.args[0]
    assert cell == (6, 6) and len(units) == 10
    assert [v for _, v in units] == sorted((v for _, v in units), reverse=True)
    listed = window.live.panes["input"].units
    qtbot.waitUntil(listed.isVisible)
    assert listed.channels() == [c for c, _ in units]
    best = listed.item(0)
    qtbot.mouseClick(listed.viewport(), Qt.MouseButton.LeftButton, pos=listed.visualItemRect(best).center())
    wait_result(qtbot, window, lambda r: r.views.channel == units[0][0])


def test_clicking_a_prediction_picks_the_class_grad_cam_explains(qtbot, make_window, video):
    window = make_window(video)
    window.state.backprop = "gradcam"
    result = wait_result(qtbot, window, lambda r: "backprop_class" in r.views.values)
    assert result.views.values["backprop_class"] == result.views.values["top5"][0].index, "the top-1 by default"
    predictions = window.live.panes["predictions"].view
    qtbot.mouseClick(predictions, Qt.MouseButton.LeftButton, pos=QPoint(40, 26 + 2 * predictions.ROW_HEIGHT + 5))
    picked = window.state.class_index
    assert picked is not None
    later = wait_result(qtbot, window, lambda r: r.options.class_index == picked)
    assert later.views.values["backprop_class"] == picked


def test_optimise_runs_in_the_background_with_previews_and_is_cached(qtbot, make_window, video, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    window = make_window(video, model="lenet", weights="default")
    wait_result(qtbot, window)
    window.state.update(layer="conv2", channel=3)
    qtbot.waitUntil(
        lambda: not window.live.panes["unit"].controller.refresh_pending
    )  # the cache lookup for the new unit started
    unit = window.live.panes["unit"].view
    previews = []
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        qtbot.keyClick(window, Qt.Key.Key_D)
    job = started.args[0]
    assert job.title == "optimising conv2:3"
    assert window.live.is_open("unit") and unit.isVisible(), "d opens the unit pane, closed by default"
    job.partial.connect(previews.append)
    assert unit.cancel.isVisible() and not unit.optimise.isEnabled()
    live_before = window.last_result.sequence
    with qtbot.waitSignal(job.ended, timeout=120_000):
        pass
    assert previews and previews[-1].shape == (28, 28, 3), "previews on the way"
    optimised = unit.optimised.image_array()
    assert optimised is not None and optimised.shape == (28, 28, 3)
    assert window.last_result.sequence > live_before, "the live view went on meanwhile"
    assert unit.optimise.isEnabled() and unit.cancel.isHidden()
    window.state.channel = 4
    qtbot.waitUntil(lambda: unit.optimised.image_array() is None)
    window.state.channel = 3  # cached: shows without optimising again
    qtbot.waitUntil(lambda: unit.optimised.image_array() is not None, timeout=TIMEOUT_MS)
    assert np.array_equal(unit.optimised.image_array(), optimised)


def test_an_optimisation_is_cancelled_within_a_step(qtbot, make_window, video, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    window = make_window(video, model="lenet", weights="default")
    wait_result(qtbot, window)
    window.state.update(layer="conv2", channel=5)
    qtbot.waitUntil(lambda: not window.live.panes["unit"].controller.refresh_pending)
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        window.live.panes["unit"].controller.optimise()
    job = started.args[0]
    steps = []
    job.progressed.connect(
        lambda what, done, total: steps.append(done) or (done >= 3 and job.cancel()), Qt.ConnectionType.DirectConnection
    )
    with qtbot.waitSignal(job.cancelled, timeout=120_000):
        pass
    assert max(steps) <= 4, "stopped within a step of the cancel"
    qtbot.waitUntil(lambda: window.live.panes["unit"].view.optimise.isEnabled())


def test_mining_a_folder_fills_the_unit_pane_and_a_crop_opens_its_image(
    qtbot, make_window, video, tmp_path, monkeypatch
):
    import cv2

    from livevis.models.data.datasets import mnist_split

    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    digits = tmp_path / "digits"
    digits.mkdir()
    for i, image in enumerate(mnist_split()[1].images[:24]):
        cv2.imwrite(str(digits / f"digit{i:02d}.png"), image)
    window = make_window(video, model="lenet", weights="default")
    wait_result(qtbot, window)
    window.state.update(layer="conv2", channel=2)
    window.live.set_open("unit", True)  # View > Panes > Unit
    unit = window.live.panes["unit"].view
    qtbot.waitUntil(lambda: "no folder mined" in unit.atlas_note.text(), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        window.live.panes["unit"].controller.mine(str(digits))
    with qtbot.waitSignal(started.args[0].ended, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: unit.crops.image_array() is not None, timeout=60_000)
    assert unit.deconvs.image_array() is not None and "of 24 images" in unit.atlas_note.text()
    assert unit.chosen_folder() == str(digits)
    best = window.live.panes["unit"].controller._entries[0]
    crops = unit.crops
    qtbot.mouseClick(crops, Qt.MouseButton.LeftButton, pos=crops.to_widget(2, 2).toPoint())
    wait_result(qtbot, window, lambda r: r.source.startswith(best.path.name))
    assert window.state.channel == 2, "the unit stays selected"


def test_a_unit_look_up_superseded_by_the_next_selection_is_cancelled(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    window.live.set_open("unit", True)
    qtbot.waitUntil(window.units.view.isVisible, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.units.refresh_pending and not window.runner.running(), timeout=TIMEOUT_MS)
    submitted, cancelled = [], []
    window.runner.job_started.connect(submitted.append)
    window.runner.job_started.connect(lambda job: job.cancelled.connect(lambda: cancelled.append(job)))
    for channel in (1, 2, 3):  # three key presses faster than the look-ups they start
        with window.state.events.channel.blocked():
            window.state.channel = channel
        window.units.refresh()
    assert len(submitted) == 6, [job.title for job in submitted]
    qtbot.waitUntil(lambda: not window.runner.running(), timeout=TIMEOUT_MS)
    assert cancelled == submitted[:4], "each look-up for a unit no longer selected is cancelled"
    assert not any(job.cancel_requested for job in submitted[4:])
