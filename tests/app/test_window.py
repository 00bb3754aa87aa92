"""The desktop app, offscreen: frames flow, selection and keys work, failures are shown, threads end."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt
from PyQt6.QtWidgets import QWidget

import livevis.app.live.capture
import livevis.app.sources.cameras
from tests.app.conftest import TIMEOUT_MS, wait_frozen, wait_result


def test_frames_from_a_video_reach_the_grid(qtbot, make_window, video):
    window = make_window(video)
    with qtbot.waitSignal(window.worker.result_ready, timeout=TIMEOUT_MS):
        pass
    result = wait_result(qtbot, window)
    assert result.views.layer.name == "conv5"
    assert window.live.panes["grid"].grid.image_array().shape == result.views.images["grid"].shape
    # once the worker knows the view's current size, frames come rendered to fit it
    view = window.live.panes["input"].image
    wait_result(qtbot, window, lambda r: r.options["frame_display_size"] == (view.width(), view.height()))
    shown = window.live.panes["input"].image.image_array()
    assert (
        shown.shape[0] <= window.live.panes["input"].image.height()
        and shown.shape[1] <= window.live.panes["input"].image.width()
    )
    assert shown.shape[1] / shown.shape[0] == pytest.approx(640 / 480, rel=0.02), "rendered to fit the view"
    # the grid is drawn at the size of its pane, its tiles filling it
    grid = window.live.panes["grid"].grid
    laid_out = wait_result(qtbot, window, lambda r: r.options.grid_size == grid.render_size())
    layout = laid_out.views.values["grid_layout"]
    width, height = grid.render_size()
    assert layout.width <= width and layout.height <= height
    tiles = layout.channels * layout.cell_h * layout.cell_w
    assert tiles >= 0.75 * width * height, (layout, width, height)
    qtbot.waitUntil(lambda: grid.image_array() is window.last_result.views.images["grid"])
    assert grid.image_rect().width() == pytest.approx(layout.width / grid.devicePixelRatioF()), "shown 1:1"
    first = result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > first + 3)
    assert len(window.live.panes["predictions"].view.rows()) == 5
    assert "UNTRAINED" in window.live.panes["predictions"].view._note
    assert window.slot.captured >= window.worker.processed > 3


def test_clicking_a_tile_selects_that_channel(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    geometry = window.live.panes["grid"].grid.geometry_
    x, y, w, h = geometry.tile_rect(37)
    grid = window.live.panes["grid"].grid
    point = grid.to_widget(x + w / 2, y + h / 2)
    qtbot.mouseClick(grid, Qt.MouseButton.LeftButton, pos=QPoint(round(point.x()), round(point.y())))
    result = wait_result(qtbot, window, lambda r: r.views.channel == 37)
    assert "channel 37" in window.live.panes["selected"].info.text()
    assert window.live.panes["selected"].tile.image_array().shape == (13, 13, 3)
    assert np.array_equal(window.live.panes["selected"].small.image_array(), result.views.images["channel_tile"])


def test_arrow_keys_move_the_channel_and_u_o_the_layer(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    cols = window.live.panes["grid"].grid.geometry_.cols
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_Down)
    wait_result(qtbot, window, lambda r: r.views.channel == 1 + cols)
    qtbot.keyClick(window, Qt.Key.Key_J)  # j = left
    wait_result(qtbot, window, lambda r: r.views.channel == cols)
    qtbot.keyClick(window, Qt.Key.Key_O)
    result = wait_result(qtbot, window, lambda r: r.views.layer.name == "relu5")
    assert result.views.channel == 0
    qtbot.keyClick(window, Qt.Key.Key_U)
    qtbot.keyClick(window, Qt.Key.Key_U)
    wait_result(qtbot, window, lambda r: r.views.layer.name == "relu4")
    assert window.live.panes["layers"].tree.currentItem().text(0).startswith("relu4")


def test_freeze_stops_updates_but_still_redraws_selection(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window, lambda r: r.sequence > 2)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.state.frozen
    wait_frozen(qtbot, window)
    frozen_sequence = window.last_result.sequence
    captured = window.slot.captured
    qtbot.waitUntil(lambda: window.slot.captured > captured + 5, timeout=TIMEOUT_MS)  # capture goes on
    assert window.last_result.sequence == frozen_sequence, "no new frame is shown while frozen"
    latencies = list(window.stats.latencies_ms)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    result = wait_result(qtbot, window, lambda r: r.views.channel == 1)
    assert result.sequence == frozen_sequence, "the frozen frame is redrawn for the new channel"
    assert list(window.stats.latencies_ms) == latencies, "a redraw is no new capture-to-display latency"
    qtbot.keyClick(window, Qt.Key.Key_F)
    wait_result(qtbot, window, lambda r: r.sequence > frozen_sequence)


def test_snapshot_writes_frame_grid_overlay_and_activations(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    with qtbot.waitSignal(window.worker.snapshot_saved, timeout=TIMEOUT_MS) as saved:
        qtbot.keyClick(window, Qt.Key.Key_S)
    folder = Path(saved.args[0])
    assert folder.parent == tmp_path / "snapshots"
    assert {"frame.png", "grid.png", "overlay.png", "channel_tile.png", "activations.npz"} <= {
        p.name for p in folder.iterdir()
    }
    saved_npz = np.load(folder / "activations.npz")
    assert saved_npz["activation"].shape == (256, 13, 13)
    assert str(folder) in window.statusBar().currentMessage()


def test_a_corrupt_file_is_reported_and_the_app_keeps_running(qtbot, make_window, tmp_path, photos):
    import cv2

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cv2.imwrite(str(folder / "b_cat.png"), cv2.cvtColor(photos["chelsea"], cv2.COLOR_RGB2BGR))
    window = make_window(folder)
    qtbot.waitUntil(lambda: "a_broken.jpg" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    result = wait_result(qtbot, window, lambda r: r.views.frame.shape == photos["chelsea"].shape)
    assert "b_cat.png" in result.source


def test_a_model_that_fails_to_load_leaves_the_previous_one(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(window.loader.failed, timeout=TIMEOUT_MS):
        window.loader.load("alexnet", str(bad), "cpu")
    assert window.model.name == "alexnet"
    assert "bad.pth" in window.notice.text() and window.notice.isVisible()
    before = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > before)


def test_a_weights_file_for_a_users_own_model_keeps_its_input_description(qtbot, make_window, video):
    from livevis.models.zoo.lenet import WEIGHTS_FILE

    own = {"input_size": 28, "mean": (0.1307,), "std": (0.3081,), "labels": None}
    window = make_window(video, model="livevis.models.zoo.lenet:LeNet5", custom=own)
    wait_result(qtbot, window)
    assert window.model.name == "livevis.models.zoo.lenet:LeNet5" and not window.model.trained
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.loader.reload(weights=str(WEIGHTS_FILE), device="cpu")
    assert window.model.trained and window.model.layers[0][2] == (1, 28, 28), "still a 1 x 28 x 28 input"
    # listed beside the registry's models, and chosen again as it was loaded (input and weights)
    assert window.controls.model.findText("livevis.models.zoo.lenet:LeNet5") >= 0
    assert "livevis.models.zoo.lenet:LeNet5" in [action.text() for action in window.model_menu.model_group.actions()]
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.model_menu.choose("lenet")  # the listed LeNet, bundled weights
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.model_menu.choose("livevis.models.zoo.lenet:LeNet5")
    assert window.model.name == "livevis.models.zoo.lenet:LeNet5" and window.model.trained
    assert window.controls.model.currentText() == "livevis.models.zoo.lenet:LeNet5"
    assert window.notice.isHidden()
    window.close()
    settings = QSettings(str(window.settings.file_name), QSettings.Format.IniFormat)
    assert not settings.value("model"), "the next start cannot load it without its description"


def test_a_first_model_that_fails_gives_way_to_the_default(qtbot, make_window, video):
    window = make_window(video, model="no_such_net")
    result = wait_result(qtbot, window)
    assert window.model is not None and window.model.name in ("alexnet", "efficientnet_lite0")
    assert result.views.values["top5"]
    assert "unknown model 'no_such_net'" in window.notice.text() and "default model instead" in window.notice.text()


def test_switching_model_keeps_running_and_resets_the_layer(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.loader.load("resnet18", "none", "cpu")
    result = wait_result(qtbot, window, lambda r: r.views.layer.path == "layer4")
    assert window.model.name == "resnet18"
    assert result.views.values["grid_layout"].channels == 512


def test_settings_persist_across_windows(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    window.state.update(colormap="viridis", channel=5)
    window.close()
    settings = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    assert settings.value("colormap") == "viridis" and int(settings.value("channel")) == 5
    assert settings.value("layer") == "features.10" and settings.value("model") == "alexnet"


def test_closing_joins_both_threads_within_two_seconds(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    start = time.perf_counter()
    window.close()
    assert time.perf_counter() - start < 2.0
    assert window.capture.isFinished() and window.worker.isFinished()


def test_help_overlay_lists_every_shortcut(qtbot, make_window, video):
    from livevis.app.window.actions import help_rows

    window = make_window(video)
    docks = [dock.geometry() for dock in window.live.docks.values()]
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.help_overlay.isVisible()
    assert window.help_overlay.parent() is window.tabs and window.help_overlay not in window.live.findChildren(QWidget)
    assert [dock.geometry() for dock in window.live.docks.values()] == docks, "it covers the panes, moves none"
    assert window.help_overlay.geometry() == window.tabs.rect()
    window.resize(window.width() - 100, window.height() - 50)
    qtbot.waitUntil(lambda: window.help_overlay.geometry() == window.tabs.rect())
    rows = window.help_overlay.shortcuts()
    assert rows == help_rows() and len(rows) > 30, "every key, the views' and the panes' included"
    assert ("B", "cycle the backprop pane: off, grad, deconv, guided, gradcam, eigencam") in rows
    assert ("Space, F", "freeze / unfreeze the frame") in rows


def test_without_a_camera_the_bundled_photos_are_shown(qtbot, make_window):
    from livevis.assets import sample_images

    window = make_window(None)
    result = wait_result(qtbot, window)
    assert result.source.startswith(sample_images()[0].name)
    assert "No camera found" in window.statusBar().currentMessage()
    window.sources.fill_camera_menu()
    qtbot.waitUntil(lambda: [a.text() for a in window.sources.camera_menu.actions()] == ["No camera found"])


def _serve_lenet_weights(tmp_path, monkeypatch):
    """Make the registry's LeNet download its weights from a file:// URL into an empty hub cache."""
    import hashlib
    from dataclasses import replace

    import livevis.models.zoo.registry as registry
    from livevis.models.zoo.lenet import WEIGHTS_FILE

    data = WEIGHTS_FILE.read_bytes()
    served = tmp_path / "server" / f"lenet-test-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    served.parent.mkdir()
    served.write_bytes(data)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = replace(registry.get_spec("lenet"), weights=registry.HubWeights(served.as_uri()))
    monkeypatch.setitem(registry._REGISTRY, "lenet", spec)
    return served


