"""Network cameras: phones and IP cameras over HTTP (MJPEG or video) and RTSP, read through OpenCV's FFmpeg
backend (OpenCV only, no Qt).

Three things make a network camera usable live. Nothing may hang: the open and read timeouts are passed when
the capture is created (FFmpeg ignores them when set afterwards). Frames must not pile up: a reader thread
grabs every frame as it arrives, so the socket never holds a backlog, and decodes only the frames that will
be shown. And a password in a URL is shown nowhere: every label and message uses `display_url`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np

from livevis.app.sources.base import OnFailure
from livevis.models.errors import InputError

STREAM_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp")
OPEN_TIMEOUT_S = 10.0
"""How long connecting may take (OpenCV's own default is 30 s)."""
READ_TIMEOUT_S = 5.0
"""How long a stream may send nothing before it counts as stalled and is reopened."""
CAPTURE_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
RTSP_OVER_TCP = "rtsp_transport;tcp"
"""RTSP over TCP by default: over UDP a lossy Wi-Fi link tears frames and many routers drop the packets."""
SECRET_QUERY_KEYS = frozenset(
    {"password", "passwd", "pass", "pwd", "token", "access_token", "key", "auth", "secret", "signature", "sig"}
)
"""Query parameters that some cameras take credentials in (http://cam/video.cgi?user=admin&pwd=...)."""
MASK = "***"

_environment_lock = threading.Lock()


def is_stream_url(spec: object) -> bool:
    """Whether a source spec is a network stream (http, https, rtsp, rtsps, rtmp) rather than a path."""
    if not isinstance(spec, str) or "://" not in spec:
        return False
    return spec.split("://", 1)[0].lower() in STREAM_SCHEMES


def _rebuild(url: str, password: str | None, secret: Callable[[str], str | None]) -> str:
    """The URL with its password replaced (None: removed) and each secret query value passed through `secret`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{password}@{hostport}" if has_password and password is not None else f"{user}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in SECRET_QUERY_KEYS for k, _ in pairs):  # else the query stays exactly as written
        kept = [(k, secret(v) if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs]
        query = urlencode([(k, v) for k, v in kept if v is not None], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def display_url(url: str) -> str:
    """The URL as shown anywhere (status bar, messages, snapshots, logs): its password and secret query
    values masked, the user name kept so that the user can tell two logins apart."""
    return _rebuild(url, MASK, lambda _: MASK)


def without_password(url: str) -> str:
    """The URL as remembered in the settings: no password, no secret query values (asked for again)."""
    return _rebuild(url, None, lambda _: None)


def needs_password(url: str) -> bool:
    """A remembered URL with a user name whose password was left out."""
    netloc = urlsplit(url).netloc
    return "@" in netloc and ":" not in netloc.rsplit("@", 1)[0]


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    userinfo, hostport = parts.netloc.rsplit("@", 1)
    return urlunsplit(
        (parts.scheme, f"{userinfo.split(':')[0]}:{password}@{hostport}", parts.path, parts.query, parts.fragment)
    )


def host_of(url: str) -> str:
    """HOST or HOST:PORT, never the user name or password."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def _default_port(scheme: str) -> int:
    return {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}.get(scheme, 80)


class StreamLost(InputError):
    """A stream that was running stopped (cut or stalled): worth reopening."""


class StreamEnded(InputError):
    """A finite stream (a file served over HTTP) reached its end: reopening would only replay it."""


def open_stream_capture(
    url: str, open_timeout_s: float | None = None, read_timeout_s: float | None = None
) -> cv2.VideoCapture:
    """The URL opened through FFmpeg with both timeouts; RTSP over TCP unless the user's own
    OPENCV_FFMPEG_CAPTURE_OPTIONS says otherwise. A failure says why in one line (refused, no answer,
    unknown host, or an answer that is no video)."""
    open_timeout_s = OPEN_TIMEOUT_S if open_timeout_s is None else open_timeout_s
    read_timeout_s = READ_TIMEOUT_S if read_timeout_s is None else read_timeout_s
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout_s * 1000),
    ]
    started = time.perf_counter()
    # FFmpeg reads the variable when the capture is created; the lock keeps two opens from mixing theirs
    with _environment_lock:
        users = os.environ.get(CAPTURE_OPTIONS_ENV)
        rtsp = urlsplit(url).scheme.lower().startswith("rtsp")
        if rtsp and users is None:
            os.environ[CAPTURE_OPTIONS_ENV] = RTSP_OVER_TCP
        try:
            capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        finally:
            if rtsp and users is None:
                os.environ.pop(CAPTURE_OPTIONS_ENV, None)
    if not capture.isOpened():
        capture.release()
        raise InputError(_why_not_opened(url, time.perf_counter() - started, open_timeout_s))
    return capture


def _why_not_opened(url: str, elapsed_s: float, open_timeout_s: float) -> str:
    shown = display_url(url)
    if elapsed_s >= 0.9 * open_timeout_s:
        return f"{shown}: no answer within {open_timeout_s:g} s (is the address right, and the camera on?)"
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        with socket.create_connection((host, parts.port or _default_port(parts.scheme.lower())), timeout=2.0):
            pass
    except socket.gaierror:
        return f"{shown}: unknown host {host!r} (check the address)"
    except ConnectionRefusedError:
        return f"{shown}: connection refused (nothing listens on that port; is the camera's server on?)"
    except OSError as exc:
        return f"{shown}: cannot connect ({exc.strerror or exc})"
    return (
        f"{shown}: the server answered, but with no video OpenCV can read (check the path, "
        "e.g. http://PHONE:8080/video, and any login)"
    )


