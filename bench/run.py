#!/usr/bin/python3
"""lastframe's snapshot benchmark: one command, every figure of BENCHMARKS.md.

  bench/run.py [--runs N] [--quick]

Generates the clips with ffmpeg, then measures on this machine, in one run:
floor (Google Benchmark, in process), the recipe's method (OpenCV), the ffmpeg
CLI (-sseof), lastframe cold and warm over HTTP, lastframe under load (wrk),
memory per stream; and prints a Markdown report with medians and ratios.
Needs a RelWithDebInfo build in build/ (make build) and: python3-opencv, wrk.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "src", "app", "lastframe")
BENCH = os.path.join(ROOT, "build", "bench", "lf_snapshot_bench")

# name, description, ffmpeg encoding arguments
PROFILES = [
    ("p480", "640x480 5 fps 1 Mbps GOP 10 (the recipe's stream), 6 s",
     ["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=5", "-t", "6", "-c:v", "libx264",
      "-b:v", "1M", "-g", "10", "-bf", "0", "-sc_threshold", "0", "-pix_fmt", "yuv420p"]),
    ("p1080", "1920x1080 30 fps 4 Mbps GOP 60, no B-frames, 4 s",
     ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", "4", "-c:v", "libx264",
      "-preset", "veryfast", "-b:v", "4M", "-g", "60", "-bf", "0", "-sc_threshold", "0",
      "-pix_fmt", "yuv420p"]),
    ("p1080b", "1920x1080 30 fps 4 Mbps GOP 60, B-frames, 4 s",
     ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", "4", "-c:v", "libx264",
      "-preset", "veryfast", "-b:v", "4M", "-g", "60", "-bf", "3", "-sc_threshold", "0",
      "-pix_fmt", "yuv420p"]),
    ("p2160", "3840x2160 30 fps 16 Mbps GOP 60, 2 s",
     ["-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30", "-t", "2", "-c:v", "libx264",
      "-preset", "ultrafast", "-b:v", "16M", "-g", "60", "-bf", "0", "-sc_threshold", "0",
      "-pix_fmt", "yuv420p"]),
]


def ms(seconds):
    return seconds * 1000.0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def make_clips(dirname, profiles):
    for name, _, args in profiles:
        path = os.path.join(dirname, name + ".mkv")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, path],
                       check=True)


def floor(clips_dir, runs):
    env = dict(os.environ, LASTFRAME_BENCH_CLIPS=clips_dir)
    out = subprocess.run([BENCH, "--benchmark_format=json",
                          f"--benchmark_repetitions={runs}",
                          "--benchmark_report_aggregates_only=true"],
                         env=env, check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            result[b["run_name"].replace("/real_time", "")] = b["real_time"]  # ms
    return result


BENCH_KEY, BENCH_SECRET = "LFBENCHKEY", "bench-secret-not-for-production"


def recipe(clip, runs, server=None):
    """The recipe's method; with |server|, its boto3 upload and presign go to that
    lastframe's embedded S3 store over loopback (the recipe used AWS S3)."""
    upload = [f"http://127.0.0.1:{server.port}", "lastframe", BENCH_KEY,
              BENCH_SECRET] if server else []
    out = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "recipe_method.py"),
                          clip, str(runs), *upload], check=True, capture_output=True,
                         text=True).stdout
    return median([ms(float(x)) for x in out.split()])


def ffmpeg_cli(clip, runs, out_dir):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-sseof", "-3",
                        "-i", clip, "-update", "1", "-q:v", "4",
                        os.path.join(out_dir, "last.jpg")], check=True)
        times.append(ms(time.perf_counter() - start))
    return median(times)