def test_a_download_shows_progress_and_the_model_arrives(qtbot, make_window, video, tmp_path, monkeypatch):
    served = _serve_lenet_weights(tmp_path, monkeypatch)
    window = make_window(video)
    wait_result(qtbot, window)
    progress, dialogs = [], []
    window.loader.download_progress.connect(lambda label, done, total: progress.append((done, total)))
    window.loader.download_progress.connect(lambda *_: dialogs.append(window.model_menu.download_dialog))
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.loader.load("lenet", "default", "cpu")
    assert progress and progress[-1] == (served.stat().st_size, served.stat().st_size)
    assert dialogs and all(dialog is not None for dialog in dialogs), "a progress dialog shows the download"
    assert window.model.name == "lenet" and window.model.trained
    assert window.model_menu.download_dialog is None, "the progress dialog closes when the model is ready"


def test_cancelling_a_download_keeps_the_previous_model(qtbot, make_window, video, tmp_path, monkeypatch):
    from PyQt6.QtCore import Qt as QtCore

    _serve_lenet_weights(tmp_path, monkeypatch)
    window = make_window(video)
    wait_result(qtbot, window)
    with qtbot.waitSignal(window.loader.failed, timeout=TIMEOUT_MS) as failed:
        job = window.loader.load("lenet", "default", "cpu")
        # cancel on the job's thread at the download's first report, as the dialog's Cancel button would
        job.progressed.connect(
            lambda what, *_: what.startswith("downloading") and window.loader.cancel_download(),
            QtCore.ConnectionType.DirectConnection,
        )
    assert "cancelled" in failed.args[0]
    assert window.model.name == "alexnet"
    assert not list((tmp_path / "torch" / "hub" / "checkpoints").iterdir()), "no partial file is left"
    assert window.model_menu.download_dialog is None


