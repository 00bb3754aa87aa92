"""Messages that tell the truth, once, without modal dialogs (the window fixture fails on any)."""

from __future__ import annotations

import os

from PyQt6.QtCore import Qt

from tests.app.conftest import TIMEOUT_MS, wait_result


def test_a_bad_weights_file_is_named_once_and_the_default_model_takes_over(qtbot, make_window, video, tmp_path):
    bad = tmp_path / "mine.pth"
    bad.write_bytes(b"not a weights file at all")
    window = make_window(video, model=None, weights=str(bad))
    wait_result(qtbot, window)
    text = window.notice.text()
    assert text.count("mine.pth") == 1 and "Loading the default model instead" in text
    assert "pass --weights PATH" not in text.splitlines()[0], "the first line is about the file the user gave"
    assert window.model is not None


def test_every_snapshot_press_writes_a_snapshot(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    saved = []
    window.worker.snapshot_saved.connect(saved.append)
    for _ in range(4):
        qtbot.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: len(saved) == 4, timeout=TIMEOUT_MS)
    assert len(set(saved)) == 4 and len(list((tmp_path / "snapshots").iterdir())) == 4


def test_a_named_pipe_as_the_source_is_refused_and_the_app_goes_on(qtbot, make_window, video, tmp_path):
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    window = make_window(video)
    before = wait_result(qtbot, window).sequence
    window.open_source(str(pipe))
    qtbot.waitUntil(lambda: "named pipe" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    wait_result(qtbot, window, lambda r: r.sequence > before)  # the video goes on


def test_freezing_says_that_nothing_is_processed(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window, lambda r: r.sequence > 3)
    assert "fps" in window.status.rate.text()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.status.rate.text().startswith("FROZEN: no frames processed")


def test_a_folder_that_disappears_while_shown_is_said_to_be_gone(qtbot, make_window, tmp_path, photos):
    import shutil

    import cv2

    folder = tmp_path / "holiday"
    folder.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photos["chelsea"], cv2.COLOR_RGB2BGR))
    window = make_window(folder)
    wait_result(qtbot, window)
    shutil.rmtree(folder)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.status.source.text().endswith("(gone)"), timeout=TIMEOUT_MS)
    assert "is gone" in window.statusBar().currentMessage()
