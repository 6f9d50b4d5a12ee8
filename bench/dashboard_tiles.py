#!/usr/bin/python3
"""What a page of dashboard tiles costs the server, measured: CPU and bytes per tile still.

  bench/dashboard_tiles.py [--streams 100] [--binary build/src/app/lastframe]

Starts lastframe (--auth off, memory only) on a free port, pushes a 10 s clip (640x480 H.264,
a keyframe a second, ffmpeg's testsrc2) to N streams, then asks for every stream's tile still
as the dashboard does (latest.webp?width=320&mode=keyframe), then the same frames again (the
image cache answers), and for comparison the exact newest frame and 640 px stills. Prints the
server's CPU time (utime + stime from /proc) per still and the bytes of each. A page of N live
tiles costs the server N stills per GOP: N x (CPU per still) / (GOP in seconds) of a core.
"""
import argparse
import concurrent.futures
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROUNDS = (("tile: webp 320 px, mode=keyframe", "width=320&mode=keyframe"),
          ("webp 320 px, newest frame", "width=320"),
          ("webp 640 px, newest frame", "width=640"))


def measure(binary, streams):
    """[{label, cached, cpu_ms, kib}] for each kind of still, asked of |streams| streams at once,
    then again (the image cache answers)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="lf-tiles-") as tmp:
        clip = os.path.join(tmp, "clip.mkv")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=640x480:rate=10", "-t", "10", "-c:v", "libx264", "-g", "10",
                        "-bf", "0", "-pix_fmt", "yuv420p", "-f", "matroska", clip], check=True)
        port = free_port()
        server = subprocess.Popen([binary, "serve", "--auth", "off", "--listen",
                                   f"127.0.0.1:{port}", "--data-dir", os.path.join(tmp, "data"),
                                   "--retention", "600", "--no-persist"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(base + "/healthz").read()
                    break
                except OSError:
                    time.sleep(0.05)  # the server is starting
            body = open(clip, "rb").read()
            names = [f"cam{i:03d}" for i in range(streams)]
            for name in names:
                urllib.request.urlopen(urllib.request.Request(
                    base + "/putMedia", data=body, method="POST",
                    headers={"x-amzn-stream-name": name})).read()

            def cpu_s():
                fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

            def fetch(url):
                with urllib.request.urlopen(url) as r:
                    return len(r.read())

            for label, query in ROUNDS:
                urls = [f"{base}/v1/streams/{n}/latest.webp?{query}" for n in names]
                for cached in (False, True):
                    before = cpu_s()
                    with concurrent.futures.ThreadPoolExecutor(4) as pool:
                        sizes = list(pool.map(fetch, urls))
                    out.append({"label": label, "cached": cached,
                                "cpu_ms": 1000 * (cpu_s() - before) / len(urls),
                                "kib": sum(sizes) / len(sizes) / 1024})
        finally:
            server.terminate()
            server.wait()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "src", "app", "lastframe"))
    args = ap.parse_args()
    print(f"{args.streams} streams, 640x480 H.264, {os.cpu_count()} cores")
    for r in measure(args.binary, args.streams):
        print(f"{r['label']}{' (again: cached)' if r['cached'] else ''}: "
              f"{r['cpu_ms']:.2f} ms CPU per still, {r['kib']:.1f} KiB each")


if __name__ == "__main__":
    sys.exit(main())
