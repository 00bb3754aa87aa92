"""The concepts pane in the window (offscreen): on and off with X, K from the spin box and Shift+X, a tile
click selects its channel, a layer without maps is said in the pane, and concepts fitted on a mined folder."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QPoint, Qt

from livevis.app.panes import concepts as concepts_pane
from livevis.models.concepts import images
from tests.app.conftest import TIMEOUT_MS, wait_result


def concepts_shown(result, k: int | None = None) -> bool:
    summary = result.views.values.get("concepts_summary")
    return summary is not None and not summary.error and (k is None or len(summary.concepts) == k)


def test_x_shows_the_concepts_which_follow_the_frames_and_k_comes_from_the_spin_box(qtbot, make_window, video):
    window = make_window(video)
    result = wait_result(qtbot, window)
    pane = window.live.panes["concepts"]
    assert "concepts" not in result.options.views and not window.live.is_open("concepts"), "off: not computed"
    qtbot.keyClick(window, Qt.Key.Key_X)
    first = wait_result(qtbot, window, lambda r: concepts_shown(r, 5))
    assert window.live.is_open("concepts") and window.actions_by_name["concepts"].isChecked()
    assert first.views.images["concepts"].shape == first.views.images["overlay"].shape
    qtbot.waitUntil(lambda: len(pane.legend.rows()) == 5, timeout=TIMEOUT_MS)
    # the segmentation has room of its own: at least a third of the pane's shorter side, beside or above the legend
    shown = pane.image.image_rect()
    assert min(shown.width(), shown.height()) >= min(pane.width(), pane.height()) / 3, (shown, pane.size())
    later = wait_result(qtbot, window, lambda r: r.sequence > first.sequence + 3 and concepts_shown(r))
    assert not np.array_equal(first.views.images["concepts"], later.views.images["concepts"]), "it follows the video"
    assert [c.colour for c in later.views.values["concepts_summary"].concepts] == [0, 1, 2, 3, 4]
    qtbot.keyClick(window, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)
    wait_result(qtbot, window, lambda r: concepts_shown(r, 6))
    assert pane.count.value() == 6
    pane.count.setValue(3)
    wait_result(qtbot, window, lambda r: concepts_shown(r, 3))
    qtbot.waitUntil(lambda: len(pane.legend.rows()) == 3, timeout=TIMEOUT_MS)
    assert window.state.concept_count == 3
    qtbot.keyClick(window, Qt.Key.Key_X)
    wait_result(qtbot, window, lambda r: "concepts" not in r.options.views)
    assert not window.live.is_open("concepts")


def test_clicking_a_tile_in_the_legend_selects_its_channel(qtbot, make_window, video):
    window = make_window(video)
    window.state.concepts = True
    pane = window.live.panes["concepts"]
    qtbot.waitUntil(lambda: len(pane.legend.rows()) == 5, timeout=TIMEOUT_MS)
    legend = pane.legend
    channel = legend.rows()[1].tiles[2][0]
    centre = legend.tile_rect(1, 2).center()
    pane.legend.parentWidget().parentWidget().ensureWidgetVisible(legend, 0, 0)
    qtbot.mouseClick(legend, Qt.MouseButton.LeftButton, pos=QPoint(round(centre.x()), round(centre.y())))
    assert window.state.channel == channel
    wait_result(qtbot, window, lambda r: r.views.channel == channel)


def test_a_layer_without_maps_is_said_in_the_pane_and_the_rest_goes_on(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.update(concepts=True, layer="classifier.4", channel=0)
    result = wait_result(
        qtbot, window, lambda r: r.views.layer.path == "classifier.4" and r.views.images["grid"].size > 0
    )
    pane = window.live.panes["concepts"]
    qtbot.waitUntil(lambda: "spatial maps" in pane.message.text(), timeout=TIMEOUT_MS)
    assert "concepts" not in result.views.images
    window.state.update(layer="features.10")
    wait_result(qtbot, window, lambda r: concepts_shown(r))
    qtbot.waitUntil(lambda: pane.message.text() == "", timeout=TIMEOUT_MS)


def _photo_folder(folder: Path, photos) -> Path:
    folder.mkdir()
    for name, image in photos.items():
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


def test_concepts_fitted_on_a_mined_folder_are_placed_on_each_frame(
    qtbot, make_window, video, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(concepts_pane, "concept_image", functools.partial(images.concept_image, steps=6))
    folder = _photo_folder(tmp_path / "photos", photos)
    window = make_window(video)
    wait_result(qtbot, window)
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        window.live.panes["unit"].controller.mine(str(folder))
    with qtbot.waitSignal(started.args[0].ended, timeout=60_000):
        pass
    window.state.update(concepts=True, concept_count=3)
    pane = window.live.panes["concepts"]
    qtbot.waitUntil(lambda: pane.source.findText(str(folder)) > 0, timeout=TIMEOUT_MS)
    pane.source.setCurrentText(str(folder))
    pane.source.textActivated.emit(str(folder))
    qtbot.waitUntil(lambda: "Fit" in pane.message.text(), timeout=TIMEOUT_MS)
    assert pane.fit.isVisible() and window.state.concept_set == ""
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        qtbot.mouseClick(pane.fit, Qt.MouseButton.LeftButton)
    fitting = started.args[0]
    assert fitting.title.startswith("fitting 3 concepts of conv5")
    with qtbot.waitSignal(fitting.ended, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: window.state.concept_set != "", timeout=TIMEOUT_MS)
    placed = wait_result(qtbot, window, lambda r: r.options["concept_set"] != "" and concepts_shown(r, 3))
    summary = placed.views.values["concepts_summary"]
    assert summary.source == f"fitted on {folder}" and "top channels and crops" in summary.note
    qtbot.waitUntil(lambda: all(row.crops is not None for row in pane.legend.rows()), timeout=TIMEOUT_MS)
    fixed = placed.views.values["concept_channels"]
    later = wait_result(qtbot, window, lambda r: r.sequence > placed.sequence + 2 and concepts_shown(r, 3))
    ratio = later.views.values["concept_channels"] / np.where(fixed > 0, fixed, 1)
    np.testing.assert_allclose(ratio[fixed > 0], 1.0, rtol=1e-5, err_msg="the concepts stay what they are")
    # a concept picked: its top crops, then an image optimised along it
    qtbot.mouseClick(pane.legend, Qt.MouseButton.LeftButton, pos=QPoint(15, pane.legend.ROW // 2))
    qtbot.waitUntil(lambda: pane.crops.image_array() is not None, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.runner.job_started, timeout=TIMEOUT_MS) as started:
        qtbot.mouseClick(pane.optimise, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(started.args[0].ended, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: pane.optimised.image_array() is not None, timeout=TIMEOUT_MS)
    # another layer: not fitted there, so each frame's own concepts again, and the pane says so
    window.state.update(layer="features.8", channel=0)
    qtbot.waitUntil(lambda: window.state.concept_set == "" and "Fit" in pane.message.text(), timeout=TIMEOUT_MS)


def test_the_number_of_concepts_persists_and_a_bad_stored_one_falls_back(qtbot, make_window, video, tmp_path):
    from PyQt6.QtCore import QSettings

    from livevis.app.window.settings import SettingsStore

    window = make_window(video)
    wait_result(qtbot, window)
    window.live.panes["concepts"].count.setValue(7)
    window.close()
    stored = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    assert int(stored.value("concept_count")) == 7
    assert SettingsStore(tmp_path / "settings0.ini").restored_state().concept_count == 7
    stored.setValue("concept_count", 40)
    stored.sync()
    restored = SettingsStore(tmp_path / "settings0.ini")
    assert restored.restored_state().concept_count == 5 and restored.reset == ["concept_count (was 40)"]


def test_r_records_the_concepts_pane_while_it_is_on(qtbot, make_window, video):
    window = make_window(video)
    window.state.concepts = True
    first = wait_result(qtbot, window, lambda r: concepts_shown(r)).sequence
    qtbot.keyClick(window, Qt.Key.Key_R)
    wait_result(qtbot, window, lambda r: r.sequence > first + 8)
    with qtbot.waitSignal(window.recording.recorder.finished_recording, timeout=TIMEOUT_MS) as done:
        qtbot.keyClick(window, Qt.Key.Key_R)
    folder, frames = done.args
    assert frames["concepts"] >= 5 and Path(folder, "concepts.mp4").is_file()
