"""A network camera on 127.0.0.1 for tests and benchmarks: JPEG frames as multipart/x-mixed-replace over HTTP,
as phone apps such as IP Webcam serve them.

It can be stopped (every connection closed) and started again on the same port, stall (connections stay
open, nothing is sent), end after a number of frames, and stamp each frame with the time it is sent.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "frame"
STAMP_BITS = 40
STAMP_ROWS = 2


def stamp_frame(frame: np.ndarray, seconds: float) -> np.ndarray:
    """The frame with `seconds` (in ms, modulo 2**40) as black and white blocks across its top rows."""
    stamped = frame.copy()
    value = int(seconds * 1000) % (1 << STAMP_BITS)
    per_row = STAMP_BITS // STAMP_ROWS
    h, w = frame.shape[:2]
    block_w, block_h = w // per_row, h // 15
    for bit in range(STAMP_BITS):
        row, col = divmod(bit, per_row)
        stamped[row * block_h : (row + 1) * block_h, col * block_w : (col + 1) * block_w] = 255 * ((value >> bit) & 1)
    return stamped


def read_stamp(frame: np.ndarray, now: float) -> float:
    """The send time stamped into a frame (at any scale), as seconds close to `now`."""
    per_row = STAMP_BITS // STAMP_ROWS
    h, w = frame.shape[:2]
    gray = frame.mean(axis=2) if frame.ndim == 3 else frame
    block_w, block_h = w / per_row, h / 15  # the fractions `stamp_frame` drew at
    value = 0
    for bit in range(STAMP_BITS):
        row, col = divmod(bit, per_row)
        if gray[int((row + 0.5) * block_h), int((col + 0.5) * block_w)] > 128:
            value |= 1 << bit
    now_ms = int(now * 1000)
    sent_ms = now_ms - ((now_ms - value) % (1 << STAMP_BITS))
    return sent_ms / 1000


class MjpegServer:
    """Serves `frames` (RGB uint8) in a loop at `fps` to every client of http://127.0.0.1:PORT/video."""

    def __init__(
        self,
        frames: list[np.ndarray],
        fps: float = 15.0,
        *,
        stamp: bool = False,
        frame_limit: int | None = None,
        quality: int = 85,
        login: tuple[str, str] | None = None,
    ):
        """`login`: (user, password) the camera asks for (HTTP Basic), as most IP cameras do."""
        self.frames = frames
        self.login = login
        self.jpegs = [self._encode(f, quality) for f in frames]
        self.fps, self.stamp, self.frame_limit, self.quality = fps, stamp, frame_limit, quality
        self.port = 0
        self.sent = 0
        self.connections = 0
        self._stalled = False
        self._stopping = threading.Event()
        self._changed = threading.Condition()  # a stall, a resume or a stop: stalled handlers look again
        self._server: ThreadingHTTPServer | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _encode(frame: np.ndarray, quality: int) -> bytes:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return jpeg.tobytes()

    def url(self, path: str = "/video", userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def start(self) -> MjpegServer:
        """Listen (again) on the same port as before, or on a free one the first time."""
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every connection, as a phone whose app is closed."""
        with self._changed:
            self._stopping.set()
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._sockets.clear()

    def stall(self, stalled: bool = True) -> None:
        """Keep the connections open but send nothing (a camera that hangs), or resume."""
        with self._changed:
            self._stalled = stalled
            self._changed.notify_all()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stall(False)
        self.stop()

    def _expected_authorization(self) -> str:
        return "Basic " + base64.b64encode(":".join(self.login).encode()).decode()

    def _jpeg(self, index: int) -> bytes:
        if not self.stamp:
            return self.jpegs[index % len(self.jpegs)]
        return self._encode(stamp_frame(self.frames[index % len(self.frames)], time.time()), self.quality)

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/video":
                    self.send_error(404)
                    return
                if owner.login is not None and self.headers.get("Authorization") != owner._expected_authorization():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with owner._lock:
                    owner._sockets.add(self.connection)
                    owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index, due = 0, time.perf_counter()
                try:
                    while not owner._stopping.is_set():
                        if owner._stalled:
                            with owner._changed:
                                owner._changed.wait_for(lambda: not owner._stalled or owner._stopping.is_set())
                            continue
                        if owner.frame_limit is not None and index >= owner.frame_limit:
                            return  # a finite stream: the response ends
                        jpeg = owner._jpeg(index)
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        index += 1
                        owner.sent += 1
                        due += 1 / owner.fps
                        owner._stopping.wait(max(0.0, due - time.perf_counter()))  # the camera's frame rate
                except OSError:
                    pass  # the client went away, or the server was stopped
                finally:
                    with owner._lock:
                        owner._sockets.discard(self.connection)

        return Handler


def silent_port() -> tuple[socket.socket, int]:
    """A listening socket that never accepts: a connection is queued and never answered (a camera that
    hangs on connect). Close the socket when done."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    return listener, listener.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (connecting is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    """Serve a real photo panning by (with --stamp: each frame stamped with its send time) until our input closes."""
    import argparse
    import sys

    from skimage import data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--size", default="640x480", metavar="WxH")
    parser.add_argument("--stamp", action="store_true", help="each frame carries the time it is sent")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    photo = cv2.resize(data.chelsea(), (width + 160, height))
    frames = [np.ascontiguousarray(photo[:, 4 * i : 4 * i + width]) for i in range(40)]
    server = MjpegServer(frames, args.fps, stamp=args.stamp).start()
    print(server.port, flush=True)
    try:
        sys.stdin.read()  # until the benchmark closes our input or ends us
    finally:
        server.stop()


if __name__ == "__main__":
    main()
