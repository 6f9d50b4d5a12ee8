#!/usr/bin/python3
"""A real RTSP camera on loopback for lastframe's pull tests: GStreamer's RTSP
server (Debian's gir1.2-gst-rtsp-server-1.0) serving live H.264.

  rtsp_server.py --port P [--path /cam] [--pattern smpte100] [--size 320x240] [--fps 10]
                 [--reference FILE]

Serves `videotestsrc is-live=true pattern=PATTERN ! x264enc tune=zerolatency
key-int-max=FPS ! rtph264pay` at rtsp://127.0.0.1:P/PATH, over TCP and UDP.
With --reference, first writes one frame of the same pattern, as the encoder
gets it (raw I420, width*height*3/2 bytes), to FILE, for image checks. The
default pattern is static (colour bars, no noise), so any frame is that one. Prints
"rtsp server listening on rtsp://127.0.0.1:P/PATH" once ready; runs until
SIGTERM or SIGINT. Run it with /usr/bin/python3 (another python3 may come
first on PATH).
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def write_reference(path, pattern, width, height):
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers=1 pattern={pattern} ! "
        f"video/x-raw,format=I420,width={width},height={height} ! filesink location={path}")
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type == Gst.MessageType.ERROR:
        raise SystemExit("could not write the reference frame")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--pattern", default="smpte100")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--reference")
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    Gst.init(None)
    if args.reference:
        write_reference(args.reference, args.pattern, width, height)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern={args.pattern} ! "
        f"video/x-raw,width={width},height={height},framerate={args.fps}/1 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} ! "
        f"rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp server listening on rtsp://127.0.0.1:{server.get_bound_port()}{args.path}",
          flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
