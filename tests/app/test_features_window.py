"""The features pane in the window (offscreen): features learnt on a folder through the job runner, the frame's
most active ones listed and drawn, a click on one shows where it fires and its crops, and switching it off edits
the forward (the predictions compare the network with and without it)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import Qt

from livevis.models.features import Recipe, read_features
from tests.app.conftest import TIMEOUT_MS, wait_result


def _photo_folder(folder: Path, photos) -> Path:
    folder.mkdir()
    for name, image in photos.items():
        h, w = image.shape[:2]
        for suffix, picture in (("", image), ("-crop", image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4])):
            cv2.imwrite(str(folder / f"{name}{suffix}.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return folder


def features_shown(result) -> bool:
    return "feature_top" in result.views.values and len(result.views.values["feature_top"]) > 0


def test_features_learnt_in_the_window_are_drawn_picked_and_switched_off(
    qtbot, make_window, video, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    folder = _photo_folder(tmp_path / "photos", photos)
    window = make_window(video)
    wait_result(qtbot, window)
    pane = window.live.panes["features"]
    file_menu = {a.text() for a in window.menuBar().actions()[0].menu().actions()}
    assert {"Learn features...", "Open features..."} <= file_menu
    assert not pane.active, "no features file: the view is not asked for"
    job = pane.learn_features(str(folder), Recipe(width=1, k=8, epochs=2, batch_size=256), "features.10")
    assert job is not None
    progress = []
    job.progressed.connect(lambda what, done, total: progress.append(what))
    with qtbot.waitSignal(job.ended, timeout=120_000):
        pass
    assert any("epoch 2/2" in what for what in progress), progress
    file = window.state.features
    assert file.endswith(".safetensors") and read_features(file).layer == "features.10"
    window.state.update(layer="features.10")
    assert window.live.is_open("features"), "features to show open the pane"
    result = wait_result(qtbot, window, features_shown, timeout=60_000)
    values = result.views.values
    assert values["feature_layer"] == "features.10"
    assert result.views.images["features"].shape == result.views.images["overlay"].shape
    qtbot.waitUntil(lambda: pane.list.count() == len(values["feature_top"]), timeout=TIMEOUT_MS)
    strengths = values["feature_strength"]
    assert np.all(np.diff(strengths) <= 0), "strongest first"
    pane.list.setCurrentRow(0)
    picked = pane.picked
    assert picked == int(values["feature_top"][0])
    qtbot.waitUntil(lambda: pane.where.image_array() is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: pane.crops.image_array() is not None, timeout=60_000)
    qtbot.mouseClick(pane.buttons[0], Qt.MouseButton.LeftButton)
    assert window.state.edits and window.state.edits[-1].features == (picked,)
    edited = wait_result(qtbot, window, lambda r: bool(r.options.edits) and "top5_unedited" in r.views.values)
    before = {p.index: p.probability for p in edited.views.values["top5_unedited"]}
    after = {p.index: p.probability for p in edited.views.values["top5"]}
    assert before != after, "switching the strongest feature off changes the predictions"


def test_the_learn_dialog_starts_the_run_it_was_given(qtbot, make_window, video, photos, tmp_path, monkeypatch):
    """File > Learn features...: the dialog's folder, layer and recipe are what the job learns with."""
    import json

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from livevis.app.panes.features import LearnFeaturesDialog

    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    folder = _photo_folder(tmp_path / "photos", photos)
    window = make_window(video)
    wait_result(qtbot, window)
    pane = window.live.panes["features"]
    filled = []

    def fill_in() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, LearnFeaturesDialog):
            QTimer.singleShot(20, fill_in)
            return
        assert dialog.views.currentIndex() == 2 and dialog.epochs.value() == Recipe.epochs  # the defaults
        dialog.folder.setText(str(folder))
        dialog.layer.setCurrentText("features.10")
        dialog.width_.setValue(1)
        dialog.k.setValue(8)
        dialog.epochs.setValue(1)
        dialog.views.setCurrentIndex(1)
        filled.append(True)
        dialog.accept()

    QTimer.singleShot(0, fill_in)
    job = pane.learn_features()
    assert filled and job is not None
    with qtbot.waitSignal(job.ended, timeout=120_000):
        pass
    sae = read_features(window.state.features)
    recipe = json.loads(sae.meta["recipe"])
    assert sae.layer == "features.10" and sae.k == 8 and sae.features == sae.channels  # 1x
    assert recipe["epochs"] == 1 and recipe["views"] == 2
    assert sae.meta["folder"] == str(folder.resolve())