def read_stream_frame(url: str) -> np.ndarray:
    """The stream's current frame as RGB uint8 (for `render` and `figure`)."""
    capture = open_stream_capture(url)
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise InputError(f"{display_url(url)}: connected, but no frame arrived within {READ_TIMEOUT_S:g} s")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class FrameDemand(Protocol):
    """What the stream's reader asks before decoding a frame, and tells when it skips one."""

    def wants_frame(self) -> bool: ...

    def frame_skipped(self) -> None: ...


class _AlwaysWanted:
    def wants_frame(self) -> bool:
        return True

    def frame_skipped(self) -> None:
        pass


class StreamSource:
    """A network stream read by a thread of its own: it grabs every frame as it arrives (the socket never
    backs up) and decodes one only when `demand` wants a frame, so the frame handed over is the newest.

    `read` never blocks for long: the capture thread stays free for requests while a stream connects or
    stalls. A stream that is cut or stalls raises `StreamLost` from `read` (the capture thread reconnects);
    a finite one (a file over HTTP) is played at its own frame rate and raises `StreamEnded` at its end.
    """

    on_failure = OnFailure.RECONNECT
    paced_by_consumer = False
    READ_WAIT_S = 0.1

    def __init__(self, url: str, demand: FrameDemand | None = None):
        self.url = url
        self.label = display_url(url)
        self.host = host_of(url)
        self.demand = demand or _AlwaysWanted()
        self.finite = False
        self.connected = threading.Event()
        """Set once the stream delivered its first frame since the last (re)connect."""
        self._condition = threading.Condition()
        self._frame: np.ndarray | None = None
        self._failure: InputError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reconnect()

    def reconnect(self) -> None:
        """Open the stream again on a new reader thread (the previous one has ended or is told to)."""
        self._stop.set()
        self._stop = threading.Event()
        with self._condition:
            self._failure, self._frame = None, None
        self.connected.clear()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), daemon=True, name=f"livevis stream {self.host}"
        )
        self._thread.start()

    def read(self, wait_s: float | None = None) -> np.ndarray | None:
        """The newest decoded frame, or None when none came within `wait_s` (default READ_WAIT_S)."""
        with self._condition:
            if self._frame is None and self._failure is None:
                self._condition.wait(self.READ_WAIT_S if wait_s is None else wait_s)
            frame, self._frame = self._frame, None
            if frame is None and self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
        return frame

    def wait_s(self) -> float:
        return 0.0  # `read` waits for the reader thread

    def close(self) -> None:
        """Stops the reader; it lets go of the connection when its current call returns (at most the read
        timeout), without anyone waiting for it."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """For tests and tools: True once the reader thread has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # --- the reader thread ---
    def _run(self, stop: threading.Event) -> None:
        try:
            capture = open_stream_capture(self.url)
        except InputError as exc:
            self._fail(exc, stop)
            return
        try:
            if not stop.is_set():
                self._read_frames(capture, stop)
        except Exception as exc:  # an OpenCV error in a thread nobody joins must still reach the window
            self._fail(StreamLost(f"{self.label}: {type(exc).__name__}: {exc}"), stop)
        finally:
            capture.release()

    def _read_frames(self, capture: cv2.VideoCapture, stop: threading.Event) -> None:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.finite = 0 < count < 1e9
        interval = 1.0 / fps if self.finite and 1 <= fps <= 1000 else 0.0
        grabbed = 0
        next_due = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            if not capture.grab():
                self._fail(self._why_stopped(grabbed, count, time.perf_counter() - started), stop)
                return
            grabbed += 1
            with self._condition:
                wanted = self._frame is None and self.demand.wants_frame()
            if wanted or not self.connected.is_set():
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)  # in place: the decoder's array is ours
                    with self._condition:
                        self._frame = frame
                        self._condition.notify_all()
                    self.connected.set()
            else:
                self.demand.frame_skipped()
            if interval:  # a file over HTTP plays at its own rate, not as fast as it downloads
                next_due = max(next_due + interval, time.perf_counter() - interval)
                stop.wait(max(0.0, next_due - time.perf_counter()))

    def _why_stopped(self, grabbed: int, count: float, elapsed_s: float) -> InputError:
        if self.finite and grabbed >= count - 1:
            return StreamEnded(
                f"{self.label}: the stream ended after {grabbed} frames (a file, not a live "
                "camera); open it again to replay it"
            )
        if elapsed_s >= 0.9 * READ_TIMEOUT_S:
            return StreamLost(f"{self.label}: no frame for {READ_TIMEOUT_S:g} s (the stream stalled)")
        return StreamLost(f"{self.label}: the stream was cut")

    def _fail(self, failure: InputError, stop: threading.Event) -> None:
        if stop.is_set():
            return  # closed or reconnected meanwhile: nobody waits for this reader any more
        with self._condition:
            self._failure = failure
            self._condition.notify_all()
