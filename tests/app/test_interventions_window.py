"""Interventions in the window (offscreen): keys that switch the selected channel off and scale it, the edits
pane with undo and the comparison, cells and concepts taken out, the impact pane, edits kept by snapshots,
recordings and a model loaded again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt

from livevis.models.concepts.edit import ConceptEdit
from livevis.models.interventions import UnitEdit
from tests.app.conftest import TIMEOUT_MS, wait_result


def edited_channels(result) -> set:
    return {(e.layer, c) for e in result.options.edits if isinstance(e, UnitEdit) for c in e.channels}


def test_zero_switches_the_selected_channel_off_and_the_predictions_compare(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.channel = 7
    qtbot.keyClick(window, Qt.Key.Key_0)
    result = wait_result(
        qtbot, window, lambda r: ("features.10", 7) in edited_channels(r) and "top5_before" in r.views.values
    )
    assert window.live.is_open("edits") and "1 in force" in window.live.panes["edits"].title_text()
    grid = window.live.panes["grid"].grid
    qtbot.waitUntil(lambda: grid.marked() == {7}, timeout=TIMEOUT_MS)
    before = window.live.panes["predictions"].view.before()
    assert len(before) == 5 and before == result.views.values["top5_before"]
    qtbot.keyClick(window, Qt.Key.Key_Plus)  # another edit on the same channel: scaled as well
    wait_result(qtbot, window, lambda r: any(e.mode == "scale" for e in r.options.edits))
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the last
    qtbot.keyClick(window, Qt.Key.Key_0)  # and the first: back on
    result = wait_result(qtbot, window, lambda r: not r.options.edits)
    assert "top5_before" not in result.views.values
    qtbot.waitUntil(lambda: grid.marked() == set(), timeout=TIMEOUT_MS)


def test_the_edits_pane_adds_a_list_of_channels_and_compares_on_request(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    pane = window.live.panes["edits"]
    pane.mode.setCurrentText("scale by")
    pane.factor.setValue(0.25)
    pane.channels.setText("0-63")
    pane.add.click()
    result = wait_result(qtbot, window, lambda r: len(r.options.edits) == 1)
    (edit,) = result.options.edits
    assert (edit.layer, edit.channels, edit.mode, edit.factor) == ("features.10", tuple(range(64)), "scale", 0.25)
    assert pane.listed.count() == 1 and "0-63 x 0.25" in pane.listed.item(0).text()
    pane.compare.setChecked(False)
    result = wait_result(qtbot, window, lambda r: not r.options.compare)
    assert "top5_before" not in result.views.values, "without the comparison the network runs once"
    pane.channels.setText("300")
    pane.add.click()
    assert "out of range" in pane.said.text() and len(window.state.edits) == 1


def test_two_clicks_on_the_frame_switch_a_rectangle_of_cells_off(qtbot, make_window, video):
    window = make_window(video)
    result = wait_result(qtbot, window)
    pane = window.live.panes["edits"]
    pane.rectangle.setChecked(True)
    crop = result.views.crop
    cell = crop.w / 13  # conv5: 13 x 13 cells over the network's square
    clicked = window.live.panes["input"].frame_clicked  # as a click on the frame in the input pane
    clicked.emit(crop.x + 2.5 * cell, crop.y + 3.5 * cell)
    clicked.emit(crop.x + 6.5 * cell, crop.y + 8.5 * cell)
    result = wait_result(qtbot, window, lambda r: len(r.options.edits) == 1)
    (edit,) = result.options.edits
    assert edit.cells == (3, 2, 9, 7) and edit.channels == tuple(range(256)) and not pane.rectangle.isChecked()


def test_a_concept_picked_in_the_legend_is_switched_off(qtbot, make_window, video):
    window = make_window(video)
    window.state.concepts = True
    pane = window.live.panes["concepts"]
    qtbot.waitUntil(lambda: len(pane.legend.rows()) == 5, timeout=TIMEOUT_MS)
    pane.legend.concept_clicked.emit(1)
    pane.switch_off.click()
    result = wait_result(qtbot, window, lambda r: any(isinstance(e, ConceptEdit) for e in r.options.edits))
    (edit,) = result.options.edits
    assert edit.layer == "features.10" and len(edit.concepts) == 5 and len(edit.concepts[0]) == 256
    assert result.views.values["top5_before"] != [p.probability for p in result.views.values["top5"]]


def test_the_impact_pane_ranks_the_channels_and_a_click_switches_one_off(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    window.live.set_open("impact", True)
    result = wait_result(qtbot, window, lambda r: "impact" in r.views.values)
    pane = window.live.panes["impact"]
    impact = result.views.values["impact"]
    qtbot.waitUntil(lambda: pane.table.rowCount() == 40, timeout=TIMEOUT_MS)
    first = impact.ranked()[0]
    assert pane.table.item(0, 0).text() == str(first) and pane.table.item(0, 2).text() != ""
    assert pane.table.item(25, 2).text() == "", "only the strongest 20 are measured"
    pane.table.cellClicked.emit(0, 0)
    wait_result(qtbot, window, lambda r: ("features.10", first) in edited_channels(r))


def test_snapshots_and_recordings_keep_the_edits(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.edits = (UnitEdit("features.10", (3, 4)),)
    wait_result(qtbot, window, lambda r: bool(r.options.edits))
    with qtbot.waitSignal(window.worker.snapshot_saved, timeout=TIMEOUT_MS) as saved:
        window.snapshot()
    about = json.loads((Path(saved.args[0]) / "snapshot.json").read_text())
    assert about["edits"] == ["features.10: 3-4 off"]
    assert {"probs", "probs_edited"} <= set(np.load(Path(saved.args[0]) / "activations.npz").files)
    window.recording.toggle()
    first = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > first + 3)
    window.state.edits = ()
    wait_result(qtbot, window, lambda r: not r.options.edits and r.sequence > first + 6)
    window.recording.toggle()
    qtbot.waitUntil(lambda: window.recording.last_folder is not None, timeout=TIMEOUT_MS)
    kept = json.loads((Path(window.recording.last_folder) / "edits.json").read_text())
    assert kept[0] == {"from_frame": 0, "edits": ["features.10: 3-4 off"]} and kept[-1]["edits"] == []


def test_edits_survive_a_model_loaded_again_and_are_dropped_where_their_layer_is_gone(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.edits = (UnitEdit("features.10", (3,)), UnitEdit("features.3", (100,)))
    wait_result(qtbot, window, lambda r: len(r.options.edits) == 2)
    window.loader.reload(weights="none")  # the same model again
    qtbot.waitUntil(lambda: window.loader.current == "alexnet" and not window.loader.loading, timeout=TIMEOUT_MS)
    wait_result(qtbot, window, lambda r: len(r.options.edits) == 2)
    window.model_menu.choose("lenet")
    qtbot.waitUntil(lambda: window.model is not None and window.model.name == "lenet", timeout=TIMEOUT_MS)
    assert window.state.edits == ()
    notices = window.notice.text()
    assert "edits dropped" in notices and "lenet has no layer features.10" in notices
