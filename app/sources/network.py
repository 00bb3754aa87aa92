"""Network cameras: phones and IP cameras over HTTP (MJPEG or video) and RTSP, read through OpenCV's FFmpeg
backend (OpenCV only, no Qt).

Three things make a network camera usable live. Nothing may hang: the open and read timeouts are passed when
the capture is created (FFmpeg ignores them when set afterwards). Frames must not pile up: a reader thread
grabs every frame as it arrives, so the socket never holds a backlog, and decodes only the frames that will
be shown. And a password in a URL is shown nowhere: every label and message uses `display_url`.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import quote, unquote_plus

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
SECRET_KEY_PARTS = ("pass", "pas", "pwd", "psw", "token", "key", "secret", "auth", "sig", "cred")
"""A query parameter whose name holds one of these carries a credential (pwd=, loginpas=, api_key=, access_token=,
X-Amz-Signature=, ...): its value is masked. Masking a harmless one costs nothing; showing a secret one cannot
be undone."""
MASK = "***"
MALFORMED = "(an address that does not parse)"
"""Shown in place of a URL that does not parse: where its password ends cannot be known, so none of it is shown."""
_AUTHORITY_ENDS = "/?#"
_HOST = re.compile(r"[^\s@:/?#\[\]]+")


def _prefer_rtsp_over_tcp() -> None:
    """FFmpeg reads its capture options from the environment each time a capture is created. They are set
    here once, when this module is first imported (on the main thread, before any reader thread runs), and
    never changed again: a thread that changed them while FFmpeg read them on another could crash it. The
    option only concerns RTSP; HTTP streams and files ignore it. The user's own options win."""
    os.environ.setdefault(CAPTURE_OPTIONS_ENV, RTSP_OVER_TCP)


_prefer_rtsp_over_tcp()


def is_stream_url(spec: object) -> bool:
    """Whether a source spec is a network stream (http, https, rtsp, rtsps, rtmp) rather than a path."""
    if not isinstance(spec, str) or "://" not in spec:
        return False
    return spec.split("://", 1)[0].strip().lower() in STREAM_SCHEMES


class BadStreamUrl(InputError):
    """A stream URL that does not parse. Its message never quotes the URL: where a password typed in it
    ends is exactly what cannot be known."""


@dataclass(frozen=True)
class StreamUrl:
    """A stream URL taken apart by hand rather than by `urllib.parse`, which cuts the authority at the first
    `/`, `?` or `#` and so leaks the rest of a password holding one into the path or the fragment (cameras'
    passwords are typed as they are, not percent-encoded)."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    """A name, an IPv4 address, or an IPv6 address in brackets, as written."""
    port: int | None
    rest: str
    """The path, query and fragment, as written."""

    @property
    def address(self) -> str:
        """HOST or HOST:PORT: what a status line may say about the stream."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def _text(self, user: str | None, password: str | None, rest: str) -> str:
        if user is None:
            login = ""
        elif password is None:
            login = f"{user}@"
        else:
            login = f"{user}:{password}@"
        return f"{self.scheme}://{login}{self.address}{rest}"

    def shown(self) -> str:
        """With the password and the secret query values masked; the user name kept, to tell logins apart."""
        return self._text(self.user, None if self.password is None else MASK, _masked_query(self.rest, MASK))

    def remembered(self) -> str:
        """With no password and no secret query values: what may be written to the settings."""
        return self._text(self.user, None, _masked_query(self.rest, None))

    def with_password(self, password: str) -> StreamUrl:
        return replace(self, user=self.user or "", password=password)

    def typed(self) -> str:
        """The whole URL, password included: for this run only, never shown or written."""
        return self._text(self.user, self.password, self.rest)

    def for_ffmpeg(self) -> str:
        """The URL FFmpeg is given: `/`, `?`, `#` and `@` in the login percent-encoded, so that FFmpeg finds the
        host where the user meant it (it decodes the login before sending it)."""
        encode = functools.partial(quote, safe="!$&'()*+,;=%:-._~")
        user = None if self.user is None else encode(self.user).replace(":", "%3A")
        password = None if self.password is None else encode(self.password)
        return self._text(user, password, self.rest)


