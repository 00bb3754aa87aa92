"""Network cameras, offline: a real MJPEG-over-HTTP server on 127.0.0.1 (tests/app/mjpeg_server.py) read through
OpenCV's FFmpeg backend, stopped and restarted, stalled, refused, silent; a URL's password shown nowhere."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt
from PyQt6.QtGui import QDropEvent

import livevis.app.sources.network as network
from livevis.app.cli import main
from livevis.app.live.capture import Backoff
from livevis.app.sources import open_source
from livevis.app.sources.cameras import CameraInfo, CameraMode, CameraSource, camera_info, list_cameras
from livevis.app.sources.network import (
    BadStreamUrl,
    StreamEnded,
    StreamLost,
    StreamSource,
    display_url,
    host_of,
    is_stream_url,
    mask_urls,
    needs_password,
    open_stream_capture,
    with_password,
    without_password,
)
from livevis.app.window.settings import SettingsStore
from livevis.models.errors import InputError
from tests.app.conftest import TIMEOUT_MS, wait_result
from tests.app.mjpeg_server import MjpegServer, closed_port, read_stamp, silent_port
from tests.conftest import write_video

SECRET = "s3cr3t-pa55"


@pytest.fixture(scope="module")
def pan_frames(photos) -> list[np.ndarray]:
    """24 frames of 320 x 240 panning across a real photo (china.jpg)."""
    image = photos["china"]
    return [np.ascontiguousarray(image[40:280, 10 * i : 10 * i + 320]) for i in range(24)]


@pytest.fixture
def camera(pan_frames):
    with MjpegServer(pan_frames, fps=20) as server:
        yield server


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(network, "OPEN_TIMEOUT_S", 1.5)
    monkeypatch.setattr(network, "READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(Backoff, "FIRST_S", 0.1)


@contextmanager
def reading(url: str, demand=None):
    """A stream source for the length of a `with`; its reader thread is told to stop after."""
    source = StreamSource(url, demand)
    try:
        yield source
    finally:
        source.close()


def read_frame_from(source: StreamSource, timeout: float = 20.0) -> np.ndarray:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        frame = source.read()
        if frame is not None:
            return frame
    raise AssertionError("no frame arrived")


def failure_of(source: StreamSource, timeout: float = 20.0) -> InputError:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            source.read()
        except InputError as exc:
            return exc
    raise AssertionError("the stream did not fail")


def served_index(frame: np.ndarray, server: MjpegServer) -> int:
    """Which of the server's frames this is, by the smallest difference to each JPEG as served (decoded by
    libjpeg here; FFmpeg's decoder rounds a little differently)."""
    served = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for j in server.jpegs
    ]
    errors = [np.abs(frame.astype(int) - s.astype(int)).mean() for s in served]
    best = int(np.argmin(errors))
    second = sorted(errors)[1]
    assert errors[best] < 4 and second > 3 * errors[best], f"no served frame matches ({errors[best]:.2f}, {second:.2f})"
    return best


# --- URLs and their passwords ---
def test_urls_are_told_from_paths_and_shown_without_their_passwords():
    assert is_stream_url("http://127.0.0.1:8080/video") and is_stream_url("RTSP://cam/stream")
    assert not any(is_stream_url(s) for s in ("0", "photo.jpg", "C:/photos", "/tmp/x.mp4", "file:///tmp/x.mp4"))
    url = f"rtsp://admin:{SECRET}@192.0.2.7:554/Streaming/Channels/101?channel=1&pwd={SECRET}"
    assert display_url(url) == "rtsp://admin:***@192.0.2.7:554/Streaming/Channels/101?channel=1&pwd=***"
    assert without_password(url) == "rtsp://admin@192.0.2.7:554/Streaming/Channels/101?channel=1"
    assert host_of(url) == "192.0.2.7:554"
    assert needs_password(without_password(url)) and not needs_password(url)
    assert (
        with_password(without_password(url), "pw") == "rtsp://admin:pw@192.0.2.7:554/Streaming/Channels/101?channel=1"
    )
    assert display_url("http://phone:8080/video") == "http://phone:8080/video"