def test_embeddings_tab_computes_in_the_background_and_places_the_live_frame(
    qtbot, make_window, video, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    window = make_window(video)
    wait_result(qtbot, window)
    tab = window.embeddings
    window.tabs.setCurrentWidget(tab)
    tab.samples.setValue(300)
    tab.layers.setText("input,relu3")
    tab.start("digits")
    assert not tab.compute.isEnabled() and tab.cancel.isEnabled()
    qtbot.waitUntil(lambda: tab.run is not None, timeout=60_000)
    assert tab.plots.panel_count() == 2
    assert [layer.name for layer in tab.run.layers] == ["input", "relu3"]
    # the live view kept running while the embedding was computed
    before = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > before)
    # the live frame lands in the last map as a marker
    qtbot.waitUntil(lambda: tab.plots.marker_position(1) is not None, timeout=TIMEOUT_MS)
    assert tab.plots.marker_position(0) is None
    assert "sample 0: " in tab.plots.describe(0, 0)
    # the maps saved as one figure, in the background
    assert tab.save.isEnabled()
    tab.save_figure(tmp_path / "maps.png")
    qtbot.waitUntil(lambda: tab.saver is None, timeout=TIMEOUT_MS)
    assert tab.status.text() == f"figure saved to {tmp_path / 'maps.png'}"
    figure = cv2.imread(str(tmp_path / "maps.png"))
    assert figure is not None and figure.shape[1] > 600 and figure.std() > 20
    tab.save_figure(tmp_path / "maps.doc")
    qtbot.waitUntil(lambda: tab.saver is None, timeout=TIMEOUT_MS)
    assert "name it .png, .pdf or .svg" in tab.status.text()