def _is_secret_key(key: str) -> bool:
    name = unquote_plus(key).lower()
    return any(part in name for part in SECRET_KEY_PARTS)


def _masked_query(rest: str, mask: str | None) -> str:
    """`rest` with each secret query value replaced by `mask` (None: the parameter left out). The query runs
    to the end: a `#` in a secret value is part of it, not a fragment to be shown."""
    path, has_query, query = rest.partition("?")
    if not has_query:
        return rest
    kept = []
    for pair in query.split("&"):
        key, has_value, _ = pair.partition("=")
        if not (has_value and _is_secret_key(key)):
            kept.append(pair)
        elif mask is not None:
            kept.append(f"{key}={mask}")
    return f"{path}?{'&'.join(kept)}" if kept else path


def _end_of_authority(text: str, start: int = 0) -> int:
    ends = [i for i in (text.find(c, start) for c in _AUTHORITY_ENDS) if i >= 0]
    return min(ends, default=len(text))


def _host_and_port(text: str) -> tuple[str, int | None]:
    """HOST[:PORT] checked; a `BadStreamUrl` that says what is wrong without quoting it."""
    if text.startswith("["):
        address, closed, after = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(address.split("%", 1)[0])
        except ValueError:
            closed = ""
        if not closed or (after and not after.startswith(":")):
            raise BadStreamUrl(
                "the stream URL's IPv6 address does not parse: write it in brackets, e.g. http://[2001:db8::7]:8080/video"
            )
        host, port_text = f"[{address}]", after[1:]
    else:
        host, _, port_text = text.partition(":")
        if not _HOST.fullmatch(host):
            raise BadStreamUrl(
                "the stream URL has no host name or address that parses (e.g. http://PHONE:8080/video, "
                "rtsp://user:pass@CAMERA/stream)"
            )
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise BadStreamUrl("the stream URL's port is not a number from 1 to 65535 (check the address)")
    return host, int(port_text)