@pytest.mark.parametrize("password", ["s3cr#tz", "s3/cr", "s3?cr", "1234/5678", "p@ss/w#rd?x"])
def test_a_password_holding_a_hash_slash_or_question_mark_is_masked_and_kept_nowhere(password):
    url = f"rtsp://admin:{password}@192.0.2.7:554/Streaming/Channels/101?channel=1"
    assert display_url(url) == "rtsp://admin:***@192.0.2.7:554/Streaming/Channels/101?channel=1"
    assert without_password(url) == "rtsp://admin@192.0.2.7:554/Streaming/Channels/101?channel=1"
    assert host_of(url) == "192.0.2.7:554"
    assert needs_password(without_password(url)) and not needs_password(url)
    assert display_url(with_password(without_password(url), password)) == display_url(url)
    assert mask_urls(f"cannot open '{url}'") == f"cannot open '{display_url(url)}'"


def test_every_query_value_whose_name_looks_secret_is_masked():
    url = (
        "http://cam/cgi-bin/video.cgi?loginuse=admin&loginpas=v1&api_key=v2&apikey=v3&access_token=v4"
        "&X-Amz-Signature=v5&authcode=v6&resolution=640"
    )
    assert display_url(url) == (
        "http://cam/cgi-bin/video.cgi?loginuse=admin&loginpas=***&api_key=***&apikey=***&access_token=***"
        "&X-Amz-Signature=***&authcode=***&resolution=640"
    )
    assert without_password(url) == "http://cam/cgi-bin/video.cgi?loginuse=admin&resolution=640"
    assert display_url("http://cam/v?pwd=ab#cd&fps=5") == "http://cam/v?pwd=***&fps=5", "the '#' is the password's"
    assert display_url("http://cam:8080/v?mail=me@home.org") == "http://cam:8080/v?mail=me@home.org"


@pytest.mark.parametrize(
    ("url", "says", "hidden"),
    [
        ("http://[fe80::1/video", "IPv6 address does not parse", "fe80::1"),
        ("http://127.0.0.1:80800/video", "port is not a number from 1 to 65535", "80800"),
        (f"rtsp://admin:{SECRET}/stream", "port is not a number from 1 to 65535", SECRET),  # no host: no @
        (f"rtsp://admin:{SECRET}@/stream", "no host name or address", SECRET),
    ],
)
def test_a_url_that_does_not_parse_is_one_line_that_does_not_quote_it(url, says, hidden):
    threads = threading.active_count()
    with pytest.raises(BadStreamUrl, match=says) as raised:
        StreamSource(url)
    assert threading.active_count() == threads, "no reader thread for a URL that does not parse"
    assert hidden not in str(raised.value) and "\n" not in str(raised.value)
    assert display_url(url) == f"{url.split(':')[0]}://(an address that does not parse)"
    assert host_of(url) == "(an address that does not parse)" and not needs_password(url)
    with pytest.raises(BadStreamUrl, match=says):
        open_stream_capture(url)


def test_reconnect_waits_double_from_half_a_second_to_eight():
    backoff = Backoff()
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]


# --- reading a stream ---
def test_a_stream_is_read_frame_by_frame_as_served(camera):
    with reading(camera.url()) as source:
        first = read_frame_from(source)
        assert first.shape == (240, 320, 3) and first.dtype == np.uint8
        indices = [served_index(first, camera)]
        while len(indices) < 4:
            frame = source.read()
            if frame is not None:
                indices.append(served_index(frame, camera))
        assert indices == sorted(indices) and len(set(indices)) == 4, "frames come in the order they were sent"
        assert source.label == camera.url() and not source.finite
    assert source.join(5), "the reader ends once the source is closed"