def test_embeddings_can_be_cancelled_and_report_bad_input(qtbot, make_window, video, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    window = make_window(video)
    tab = window.embeddings
    tab.samples.setValue(1500)
    tab.start("digits")
    job = tab.job
    job.progressed.connect(lambda *_: job.cancel())
    qtbot.waitUntil(lambda: tab.job is None, timeout=60_000)
    assert tab.run is None and "cancel" in tab.status.text()
    (tmp_path / "empty").mkdir()
    tab.start(str(tmp_path / "empty"))
    qtbot.waitUntil(lambda: tab.job is None, timeout=TIMEOUT_MS)
    assert "no class sub-folders" in tab.status.text()
    assert tab.compute.isEnabled()


class FakeCamera:
    """Stands in for cv2.VideoCapture(index): delivers frames, then 'unplugs' until plugged back in."""

    plugged = True
    frames_left = 15

    def __init__(self, index):
        self.opened = FakeCamera.plugged

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 0.0  # the camera's properties: unknown

    def read(self):
        if not FakeCamera.plugged or FakeCamera.frames_left <= 0:
            FakeCamera.plugged = False
            return False, None
        FakeCamera.frames_left -= 1
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:, : 20 * FakeCamera.frames_left % 320] = 200
        return True, frame

    def release(self):
        self.opened = False