def parse_stream_url(url: str) -> StreamUrl:
    """A stream URL taken apart; `BadStreamUrl` where it does not parse.

    The login ends at the last `@` of the authority, and the authority may run past a `/`, `?` or `#` typed
    in a password: where the login has a password (or the text before the first of those characters is no
    HOST[:PORT]), it runs to the last later `@` followed by a host. Masking too much is the safe mistake: a
    URL with a password and an `@` in its query (`?mail=me@home.org`) is read with its login up to there."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator or scheme.lower() not in STREAM_SCHEMES:
        raise BadStreamUrl("not a stream URL: give http://, https:// or rtsp://..., e.g. http://PHONE:8080/video")
    cut = _end_of_authority(rest)
    head = rest[:cut]
    at = head.rfind("@")
    login, address = (head[:at], head[at + 1 :]) if at >= 0 else (None, head)
    failure = None
    try:
        host, port = _host_and_port(address)
    except BadStreamUrl as exc:
        failure = exc
    if ":" in (head if login is None else login):
        for later in (i for i in range(len(rest) - 1, cut, -1) if rest[i] == "@"):
            between = rest[cut:later]
            if login is None and failure is None and ("?" in between or "#" in between or between.endswith("/")):
                continue  # HOST:PORT, no login, and an @ in the path or query: an ordinary URL
            end = _end_of_authority(rest, later + 1)
            try:
                host, port = _host_and_port(rest[later + 1 : end])
            except BadStreamUrl:
                continue
            login, cut, failure = rest[:later], end, None
            break
    if failure is not None:
        raise failure
    user, password = (None, None) if login is None else _split_login(login)
    return StreamUrl(scheme, user, password, host, port, rest[cut:])


def _split_login(login: str) -> tuple[str, str | None]:
    user, has_password, password = login.partition(":")
    return user, password if has_password else None


def check_stream_url(url: str) -> None:
    """Raises `BadStreamUrl` (one line, without the URL) where a stream URL does not parse."""
    parse_stream_url(url)


def display_url(url: str) -> str:
    """The URL as shown anywhere (status bar, messages, snapshots, logs): its password and secret query
    values masked, the user name kept so that the user can tell two logins apart. Never raises: a URL that
    does not parse is shown as MALFORMED."""
    try:
        return parse_stream_url(url).shown()
    except BadStreamUrl:
        return f"{url.split('://', 1)[0].strip()}://{MALFORMED}"


def mask_urls(text: str) -> str:
    """Any text (an exception's message, a traceback) with each stream URL in it shown as `display_url` does."""
    pattern = r"(?i)\b(?:" + "|".join(STREAM_SCHEMES) + r")://[^\s'\"<>]+"
    return re.sub(pattern, lambda match: display_url(match.group(0)), text)


def without_password(url: str) -> str:
    """The URL as remembered in the settings: no password, no secret query values (asked for again)."""
    return parse_stream_url(url).remembered()


def needs_password(url: str) -> bool:
    """A remembered URL with a user name whose password was left out."""
    try:
        parsed = parse_stream_url(url)
    except BadStreamUrl:
        return False
    return parsed.user is not None and parsed.password is None


def with_password(url: str, password: str) -> str:
    """The URL with `password` for its user, the password as typed: FFmpeg gets it encoded (`for_ffmpeg`)."""
    return parse_stream_url(url).with_password(password).typed()


def host_of(url: str) -> str:
    """HOST or HOST:PORT, never the user name or password."""
    try:
        return parse_stream_url(url).address
    except BadStreamUrl:
        return MALFORMED


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
    OPENCV_FFMPEG_CAPTURE_OPTIONS says otherwise. A failure says why in one line (a URL that does not parse,
    refused, no answer, unknown host, or an answer that is no video)."""
    stream = parse_stream_url(url)
    open_timeout_s = OPEN_TIMEOUT_S if open_timeout_s is None else open_timeout_s
    read_timeout_s = READ_TIMEOUT_S if read_timeout_s is None else read_timeout_s
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout_s * 1000),
    ]
    started = time.perf_counter()
    capture = cv2.VideoCapture(stream.for_ffmpeg(), cv2.CAP_FFMPEG, params)
    if not capture.isOpened():
        capture.release()
        raise InputError(_why_not_opened(stream, time.perf_counter() - started, open_timeout_s))
    return capture


def _why_not_opened(stream: StreamUrl, elapsed_s: float, open_timeout_s: float) -> str:
    shown = stream.shown()
    if elapsed_s >= 0.9 * open_timeout_s:
        return f"{shown}: no answer within {open_timeout_s:g} s (is the address right, and the camera on?)"
    host = stream.host.strip("[]")
    try:
        with socket.create_connection((host, stream.port or _default_port(stream.scheme.lower())), timeout=2.0):
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


def _described(exc: Exception) -> str:
    """An unexpected error in one line, any URL in it masked (OpenCV's messages quote the URL they opened)."""
    return mask_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])


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
        stream = parse_stream_url(url)  # a URL that does not parse fails here, before any thread starts
        self.url = url
        self.label = stream.shown()
        self.host = stream.address
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
        # whatever fails here must reach `read` as an InputError: a reader that just died would leave the
        # window saying "connecting" forever, and the capture thread could not retry
        try:
            capture = open_stream_capture(self.url)
        except InputError as exc:
            self._fail(exc, stop)
            return
        except Exception as exc:
            self._fail(StreamLost(f"{self.label}: cannot open it ({_described(exc)})"), stop)
            return
        try:
            if not stop.is_set():
                self._read_frames(capture, stop)
        except Exception as exc:
            self._fail(StreamLost(f"{self.label}: {_described(exc)}"), stop)
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
