"""An RTSP camera on 127.0.0.1 for the tests: the JPEG files of a folder (000.jpg, 001.jpg, ...) in a loop at
15 fps as RTP/JPEG, over TCP only, from Debian's GStreamer RTSP server. Runs under the system Python (its
GObject bindings); prints the port, then serves until terminated.

    /usr/bin/python3 tests/app/rtsp_server.py FOLDER
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
folder = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( multifilesrc location="{folder}/%03d.jpg" loop=true caps=image/jpeg,framerate=15/1 '
    "! jpegdec ! videoconvert ! video/x-raw,format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
)
factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
factory.set_shared(True)
server.get_mount_points().add_factory("/camera", factory)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