class Server:
    started = []  # every server, so that a failed run stops them too

    def __init__(self, data_dir, extra=()):
        os.makedirs(data_dir, exist_ok=True)
        self.log = open(os.path.join(data_dir, "server.log"), "w+")
        # Default log level: one line per request, as users run it.
        self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                                      data_dir, "--retention", "3600", "--access-key",
                                      BENCH_KEY, "--secret-key", BENCH_SECRET,
                                      "--unsigned-putmedia", *extra],
                                     stderr=self.log, stdout=self.log)
        Server.started.append(self)
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.port is None:
            with open(self.log.name) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise SystemExit("lastframe did not start")

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def push(self, stream, data):
        c = self.conn()
        c.request("POST", "/putMedia", body=data, headers={"x-amzn-stream-name": stream})
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or b"ERROR" in body:
            raise SystemExit(f"push failed: {r.status} {body[:200]}")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def timed_get(conn, path):
    start = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    elapsed = ms(time.perf_counter() - start)
    if r.status != 200:
        raise SystemExit(f"GET {path}: {r.status} {body[:200]}")
    return elapsed


def metric(server, name):
    c = server.conn()
    c.request("GET", "/metrics")
    m = re.search(rf"^{name} ([\d.]+)$", c.getresponse().read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def wait_for_catch_ups(server, before):
    """A cold look at a long GOP leaves the stream's decoder to catch up in the
    background: let it finish, so that it does not weigh on the next figure."""
    deadline = time.time() + 5
    while time.time() < deadline:
        if metric(server, "lastframe_warm_decoder_catch_ups_total") > before:
            return
        time.sleep(0.05)


def lastframe_cold_warm(server, name, data, runs):
    cold, warm = [], []
    for i in range(runs):
        stream = f"{name}-{i}"
        server.push(stream, data)
        c = server.conn()
        catch_ups = metric(server, "lastframe_warm_decoder_catch_ups_total")
        cold_starts = metric(server, "lastframe_warm_decoder_cold_starts_total")
        cold.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
        for _ in range(10):
            warm.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
        if metric(server, "lastframe_warm_decoder_cold_starts_total") > cold_starts:
            wait_for_catch_ups(server, catch_ups)
    return median(cold), median(warm)


def kvs_source_cold_warm(origin, node, data, runs):
    """A clip pushed to |origin|, looked at through |node| (--source kvs): the first look
    (cold, over the Kinesis Video API), then looks once the node follows the stream."""
    cold, warm = [], []
    for i in range(runs):
        stream = f"kvs-{i}"
        origin.push(stream, data)
        c = node.conn()
        cold.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
        # The follower connects in the background: wait until looks stop changing fragment.
        deadline = time.time() + 10
        while time.time() < deadline:
            c.request("GET", f"/v1/streams/{stream}/snapshot")
            first = json.loads(c.getresponse().read())["fragment_number"]
            c.request("GET", f"/v1/streams/{stream}/snapshot")
            if json.loads(c.getresponse().read())["fragment_number"] == first:
                break
        for _ in range(10):
            warm.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
    return median(cold), median(warm)


def live_producer(server, stream, seconds):
    """ffmpeg pushing the recipe's profile in real time, as a camera does."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc2=size=640x480:rate=5", "-t", str(seconds), "-c:v", "libx264", "-b:v", "1M",
         "-g", "10", "-bf", "0", "-tune", "zerolatency", "-f", "matroska", "-live", "1",
         "-cluster_time_limit", "100", "-flush_packets", "1", "-method", "POST",
         "-chunked_post", "1", "-headers", f"x-amzn-stream-name: {stream}\r\n",
         f"http://127.0.0.1:{server.port}/putMedia"])


def live_warm(server, seconds):
    """Looks every 50 ms at a live stream: split by whether a new frame had arrived."""
    producer = live_producer(server, "live480", seconds + 5)
    c = server.conn()
    deadline = time.time() + 20
    while time.time() < deadline:
        c.request("GET", "/v1/streams/live480/snapshot")
        r = c.getresponse()
        r.read()
        if r.status == 200:
            break
        time.sleep(0.05)
    new, same = [], []
    last = None
    end = time.time() + seconds
    while time.time() < end:
        start = time.perf_counter()
        c.request("GET", "/v1/streams/live480/snapshot")
        r = c.getresponse()
        body = json.loads(r.read())
        elapsed = ms(time.perf_counter() - start)
        (new if body["frame_timestamp_ms"] != last else same).append(elapsed)
        last = body["frame_timestamp_ms"]
        time.sleep(0.05)
    producer.kill()
    producer.wait()
    return median(new[1:]), median(same), len(new) - 1


def first_look_warm_all(server, runs):
    """With --warm-all: first looks (new options each time) at a live stream."""
    producer = live_producer(server, "warmall", 30)
    c = server.conn()
    deadline = time.time() + 20
    while time.time() < deadline:
        c.request("GET", "/v1/streams/warmall")
        r = c.getresponse()
        info = json.loads(r.read())
        if r.status == 200 and info.get("fragment_count", 0) >= 2:
            break
        time.sleep(0.05)
    times = []
    for i in range(runs):
        time.sleep(0.3)  # let a frame or two arrive and be decoded ahead of the look
        times.append(timed_get(c, f"/v1/streams/warmall/snapshot?quality={60 + i}"))
    producer.kill()
    producer.wait()
    return median(times)


WRK_SCRIPT = """
local streams = %d
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/streams/load-" .. (i %% streams) .. "/snapshot")
end
"""


def load(server, data, streams, seconds, clients):
    for i in range(streams):
        server.push(f"load-{i}", data)
    rss_pushed = server.rss_kib()
    c = server.conn()
    for i in range(streams):  # first looks: the load below measures warm looks
        timed_get(c, f"/v1/streams/load-{i}/snapshot")
    rss_looked = server.rss_kib()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % streams)
        script = f.name
    cpu0 = server.cpu_seconds()
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{server.port}"],
                         check=True, capture_output=True, text=True).stdout
    cpu = (server.cpu_seconds() - cpu0) / seconds
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "cpu": cpu,
            "rss_pushed": rss_pushed, "per_decoder": (rss_looked - rss_pushed) / streams,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="the recipe profile only")
    ap.add_argument("--load-seconds", type=int, default=10)
    args = ap.parse_args()
    for tool in (BIN, BENCH):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: run `make build` first")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk missing: apt-get install wrk python3-opencv")
    profiles = PROFILES[:1] if args.quick else PROFILES
    work = tempfile.mkdtemp(prefix="lastframe-bench-")
    try:
        clips = os.path.join(work, "clips")
        os.makedirs(clips)
        make_clips(clips, profiles)
        floors = floor(clips, args.runs)
        server = Server(os.path.join(work, "data"))
        rss0 = server.rss_kib()
        rows = []
        for name, desc, _ in profiles:
            clip = os.path.join(clips, name + ".mkv")
            with open(clip, "rb") as f:
                data = f.read()
            cold, warm = lastframe_cold_warm(server, name, data, args.runs)
            rows.append({
                "name": name, "desc": desc,
                "floor1": floors.get(f"floor/{name}/threads:1", float("nan")),
                "floor2": floors.get(f"floor/{name}/threads:2", float("nan")),
                "encode": floors.get(f"encode/{name}", float("nan")),
                "recipe": recipe(clip, args.runs),
                "recipe_upload": recipe(clip, args.runs, server),
                "ffmpeg": ffmpeg_cli(clip, args.runs, work),
                "cold": cold, "warm": warm,
            })
        new_frame, same_frame, new_samples = live_warm(server, 8)
        # The same looks with images going to a remote S3 store: a second lastframe's
        # embedded store, so the hop (SigV4, HTTP PUT, MD5 and SHA-256) is what differs.
        remote = Server(os.path.join(work, "data-remote"),
                        ["--store", "s3://lastframe/remote", "--s3-endpoint",
                         f"http://127.0.0.1:{server.port}", "--s3-access-key", BENCH_KEY,
                         "--s3-secret-key", BENCH_SECRET])
        with open(os.path.join(clips, "p480.mkv"), "rb") as f:
            remote_cold, remote_warm = lastframe_cold_warm(remote, "p480", f.read(), args.runs)
        remote.stop()
        # Snapshots through Kinesis Video's API: a second lastframe with --source kvs reading
        # the first one (cold: ListFragments + GetMediaForFragmentList; then a followed GetMedia).
        kvs_node = Server(os.path.join(work, "data-kvs"),
                          ["--source", "kvs", "--kvs-endpoint", f"http://127.0.0.1:{server.port}",
                           "--kvs-access-key", BENCH_KEY, "--kvs-secret-key", BENCH_SECRET])
        with open(os.path.join(clips, "p480.mkv"), "rb") as f:
            kvs_cold, kvs_warm = kvs_source_cold_warm(server, kvs_node, f.read(), args.runs)
        kvs_node.stop()
        server.stop()
        server = Server(os.path.join(work, "data-warm-all"), ["--warm-all"])
        warm_all_first = first_look_warm_all(server, args.runs)
        server.stop()
        # Load and memory on a fresh server: 50 streams of the recipe's profile.
        server = Server(os.path.join(work, "data-load"))
        idle_rss0 = server.rss_kib()
        with open(os.path.join(clips, "p480.mkv"), "rb") as f:
            p480 = f.read()
        loaded = load(server, p480, 50, args.load_seconds, 50)
        per_stream = (loaded["rss_pushed"] - idle_rss0) / 50
        server.stop()
    finally:
        for s in Server.started:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        shutil.rmtree(work, ignore_errors=True)

    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    print(f"Machine: {os.cpu_count()} cores, {model.group(1) if model else 'unknown CPU'}; "
          f"medians of {args.runs} runs; all times in ms.\n")
    print("| clip | floor 1 thr | floor 2 thr | JPEG encode | recipe method | recipe + upload | "
          "ffmpeg CLI | lastframe cold | lastframe warm, same frame | recipe / cold | "
          "recipe + upload / cold | ffmpeg / cold | cold / floor 2 thr |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['desc']} | {r['floor1']:.1f} | {r['floor2']:.1f} | {r['encode']:.1f} | "
              f"{r['recipe']:.1f} | {r['recipe_upload']:.1f} | {r['ffmpeg']:.1f} | "
              f"{r['cold']:.1f} | {r['warm']:.2f} | {r['recipe'] / r['cold']:.2f}x | "
              f"{r['recipe_upload'] / r['cold']:.2f}x | {r['ffmpeg'] / r['cold']:.1f}x | "
              f"{r['cold'] / r['floor2']:.2f}x |")
    print()
    print(f"Remote S3 store (--store s3://, a second lastframe's embedded store on loopback), "
          f"640x480: cold {remote_cold:.1f} ms (local store {rows[0]['cold']:.1f} ms), warm "
          f"same frame {remote_warm:.2f} ms (local {rows[0]['warm']:.2f} ms).")
    print()
    print(f"Through Kinesis Video's API (--source kvs, reading a second lastframe on loopback), "
          f"640x480: cold {kvs_cold:.1f} ms (GetDataEndpoint, ListFragments, "
          f"GetMediaForFragmentList, decode, encode; local cold {rows[0]['cold']:.1f} ms), warm "
          f"{kvs_warm:.2f} ms (a followed GetMedia; local {rows[0]['warm']:.2f} ms); "
          f"recipe method {rows[0]['recipe']:.1f} ms: {rows[0]['recipe'] / kvs_cold:.2f}x the "
          f"cold look.")
    print()
    print(f"Load: 50 streams (640x480), 50 connections, {args.load_seconds} s of wrk, warm "
          f"(same frame): {loaded['rps']:.0f} snapshots/s, p50 {loaded['p50']:.2f} ms, "
          f"p99 {loaded['p99']:.2f} ms, server CPU {loaded['cpu'] * 100:.0f}% of one core, "
          f"non-2xx {loaded['non2xx']}, socket errors {loaded['socket_errors']}.")
    print(f"Live 640x480 5 fps stream pushed by ffmpeg in real time, looked at every 50 ms for "
          f"8 s: a look at a new frame (warm decoder: decode the new frame, encode, store, sign) "
          f"{new_frame:.2f} ms median over {new_samples} new frames; same frame again "
          f"{same_frame:.2f} ms.")
    print(f"First looks with --warm-all at a live 640x480 stream (decoder fed as frames arrive): "
          f"{warm_all_first:.2f} ms median.")
    print(f"Memory: {per_stream:.0f} KiB RSS per idle stream holding a 6 s 640x480 clip; "
          f"{loaded['per_decoder']:.0f} KiB more per warm decoder and cached image "
          f"(server idle RSS {idle_rss0 / 1024:.1f} MiB).")


if __name__ == "__main__":
    sys.exit(main())