def test_a_camera_that_disconnects_is_reported_retried_and_its_last_frame_kept(qtbot, make_window, monkeypatch):

    monkeypatch.setattr(livevis.app.sources.cameras.cv2, "VideoCapture", FakeCamera)
    monkeypatch.setattr(livevis.app.live.capture.Backoff, "FIRST_S", 0.2)
    FakeCamera.plugged, FakeCamera.frames_left = True, 15
    window = make_window("0")
    wait_result(qtbot, window, lambda r: r.source == "camera 0")
    qtbot.waitUntil(lambda: "reconnecting" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "reconnecting to camera 0 (attempt" in window.status.source.text(), timeout=TIMEOUT_MS)
    assert window.live.panes["input"].image.image_array() is not None, "the last frame stays on screen"
    assert window.live.panes["input"].image.stale_reason().startswith("reconnecting to camera 0")
    last = window.last_result.sequence
    FakeCamera.frames_left = 10**9  # first (a read in between would unplug it); it reads at once: never run dry
    FakeCamera.plugged = True
    qtbot.waitUntil(lambda: "camera 0 is back" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    wait_result(qtbot, window, lambda r: r.sequence > last)
    assert window.live.panes["input"].image.stale_reason() == ""
    assert window.stats_dict()["source_reconnects"] == 1


def test_hovering_a_tile_shows_its_index_max_and_mean(qtbot, make_window, video):
    from PyQt6.QtWidgets import QToolTip

    window = make_window(video)
    wait_result(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_Space)  # freeze, so that the numbers under the mouse stay put
    wait_frozen(qtbot, window)
    result = window.last_result
    x, y, w, h = window.live.panes["grid"].grid.geometry_.tile_rect(5)
    point = window.live.panes["grid"].grid.to_widget(x + w / 2, y + h / 2)
    qtbot.mouseMove(window.live.panes["grid"].grid, QPoint(round(point.x()), round(point.y())))
    qtbot.waitUntil(lambda: QToolTip.isVisible() and "channel 5" in QToolTip.text(), timeout=5000)
    assert f"max {result.views.values['channel_max'][5]:.3g}" in QToolTip.text()
    assert f"mean {result.views.values['channel_mean'][5]:.3g}" in QToolTip.text()


def test_the_last_source_is_reopened_unless_it_is_gone(qtbot, make_window, video, tmp_path):
    window = make_window(video)
    wait_result(qtbot, window)
    window.close()
    saved = tmp_path / "settings0.ini"
    assert QSettings(str(saved), QSettings.Format.IniFormat).value("source") == str(video)
    shutil.copy(saved, tmp_path / "settings1.ini")  # the next window's settings
    assert wait_result(qtbot, make_window(None)).source == video.name
    video.unlink()
    shutil.copy(saved, tmp_path / "settings2.ini")
    result = wait_result(qtbot, make_window(None))
    assert result.source != video.name, "a vanished file falls back to the camera or the sample photos"


def test_latency_counts_each_frame_once_and_not_the_wait_for_a_model():
    from livevis.app.live.stats import LiveStats

    stats = LiveStats()
    stats.model_ready_at = 10.0
    stats.add_latency(1, captured_at=5.0, now=10.05)  # captured while the model loaded
    stats.add_latency(1, captured_at=5.0, now=30.0)  # the same frame redrawn later
    stats.add_latency(2, captured_at=30.0, now=30.1)
    assert list(stats.latencies_ms) == pytest.approx([50.0, 100.0])


def test_a_gui_slower_than_the_worker_gets_the_newest_result_and_no_queue(qtbot):
    from livevis.app.live.slot import LatestFrameSlot
    from livevis.app.live.worker import InferenceWorker, LiveResult
    from livevis.models import ViewOptions

    worker = InferenceWorker(LatestFrameSlot())
    signals = []
    worker.result_ready.connect(lambda: signals.append(1))
    for sequence in (1, 2, 3):  # three frames processed while the GUI was busy
        worker._deliver(LiveResult(None, 0.0, sequence, "test", ViewOptions(), 1.0))
    assert len(signals) == 1, "one notice for any number of waiting results"
    assert worker.take_result().sequence == 3 and worker.take_result() is None
    worker._deliver(LiveResult(None, 0.0, 4, "test", ViewOptions(), 1.0))
    assert len(signals) == 2 and worker.take_result().sequence == 4


def test_the_next_frame_is_preprocessed_before_the_result_is_handed_over(qtbot, alexnet_engine, photos, monkeypatch):
    """So the preprocess does not run while the GUI thread converts and paints the result just handed over."""
    from livevis.app.live.slot import CapturedFrame, LatestFrameSlot
    from livevis.app.live.worker import InferenceWorker
    from livevis.models import ViewOptions, Visualizer
    from livevis.models.engine import PreparedFrame

    slot, events = LatestFrameSlot(), []
    frames = {
        n: CapturedFrame(photos[name], time.perf_counter(), n, "test") for n, name in ((1, "china"), (2, "coffee"))
    }
    visualizer = Visualizer(alexnet_engine, ViewOptions(layer="conv5"))
    process, prepare = visualizer.process, alexnet_engine.prepare

    def processing(frame, *args, **kwargs):
        image = frame.image if isinstance(frame, PreparedFrame) else frame
        events.append(("process", next(n for n, f in frames.items() if f.image is image), type(frame).__name__))
        if len(events) == 1:
            slot.put(frames[2])  # arrives while frame 1 is processed
        return process(frame, *args, **kwargs)

    def preparing(image, **kwargs):
        events.append(("prepare", next(n for n, f in frames.items() if f.image is image)))
        return prepare(image, **kwargs)

    monkeypatch.setattr(visualizer, "process", processing)
    monkeypatch.setattr(alexnet_engine, "prepare", preparing)
    worker = InferenceWorker(slot)
    deliver = worker._deliver

    def delivering(result):  # on the worker's thread, as the rest: the events keep their order
        events.append(("delivered", result.sequence))
        deliver(result)

    monkeypatch.setattr(worker, "_deliver", delivering)
    worker.adopt(visualizer, ViewOptions(layer="conv5"))
    worker.start()
    try:
        slot.put(frames[1])
        qtbot.waitUntil(lambda: ("delivered", 2) in events, timeout=20000)
    finally:
        worker.stop()
        worker.wait()
    assert events == [
        ("process", 1, "ndarray"),
        ("prepare", 2),
        ("delivered", 1),
        ("process", 2, "PreparedFrame"),
        ("delivered", 2),
    ]


def test_help_menu_has_the_shortcuts_and_an_about_box(qtbot, make_window, video):
    window = make_window(video)
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    entries = [action.text() for action in menus["&Help"].actions()]
    assert entries == ["Keyboard shortcuts", "About livevis"]
    wait_result(qtbot, window)
    from livevis.app import __version__

    text = window.about_text()
    assert f"livevis {__version__}" in text and "alexnet" in text and "PyTorch 2." in text


def test_snapshots_go_to_the_pictures_folder_by_default(monkeypatch, tmp_path):
    from livevis.app.window.settings import default_snapshot_dir

    monkeypatch.chdir("/")
    folder = default_snapshot_dir()
    assert folder.name == "livevis" and folder.parent != Path("/"), "not the working directory"
    assert str(folder).startswith(str(Path.home())), folder


def test_moving_to_a_denser_screen_renders_at_its_device_pixels(qtbot, make_window, video, monkeypatch):
    from PyQt6.QtCore import QEvent
    from PyQt6.QtWidgets import QApplication

    window = make_window(video)
    view = window.live.panes["selected"].overlay
    wait_result(qtbot, window, lambda r: r.options.display_size == (view.width(), view.height()))
    for shown in (window.live.panes["selected"].overlay, window.live.panes["input"].image):
        monkeypatch.setattr(shown, "devicePixelRatioF", lambda: 2.0)
    QApplication.sendEvent(window, QEvent(QEvent.Type.DevicePixelRatioChange))
    wait_result(qtbot, window, lambda r: r.options.display_size == (2 * view.width(), 2 * view.height()))


def test_boosts_cycle_with_t_and_shift_t_and_are_chosen_in_the_toolbar(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_T)
    assert window.state.boost == 0.3 and window.controls.boost.currentText() == "0.3"
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ShiftModifier)
    assert window.state.gamma == 0.7 and window.controls.gamma.currentText() == "0.7"
    window.controls.gamma.textActivated.emit("0.3")
    result = wait_result(qtbot, window, lambda r: r.options.gamma == 0.3)
    assert result.options.boost == 0.3, "the worker draws with both boosts"