class Demand:
    """A consumer that wants frames only when told to: the reader must skip (not decode) the rest."""

    def __init__(self):
        self.wanted = False
        self.skipped = 0

    def wants_frame(self) -> bool:
        return self.wanted

    def frame_skipped(self) -> None:
        self.skipped += 1


def test_only_the_newest_frame_is_decoded_and_it_is_fresh(pan_frames):
    demand = Demand()
    with MjpegServer(pan_frames, fps=20, stamp=True) as server:
        with reading(server.url(), demand) as source:
            read_frame_from(source)  # the first frame is always decoded: it says the stream is up
            skipped = demand.skipped
            deadline = time.perf_counter() + 20
            while demand.skipped < skipped + 10 and time.perf_counter() < deadline:
                assert source.read(wait_s=0.05) is None, "nothing is decoded while no frame is wanted"
            assert demand.skipped >= skipped + 10, "frames keep being grabbed meanwhile"
            demand.wanted = True
            frame = read_frame_from(source)
            age = time.time() - read_stamp(frame, time.time())
            # the newest frame, not the oldest one waiting: 10 frames (0.5 s) went by unseen
            assert age < 5 / server.fps, f"the frame handed over is {age * 1000:.0f} ms old"


def test_a_stream_that_is_cut_fails_as_lost_and_reconnects_when_the_server_is_back(camera):
    with reading(camera.url()) as source:
        read_frame_from(source)
        camera.stop()
        failure = failure_of(source)
        assert isinstance(failure, StreamLost) and "cut" in str(failure)
        camera.start()  # the same port
        source.reconnect()
        read_frame_from(source)
        assert camera.connections == 2


def test_a_stalled_stream_fails_after_the_read_timeout(camera, short_timeouts):
    with reading(camera.url()) as source:
        read_frame_from(source)
        camera.stall()
        failure = failure_of(source)
    assert isinstance(failure, StreamLost) and "no frame for 1 s (the stream stalled)" in str(failure)


def test_a_refused_port_says_so():
    url = f"http://127.0.0.1:{closed_port()}/video"
    with pytest.raises(InputError, match="connection refused") as raised:
        open_stream_capture(url)
    assert str(raised.value).startswith(url)


def test_an_address_that_never_answers_gives_up_after_the_open_timeout(short_timeouts):
    listener, port = silent_port()
    try:
        source = StreamSource(f"http://user:{SECRET}@127.0.0.1:{port}/video")
        failure = failure_of(source)
    finally:
        listener.close()
    assert str(failure) == (
        f"http://user:***@127.0.0.1:{port}/video: no answer within 1.5 s (is the address right, and the camera on?)"
    )


@pytest.mark.parametrize("password", [SECRET, "s3cr#t/x?y", "p@ss:w rd%"])
def test_a_camera_that_asks_for_a_login_gets_the_password_whole_and_nothing_shows_it(pan_frames, password):
    with MjpegServer(pan_frames, fps=20, login=("me", password)) as server:
        with reading(server.url(userinfo=f"me:{password}")) as source:
            assert source.label == f"http://me:***@127.0.0.1:{server.port}/video"
            assert source._thread.name == f"livevis stream 127.0.0.1:{server.port}"
            assert read_frame_from(source).shape == (240, 320, 3)
        with reading(server.url(userinfo="me:wrong")) as source:
            refused = failure_of(source)
    assert str(refused).startswith(f"http://me:***@127.0.0.1:{server.port}/video: the server answered")


