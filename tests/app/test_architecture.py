"""The app's shared machinery: the job runner, the settings store, failures in every thread, and
frozen browsing that redraws without running the model."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import cv2
import pytest
from PyQt6.QtCore import QSettings, Qt

from livevis.app.live.jobs import JobRunner
from livevis.app.tabs.embeddings import compute_embeddings
from livevis.app.window.settings import SettingsError, SettingsStore
from livevis.models.errors import InputError
from livevis.models.progress import report
from tests.app.conftest import TIMEOUT_MS, wait_frozen, wait_result

LIVEVIS = Path(sysconfig.get_path("scripts")) / "livevis"


def _steps(count: int, *, progress, fail_with: BaseException | None = None, gate: threading.Event | None = None):
    if gate is not None:
        gate.wait(TIMEOUT_MS / 1000)  # until the test has connected to the job's signals
    for step in range(count):
        report(progress, "counting", step, count)
        if fail_with is not None and step == 2:
            raise fail_with
    return count


def _run_job(qtbot, runner, *args, **kwargs):
    job = runner.submit("test job", _steps, *args, **kwargs)
    outcome = {}
    job.succeeded.connect(lambda value: outcome.setdefault("succeeded", value))
    job.failed.connect(lambda message: outcome.setdefault("failed", message))
    job.cancelled.connect(lambda: outcome.setdefault("cancelled", True))
    progress = []
    job.progressed.connect(lambda *a: progress.append(a))
    with qtbot.waitSignal(job.ended, timeout=TIMEOUT_MS):
        pass
    return job, outcome, progress


def test_a_job_reports_progress_and_its_result_on_the_gui_thread(qtbot):
    runner = JobRunner()
    _, outcome, progress = _run_job(qtbot, runner, 5)
    assert outcome == {"succeeded": 5}
    assert progress == [("counting", i, 5) for i in range(5)]
    assert not runner.running()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InputError("photo.jpg is empty (0 bytes)"), "photo.jpg is empty (0 bytes)"),
        (RuntimeError("CUDA out of memory"), "unexpected RuntimeError: CUDA out of memory"),
        (cv2.error("bad argument"), "unexpected error: bad argument"),
    ],
)
def test_a_job_that_raises_ends_as_one_failure_message(qtbot, error, expected):
    _, outcome, _ = _run_job(qtbot, JobRunner(), 5, fail_with=error)
    assert outcome == {"failed": expected}


def test_a_cancelled_job_is_cancelled_not_failed(qtbot):
    runner, gate = JobRunner(), threading.Event()
    job = runner.submit("test job", _steps, 1000, gate=gate)
    job.progressed.connect(lambda what, done, total: done == 3 and job.cancel(), Qt.ConnectionType.DirectConnection)
    outcome = []
    job.cancelled.connect(lambda: outcome.append("cancelled"))
    job.failed.connect(outcome.append)
    job.succeeded.connect(outcome.append)
    gate.set()
    with qtbot.waitSignal(job.ended, timeout=TIMEOUT_MS):
        pass
    assert outcome == ["cancelled"]
    assert runner.shutdown(1000) and runner.closed
    with pytest.raises(RuntimeError, match="shut down"):
        runner.submit("late", _steps, 1)


def test_a_job_superseded_before_it_ends_is_cancelled_and_one_not_yet_started_never_runs(qtbot):
    runner, gate, calls, outcomes = JobRunner(), threading.Event(), [], {}

    def look_up(unit: int, *, progress) -> int:
        calls.append(unit)
        if unit == 1:
            gate.wait(TIMEOUT_MS / 1000)  # still running when the next unit is selected
        report(progress, "looking up", 0, 1)
        return unit

    def submit(unit: int):
        job = runner.submit(f"unit {unit}", look_up, unit, supersede="unit look-up")
        job.succeeded.connect(lambda value: outcomes.setdefault(unit, value))
        job.cancelled.connect(lambda: outcomes.setdefault(unit, "cancelled"))
        return job

    submit(1)
    qtbot.waitUntil(lambda: calls == [1], timeout=TIMEOUT_MS)
    submit(2)
    submit(3)
    other = runner.submit("another kind of job", look_up, 4)
    gate.set()
    with qtbot.waitSignal(other.ended, timeout=TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: len(outcomes) == 3, timeout=TIMEOUT_MS)
    assert outcomes == {1: "cancelled", 2: "cancelled", 3: 3}
    assert sorted(calls) == [1, 3, 4], "the job superseded before it started never ran"
    assert runner.shutdown(1000)


def test_a_settings_file_never_makes_livevis_import_code(qtbot, make_window, video, tmp_path, monkeypatch):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "planted_model.py").write_text(
        "from pathlib import Path\n\nPath(__file__).with_name('imported').touch()\n\n\n"
        "def build():\n    raise ValueError('never built')\n"
    )
    monkeypatch.chdir(folder)  # where a user's own module:factory is looked up first
    monkeypatch.delitem(sys.modules, "planted_model", raising=False)
    raw = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    raw.setValue("format", "livevis-settings-1")
    raw.setValue("model", "planted_model:build")
    raw.sync()
    window = make_window(video, model=None, weights="none")
    wait_result(qtbot, window)
    assert not (folder / "imported").exists() and "planted_model" not in sys.modules
    assert "model (was 'planted_model:build')" in window.notice.text()
    assert window.model.name == "alexnet"


def test_a_weights_download_inside_an_embeddings_job_reports_progress(qtbot, tmp_path, monkeypatch):
    """The embeddings job and the weights download speak one progress protocol (this raised TypeError)."""
    from tests.app.test_window import _serve_lenet_weights

    served = _serve_lenet_weights(tmp_path, monkeypatch)
    monkeypatch.setenv("LIVEVIS_CACHE", str(tmp_path / "cache"))
    runner = JobRunner()
    job = runner.submit("embedding", compute_embeddings, "digits", "lenet", ["fc3"], 100, 20.0, "opentsne")
    seen, outcome = [], {}
    job.progressed.connect(lambda *a: seen.append(a))
    job.succeeded.connect(lambda value: outcome.setdefault("run", value[0]))
    job.failed.connect(lambda message: outcome.setdefault("failed", message))
    with qtbot.waitSignal(job.ended, timeout=60_000):
        pass
    assert "failed" not in outcome, outcome.get("failed")
    assert (f"downloading {served.name}", served.stat().st_size, served.stat().st_size) in seen
    assert [layer.name for layer in outcome["run"].layers] == ["fc3"]


def test_bad_settings_fall_back_to_their_defaults_and_are_named(tmp_path):
    path = tmp_path / "settings.ini"
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    for key, value in {
        "channel": "abc",
        "gamma": "-2",
        "boost": "7",
        "colormap": "jet",
        "norm": "12",
        "opacity": "x",
        "mirror": "maybe",
        "geometry": "garbage",
        "layer": "features.10",
    }.items():
        raw.setValue(key, value)
    raw.sync()
    store = SettingsStore(path)
    assert store.get("channel") == 0 and store.get("gamma") == 1.0 and store.get("colormap") == "signed"
    assert store.get("geometry") is None and store.get("mirror") is True and store.get("layer") == "features.10"
    named = " ".join(store.reset)
    for key in ("channel", "gamma", "boost", "colormap", "norm", "opacity", "mirror", "geometry"):
        assert key in named
    store.save()
    assert SettingsStore(path).reset == [], "the bad values are not written back"


def test_a_foreign_file_is_never_taken_as_settings(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Things to do:\n- buy milk\n- run livevis\n")
    with pytest.raises(SettingsError, match="not a livevis settings file"):
        SettingsStore(notes)
    result = subprocess.run(
        [str(LIVEVIS), "--settings", str(notes)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not a livevis settings file" in result.stderr
    assert notes.read_text() == "Things to do:\n- buy milk\n- run livevis\n"
    (tmp_path / "new.ini").unlink(missing_ok=True)
    assert SettingsStore(tmp_path / "new.ini").reset == [], "a path that does not exist yet is fine"


def test_a_window_starts_on_bad_settings_and_says_which_were_reset(qtbot, make_window, video, tmp_path):
    raw = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    raw.setValue("channel", -7)
    raw.setValue("geometry", "garbage")
    raw.sync()
    window = make_window(video)
    wait_result(qtbot, window)
    assert "channel" in window.notice.text() and "geometry" in window.notice.text()
    window.close()
    assert int(QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat).value("channel")) == 0


def test_an_exception_in_the_worker_is_shown_and_the_frames_go_on(qtbot, make_window, video, monkeypatch):
    from livevis.models.pipeline import Visualizer

    window = make_window(video)
    first = wait_result(qtbot, window).sequence
    real = Visualizer.process
    failures = iter([RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")])

    def failing_once(self, *args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real(self, *args, **kwargs)

    # listening before the patch: the worker may fail on its very next step, before a later connect
    with qtbot.waitSignal(window.worker.error, timeout=TIMEOUT_MS) as error:
        monkeypatch.setattr(Visualizer, "process", failing_once)
    assert error.args[0] == "unexpected RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    wait_result(qtbot, window, lambda r: r.sequence > first + 2)
    assert window.worker.isRunning()


def test_an_exception_in_the_capture_thread_is_shown_and_the_app_goes_on(qtbot, make_window, video, monkeypatch):
    from livevis.app.sources.files import VideoFileSource

    window = make_window(video)
    wait_result(qtbot, window)

    def broken(self):
        raise cv2.error("OpenCV(4.x) error: (-215:Assertion failed) !_src.empty()")

    with qtbot.waitSignal(window.capture.error, timeout=TIMEOUT_MS) as error:
        monkeypatch.setattr(VideoFileSource, "read", broken)
    assert "_src.empty()" in error.args[0] and "open a source again" in error.args[0]
    monkeypatch.undo()
    window.open_source(str(video))
    before = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence != before)
    assert window.capture.isRunning()


def test_frozen_browsing_redraws_from_the_cached_forward(qtbot, make_window, video):
    window = make_window(video)
    wait_result(qtbot, window, lambda r: r.sequence > 1)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    wait_frozen(qtbot, window)
    visualizer = window.worker.visualizer
    forwards = visualizer.forwards
    frozen = window.last_result.sequence
    for change in (
        {"channel": 9},
        {"colormap": "inferno"},
        {"boost": 0.5},
        {"gamma": 0.5},
        {"opacity": 0.3},
        {"overlay_mode": "mask"},
        {"norm": "channel"},
    ):
        window.state.update(**change)
        ((name, value),) = change.items()
        result = wait_result(qtbot, window, lambda r, n=name, v=value: getattr(r.options, n) == v)
        assert result.sequence == frozen and result.views.reused_forward
    assert visualizer.forwards == forwards, "no model forward while browsing a frozen frame"
    window.state.update(layer="features.8", channel=0)  # a layer the last forward did not capture
    wait_result(qtbot, window, lambda r: r.views.layer.path == "features.8")
    assert visualizer.forwards == forwards + 1


def test_the_live_tab_asks_for_the_views_the_benchmark_times(qtbot, make_window, video):
    from livevis.views import live_views

    window = make_window(video)
    result = wait_result(qtbot, window)
    assert set(window.live.views()) == set(live_views(transformer=False)) == set(result.options.views)
    assert "input_signed" not in result.views.images, "a view no pane shows is not computed"


def test_the_gui_takes_a_config_not_the_command_line(tmp_path):
    code = "import sys, livevis.app.gui; print('livevis.app.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"