def test_the_model_moves_between_devices_from_the_menu(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window)
    devices = [action.text() for action in window.model_menu.device_group.actions()]
    assert devices[:2] == ["auto", "cpu"]
    assert [a.text() for a in window.model_menu.device_group.actions() if a.isChecked()] == ["cpu"]
    with qtbot.waitSignal(window.loader.ready, timeout=TIMEOUT_MS):
        window.model_menu.choose_device("auto")  # the first accelerator, or the CPU where there is none
    expected = "cuda" if "cuda" in devices else "mps" if "mps" in devices else "cpu"
    assert window.model_menu.device == "auto" and window.model.device == expected
    assert not window.model.trained, "moved as it was loaded: still the random weights asked for"
    assert [a.text() for a in window.model_menu.device_group.actions() if a.isChecked()] == ["auto"]
    wait_result(qtbot, window, lambda r: r.sequence > 0)


def test_a_first_launch_opens_on_a_channel_that_fires_at_something_and_a_later_one_keeps_the_choice(
    qtbot, make_window, chelsea_path, tmp_path
):
    settings = tmp_path / "first.ini"
    window = make_window(
        chelsea_path, settings_file=settings, first_launch=True, model="efficientnet_lite0", weights="default"
    )
    result = wait_result(qtbot, window, lambda r: r.views.channel != 0)
    values = result.views.values
    stands_out = np.asarray(values["channel_max"]) - np.asarray(values["channel_mean"])
    assert result.views.channel == window.state.channel == int(stands_out.argmax())
    assert stands_out.max() > np.percentile(stands_out, 99), "its peak stands above its own mean as few others do"
    chosen = window.state.channel
    window.state.channel = 3  # the user's choice is kept from then on
    wait_result(qtbot, window, lambda r: r.views.channel == 3)
    window.close()
    again = make_window(
        chelsea_path, settings_file=settings, first_launch=True, model="efficientnet_lite0", weights="default"
    )
    wait_result(qtbot, again)
    assert again.state.channel == 3 != chosen, "a later launch opens on the saved selection"