def test_an_unexpected_error_while_connecting_reaches_read_as_one_line(monkeypatch):
    """The reader thread would otherwise die with it, and the window say "connecting" for ever."""

    def failing_capture(url, backend, params):
        raise cv2.error(f"OpenCV(4.10.0) cap_ffmpeg.cpp:112: error: (-2) cannot open {url}\nin function 'open'")

    monkeypatch.setattr(network.cv2, "VideoCapture", failing_capture)
    with reading(f"http://me:{SECRET}@127.0.0.1:{closed_port()}/video") as source:
        failure = failure_of(source)
    assert isinstance(failure, StreamLost) and "\n" not in str(failure) and SECRET not in str(failure)
    assert "cannot open it (error: OpenCV(4.10.0)" in str(failure) and "http://me:***@127.0.0.1" in str(failure)


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_file_served_over_http_plays_at_its_rate_and_says_when_it_ends(pan_frames, tmp_path):
    # an AVI reads front to back; an MP4 whose index is at its end needs a server that takes Range requests
    video = write_video(tmp_path / "pan.avi", pan_frames, fps=10)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with reading(f"http://127.0.0.1:{server.server_address[1]}/{video.name}") as source:
            frames = 0
            with pytest.raises(StreamEnded, match="ended after 24 frames"):
                while True:
                    frames += source.read() is not None
        assert source.finite and frames >= 2
    finally:
        server.shutdown()
        server.server_close()


# --- RTSP ---
class RecordingCapture:
    """Stands in for cv2.VideoCapture: records the URL, the parameters and the options FFmpeg would see when
    the capture is created."""

    seen: list[tuple] = []

    def __init__(self, url, backend, params):
        RecordingCapture.seen.append((url, backend, list(params), os.environ.get(network.CAPTURE_OPTIONS_ENV)))

    def isOpened(self):
        return True

    def release(self):
        pass


class WatchedEnviron(MutableMapping):
    """Stands in for os.environ: reads go through, writes are recorded."""

    def __init__(self, real):
        self.real, self.writes = real, []

    def __getitem__(self, key):
        return self.real[key]

    def __setitem__(self, key, value):
        self.writes.append(key)
        self.real[key] = value

    def __delitem__(self, key):
        self.writes.append(key)
        del self.real[key]

    def __iter__(self):
        return iter(self.real)

    def __len__(self):
        return len(self.real)


def _options_a_new_process_gets(**environment) -> str:
    code = "import os, livevis.app.sources.network as n; print(os.environ.get(n.CAPTURE_OPTIONS_ENV))"
    env = {k: v for k, v in os.environ.items() if k != network.CAPTURE_OPTIONS_ENV} | environment
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_rtsp_goes_over_tcp_unless_the_user_says_otherwise_and_opening_never_changes_the_environment(monkeypatch):
    assert _options_a_new_process_gets() == "rtsp_transport;tcp", "set once, when livevis is imported"
    assert _options_a_new_process_gets(**{network.CAPTURE_OPTIONS_ENV: "rtsp_transport;udp"}) == "rtsp_transport;udp"
    # FFmpeg reads the variable on whatever thread opens a capture: no open may write it meanwhile
    monkeypatch.delenv(network.CAPTURE_OPTIONS_ENV, raising=False)
    watched = WatchedEnviron(os.environ)
    monkeypatch.setattr(os, "environ", watched)
    monkeypatch.setattr(network.cv2, "VideoCapture", RecordingCapture)
    RecordingCapture.seen = []
    opening = [
        threading.Thread(target=open_stream_capture, args=(url,), kwargs={"open_timeout_s": 3, "read_timeout_s": 2})
        for url in ("rtsp://cam/stream", "http://phone:8080/video", f"rtsp://admin:{SECRET}#1@cam/stream")
    ]
    for thread in opening:
        thread.start()
    for thread in opening:
        thread.join(10)
    assert watched.writes == []
    assert {url for url, *_ in RecordingCapture.seen} == {
        "rtsp://cam/stream",
        "http://phone:8080/video",
        f"rtsp://admin:{SECRET}%231@cam/stream",  # FFmpeg would cut the login at the '#'
    }
    for _, backend, params, _ in RecordingCapture.seen:
        assert backend == cv2.CAP_FFMPEG
        assert params == [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2000]


RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin")


