"""Recording in the window (r), and a whole video rendered to videos on the command line."""

from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import Qt

from livevis.app.cli import main
from livevis.app.live.recording import Recorder
from tests.app.conftest import TIMEOUT_MS, wait_result


def _frames_in(path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    count, size = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, (frame.shape[1], frame.shape[0])
    capture.release()
    return count, size


def test_r_records_what_is_shown_until_pressed_again(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.backprop = "grad"
    first = wait_result(qtbot, window, lambda r: "backprop" in r.views.images).sequence
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.recording.recording and window.actions_by_name["record"].isChecked()
    wait_result(qtbot, window, lambda r: r.sequence > first + 12)
    assert "REC 0:" in window.status.rate.text()
    with qtbot.waitSignal(window.recording.recorder.finished_recording, timeout=TIMEOUT_MS) as done:
        qtbot.keyClick(window, Qt.Key.Key_R)
    folder, frames = done.args
    assert set(frames) == {"overlay", "grid", "backprop"} and min(frames.values()) >= 10
    shown = {"overlay": window.last_result.views.images["overlay"], "grid": window.last_result.views.images["grid"]}
    for name, count in frames.items():
        played, size = _frames_in(f"{folder}/{name}.mp4")
        assert played == count, f"{name}: {played} frames play back, {count} were written"
        if name in shown:
            height, width = shown[name].shape[:2]
            assert abs(size[0] - width) <= 1 and abs(size[1] - height) <= 1
    assert not window.recording.recording and not window.actions_by_name["record"].isChecked()
    assert folder.startswith(str(tmp_path / "snapshots"))


def test_render_all_frames_writes_overlay_and_grid_videos(tmp_path, capsys, pan_video):
    code = main(["render", str(pan_video), "--all-frames", "--weights", "none", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    for name in ("overlay", "grid"):
        played, size = _frames_in(tmp_path / "out" / f"{name}.mp4")
        assert played == 24
    assert _frames_in(tmp_path / "out" / "overlay.mp4")[1] == (320, 240)


def test_a_recording_that_cannot_be_written_is_reported_and_the_app_goes_on(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the recording folder would go")
    window.settings.set("snapshot_dir", str(blocker))
    with qtbot.waitSignal(window.worker.result_ready, timeout=TIMEOUT_MS):
        pass
    window.recording.toggle()
    qtbot.waitUntil(lambda: window.recording.recorder is None, timeout=TIMEOUT_MS)
    assert "recording stopped" in window.statusBar().currentMessage()
    assert "cannot create the folder" in window.statusBar().currentMessage()
    assert not window.actions_by_name["record"].isChecked()
    before = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > before)


def test_a_recording_started_within_the_same_second_as_the_last_gets_a_folder_of_its_own(qtbot, tmp_path):
    folder = tmp_path / "livevis-recording-20250101-120000"  # both named to the same second
    frame = np.full((64, 96, 3), 128, np.uint8)
    written = []
    for count in (5, 3):
        recorder = Recorder(folder, 10.0)
        with qtbot.waitSignal(recorder.finished_recording, timeout=TIMEOUT_MS) as done:
            recorder.start()
            for _ in range(count):
                recorder.offer({"grid": frame})
            recorder.stop()
        recorder.wait()
        written.append(done.args[0])
    assert written == [str(folder), f"{folder}-2"]
    assert _frames_in(f"{written[0]}/grid.mp4")[0] == 5, "the first recording is kept whole"
    assert _frames_in(f"{written[1]}/grid.mp4")[0] == 3