def _gst_rtsp_server_available() -> bool:
    if SYSTEM_PYTHON is None:
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _gst_rtsp_server_available(), reason="needs Debian's GStreamer RTSP server (make system-deps installs it)"
)
def test_a_real_rtsp_camera_is_read_over_tcp(tmp_path, pan_frames, monkeypatch):
    for index, frame in enumerate(pan_frames):
        cv2.imwrite(str(tmp_path / f"{index:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    server = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        url = f"rtsp://viewer:{SECRET}@127.0.0.1:{port}/camera"
        monkeypatch.setenv(network.CAPTURE_OPTIONS_ENV, network.RTSP_OVER_TCP)  # as importing livevis sets it
        with reading(url) as source:
            frame = read_frame_from(source)
        served = [np.abs(frame.astype(int) - f.astype(int)).mean() for f in pan_frames]
        assert frame.shape == (240, 320, 3) and min(served) < 6, "a frame of the real video, through RTP/JPEG"
        # the server takes TCP only: over UDP (the user's choice here) it cannot be read
        monkeypatch.setenv(network.CAPTURE_OPTIONS_ENV, "rtsp_transport;udp")
        with pytest.raises(InputError, match=r"rtsp://viewer:\*\*\*@"):
            open_stream_capture(url, open_timeout_s=3)
    finally:
        server.terminate()
        server.wait(10)


# --- the command line ---
def test_render_and_figure_take_a_stream_url(camera, tmp_path, capsys, monkeypatch):
    import matplotlib

    monkeypatch.setitem(matplotlib.rcParams, "svg.fonttype", "none")  # the heading as text, to be read back
    url = camera.url(userinfo=f"me:{SECRET}")
    assert main(["render", url, "--model", "lenet", "--out", str(tmp_path / "r"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (tmp_path / "r" / "grid.png").exists() and report["model"] == "lenet"
    assert main(["figure", url, "--model", "lenet", "--out", str(tmp_path / "f.svg")]) == 0
    heading = (tmp_path / "f.svg").read_text()
    assert f"127.0.0.1:{camera.port}/video" in heading and SECRET not in heading
    assert SECRET not in capsys.readouterr().out


def test_a_url_that_cannot_be_read_is_one_line_naming_it_without_its_password(capsys):
    url = f"http://me:{SECRET}@127.0.0.1:{closed_port()}/video"
    assert main(["render", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "connection refused" in err and SECRET not in err
    assert "http://me:***@127.0.0.1" in err, "the URL is not mangled into a path"
    assert main(["render", url, "--frame", "3"]) == 2
    assert "no frame 3" in capsys.readouterr().err
    assert main(["render", url, "--all-frames"]) == 2
    assert "live stream has no last frame" in capsys.readouterr().err


def _livevis(*args: str) -> subprocess.CompletedProcess:
    """The command line as a user runs it."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OPENCV_LOG_LEVEL": "ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "livevis", *args], capture_output=True, text=True, timeout=180, env=env
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://[fe80::1/video", "IPv6 address does not parse"),
        ("http://127.0.0.1:80800/video", "port is not a number from 1 to 65535"),
        (
            "rtsp://admin:s3cr#tz@127.0.0.1:{port}/stream",
            "rtsp://admin:***@127.0.0.1:{port}/stream: connection refused",
        ),
    ],
)
def test_render_refuses_a_url_it_cannot_read_in_one_line_without_its_password(url, says):
    port = closed_port()
    done = _livevis("render", url.format(port=port), "--model", "lenet", "--weights", "none")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert says.format(port=port) in done.stderr and "s3cr" not in done.stderr and "tz@" not in done.stderr


# --- the window ---
def source_text(window) -> str:
    return window.status.source.text()


def test_the_app_reconnects_when_the_camera_comes_back_and_marks_the_last_frame_stale(
    qtbot, make_window, camera, short_timeouts
):
    window = make_window(camera.url())
    first = wait_result(qtbot, window, lambda r: r.source == camera.url())
    assert source_text(window) == camera.url()
    camera.stop()
    host = f"127.0.0.1:{camera.port}"
    qtbot.waitUntil(lambda: f"reconnecting to {host} (attempt" in source_text(window), timeout=TIMEOUT_MS)
    image = window.live.panes["input"].image
    assert image.image_array() is not None and image.stale_reason().startswith(f"reconnecting to {host}")
    window.state.channel = 5  # nothing waits for the camera: the last frame is drawn again for the new channel
    wait_result(qtbot, window, lambda r: r.views.channel == 5)
    qtbot.waitUntil(lambda: "(attempt 2)" in source_text(window), timeout=TIMEOUT_MS)
    camera.start()  # the same port
    qtbot.waitUntil(lambda: f"{host} is back" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    wait_result(qtbot, window, lambda r: r.sequence > first.sequence + 3)
    assert image.stale_reason() == "" and source_text(window) == camera.url()
    assert window.stats_dict()["source_reconnects"] == 1


def test_a_stalled_camera_is_reconnected(qtbot, make_window, camera, short_timeouts):
    window = make_window(camera.url())
    wait_result(qtbot, window)
    camera.stall()
    qtbot.waitUntil(lambda: "the stream stalled" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "reconnecting to" in source_text(window), timeout=TIMEOUT_MS)
    last = window.last_result.sequence
    camera.stall(False)
    wait_result(qtbot, window, lambda r: r.sequence > last)
    qtbot.waitUntil(lambda: window.live.panes["input"].image.stale_reason() == "", timeout=TIMEOUT_MS)
    assert window.stats_dict()["source_reconnects"] >= 1


def test_a_silent_address_is_one_message_and_the_previous_source_goes_on(qtbot, make_window, video, short_timeouts):
    window = make_window(video)
    wait_result(qtbot, window)
    listener, port = silent_port()
    try:
        window.open_source(f"http://127.0.0.1:{port}/video")
        qtbot.waitUntil(lambda: "no answer within 1.5 s" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    finally:
        listener.close()
    assert f"; {video.name} goes on" in window.statusBar().currentMessage()
    last = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > last and r.source == video.name)
    assert source_text(window) == video.name


@pytest.mark.parametrize("password", [SECRET, "s3cr#t/x?y"])
def test_a_password_in_a_url_is_shown_and_kept_nowhere(qtbot, make_window, camera, tmp_path, caplog, password):
    url = camera.url(userinfo=f"me:{password}")
    window = make_window(url)
    shown = f"http://me:***@127.0.0.1:{camera.port}/video"
    seen: list[str] = []
    window.statusBar().messageChanged.connect(seen.append)
    window.capture.source_changed.connect(seen.append)
    wait_result(qtbot, window, lambda r: r.source == shown)
    with qtbot.waitSignal(window.worker.snapshot_saved, timeout=TIMEOUT_MS) as saved:
        window.snapshot()
    folder = Path(saved.args[0])
    assert json.loads((folder / "snapshot.json").read_text())["source"] == shown
    camera.stop()
    qtbot.waitUntil(lambda: "reconnecting" in source_text(window), timeout=TIMEOUT_MS)
    camera.start()
    qtbot.waitUntil(lambda: any("is back" in t for t in seen), timeout=TIMEOUT_MS)
    assert window.sources.recent_urls() == [f"http://me@127.0.0.1:{camera.port}/video"]
    window.close()
    texts = seen + [source_text(window), window.statusBar().currentMessage(), caplog.text]
    assert all(password not in t for t in texts)
    for path in folder.iterdir():
        assert password.encode() not in path.read_bytes(), path.name
    settings = (tmp_path / "settings0.ini").read_bytes()
    assert password.encode() not in settings and password.encode("utf-16-be") not in settings
    assert QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat).value("source") in (None, "")


def test_recent_urls_are_offered_and_ask_for_their_password(qtbot, make_window, camera, monkeypatch):
    window = make_window(camera.url(userinfo=f"me:{SECRET}"))
    wait_result(qtbot, window)
    window.sources.fill_recent_menu()
    recent = [a.text() for a in window.sources.recent_menu.actions()]
    assert recent == [f"http://me@127.0.0.1:{camera.port}/video"]
    asked = []
    opened = []
    monkeypatch.setattr(
        "livevis.app.window.sources_menu.QInputDialog.getText", lambda *args: asked.append(args[2]) or (SECRET, True)
    )
    monkeypatch.setattr(window.capture, "set_source", opened.append)
    window.sources.recent_menu.actions()[0].trigger()
    assert asked == [f"Password for {recent[0]}"] and opened == [camera.url(userinfo=f"me:{SECRET}")]
    window.sources.open_url("photo.jpg")
    qtbot.waitUntil(lambda: "is not a stream URL" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://[fe80::1/video", "the stream URL's IPv6 address does not parse"),
        ("http://127.0.0.1:80800/video", "the stream URL's port is not a number from 1 to 65535"),
    ],
)
def test_a_url_that_does_not_parse_is_a_message_in_the_window_and_the_frames_go_on(
    qtbot, make_window, video, monkeypatch, url, says
):
    window = make_window(video)
    wait_result(qtbot, window)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    monkeypatch.setattr("livevis.app.window.sources_menu.QInputDialog.getItem", lambda *args: (url, True))
    window.sources.choose_url()  # File > Open URL...
    qtbot.waitUntil(lambda: any(says in m for m in messages), timeout=TIMEOUT_MS)
    dropped = QMimeData()
    dropped.setData("text/uri-list", f"{url}\r\n".encode())  # Qt reads it as an empty QUrl
    dropped.setText(url)  # as a browser drops a link
    drop = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, dropped, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.statusBar().clearMessage()
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: says in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    dropped.removeFormat("text/plain")  # a list of URLs alone: Qt keeps none of it
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: "the dropped URL does not parse" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    assert window.sources.recent_urls() == [] and window.sources.last_url is None
    last = window.last_result.sequence
    wait_result(qtbot, window, lambda r: r.sequence > last and r.source == video.name)
    assert source_text(window) == video.name, "the video goes on; nothing is left 'connecting'"
    assert all(url.split("://")[1][:12] not in m for m in messages), "the URL is not quoted"


def test_the_settings_never_keep_a_password_even_one_written_in_by_hand(tmp_path):
    path = tmp_path / "settings.ini"
    store = SettingsStore(path)
    store.set("recent_urls", [f"rtsp://admin:{SECRET}@cam/stream", "http://phone:8080/video"])
    store.save()
    again = SettingsStore(path)
    assert again.get("recent_urls") == ["rtsp://admin@cam/stream", "http://phone:8080/video"]
    assert again.reset == []
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    raw.setValue("recent_urls", [f"rtsp://admin:{SECRET}#1@[fe80::1/stream", "http://phone:8080/video"])
    raw.sync()
    assert SettingsStore(path).get("recent_urls") == ["http://phone:8080/video"], "one that cannot open is left out"
    raw.setValue("recent_urls", [f"admin:{SECRET}@cam"])
    raw.sync()
    reset = SettingsStore(path).reset
    assert reset == ["recent_urls"], "named, not quoted: it may hold a password"


# --- local cameras ---
def fake_sysfs(root: Path, devices: dict[int, tuple[str, int]]) -> Path:
    for number, (name, index) in devices.items():
        device = root / f"video{number}"
        device.mkdir(parents=True)
        (device / "name").write_text(name + "\n")
        (device / "index").write_text(f"{index}\n")
    return root


def test_cameras_are_listed_by_their_v4l2_names(tmp_path):
    sysfs = fake_sysfs(
        tmp_path / "video4linux",
        {0: ("HD Pro Webcam C920", 0), 1: ("HD Pro Webcam C920", 1), 2: ("Integrated Camera", 0)},
    )
    assert list_cameras(sysfs) == [CameraInfo(0, "HD Pro Webcam C920"), CameraInfo(2, "Integrated Camera")]
    assert camera_info(2, sysfs).name == "Integrated Camera"
    assert camera_info(7, sysfs) == CameraInfo(7, "Camera 7"), "elsewhere, the index"


class ModalCamera:
    """Stands in for cv2.VideoCapture(index): offers 640x480 and 1280x720 at up to 30 fps."""

    asked: list = []

    def __init__(self, index):
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0, cv2.CAP_PROP_FPS: 30.0}

    def isOpened(self):
        return True

    def set(self, prop, value):
        ModalCamera.asked.append((prop, value))
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.props[prop] = 1280.0 if value >= 1280 else 640.0
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self.props[prop] = 720.0 if value >= 720 else 480.0
        elif prop == cv2.CAP_PROP_FPS:
            self.props[prop] = min(float(value), 30.0)
        return True

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self):
        w, h = int(self.props[cv2.CAP_PROP_FRAME_WIDTH]), int(self.props[cv2.CAP_PROP_FRAME_HEIGHT])
        return True, np.full((h, w, 3), 90, np.uint8)

    def release(self):
        pass


def test_a_camera_opens_at_the_mode_asked_and_says_what_it_delivers(monkeypatch):
    import livevis.app.sources.cameras

    monkeypatch.setattr(livevis.app.sources.cameras.cv2, "VideoCapture", ModalCamera)
    ModalCamera.asked = []
    camera = CameraSource(0, mode=CameraMode.parse("1920x1080@60"))
    assert ModalCamera.asked == [
        (cv2.CAP_PROP_FRAME_WIDTH, 1920),
        (cv2.CAP_PROP_FRAME_HEIGHT, 1080),
        (cv2.CAP_PROP_FPS, 60.0),
    ]
    assert str(camera.delivered) == "1280x720@30" and camera.read().shape == (720, 1280, 3)
    assert CameraMode.parse("") == CameraMode() and str(CameraMode.parse("@15")) == "@15"
    with pytest.raises(InputError, match="out of range"):
        CameraMode.parse("640x480@500")


def test_camera_settings_are_remembered_per_camera_and_applied(qtbot, make_window, monkeypatch, tmp_path):
    import livevis.app.sources.cameras
    from livevis.app.window.camera_settings import CameraSettingsDialog

    monkeypatch.setattr(livevis.app.sources.cameras.cv2, "VideoCapture", ModalCamera)
    ModalCamera.asked = []
    window = make_window("0")
    wait_result(qtbot, window, lambda r: r.views.frame_size == (640, 480))
    dialog = CameraSettingsDialog(window, [CameraInfo(0, "Camera 0")], window.sources.camera_modes())
    dialog.resolution.setCurrentText("1280x720")
    dialog.fps.setCurrentText("24")
    window.sources.set_camera_mode(*dialog.choice())
    qtbot.waitUntil(
        lambda: "asked for 1280x720@24, delivers 1280x720@24" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS
    )
    wait_result(qtbot, window, lambda r: r.views.frame_size == (1280, 720))
    dialog.resolution.setCurrentText("big")
    dialog.accept()
    assert "is not WIDTHxHEIGHT" in dialog.problem.text() and not dialog.result()
    window.close()
    again = SettingsStore(tmp_path / "settings0.ini")
    assert again.get("camera_modes") == {"Camera 0": "1280x720@24"}
    reopened = CameraSettingsDialog(None, [CameraInfo(0, "Camera 0")], {"Camera 0": CameraMode.parse("1280x720@24")})
    assert (reopened.resolution.currentText(), reopened.fps.currentText()) == ("1280x720", "24")


def test_open_source_takes_a_url_whole(camera):
    source = open_source(camera.url())
    try:
        assert isinstance(source, StreamSource) and source.label == camera.url()
    finally:
        source.close()
    with pytest.raises(InputError, match="one stream URL at a time"):
        open_source([camera.url(), "photo.jpg"])
