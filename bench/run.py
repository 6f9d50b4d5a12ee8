#!/usr/bin/python3
"""lastframe's snapshot benchmark: one command, every figure of BENCHMARKS.md.

  bench/run.py [--runs N] [--quick] [--output FILE]

Generates the clips with ffmpeg, then measures on this machine, in one run: the
floor (Google Benchmark, in process), the recipe's method (OpenCV), the ffmpeg
CLI (every frame encoded, and the last frame only), lastframe cold and warm over
HTTP, live streams with the recipe end to end against lastframe's own Kinesis
Video and S3 APIs, a remote store, --source kvs, load (wrk) and memory; then
writes BENCHMARKS.md (the figures, the targets table, what each one measures).
--quick (CI): the recipe's profile, short phases, the report on standard output.
Needs a RelWithDebInfo build in build/ (make build) and scripts/install-deps.sh.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import dashboard_tiles  # bench/dashboard_tiles.py: what dashboard tiles cost the server
import ingest_load  # bench/ingest_load.py: ingest at scale (issue 14), run on its own

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "src", "app", "lastframe")
BENCH = os.path.join(ROOT, "build", "bench", "lf_snapshot_bench")
METRICS_BENCH = os.path.join(ROOT, "build", "bench", "lf_metrics_bench")
CHECKSUM_BENCH = os.path.join(ROOT, "build", "bench", "lf_checksum_bench")

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
    result, counters = {}, {}
    for b in json.loads(out)["benchmarks"]:
        # One repetition reports no aggregates: its one run is the figure.
        if b.get("aggregate_name") == "median" or (runs == 1 and b["run_type"] == "iteration"):
            name = b["run_name"].replace("/real_time", "")
            result[name] = b["real_time"]  # ms
            if "bytes" in b:
                counters[name] = b["bytes"]
    return result, counters


# The stills of issue 16 (bench/snapshot_bench.cpp's still/p480/..., preview/p480/...): label,
# size, benchmark, the baseline it is set against.
STILLS = [
    ("JPEG q80 (baseline)", "640x480", "still/p480/jpeg", "still/p480/jpeg", 1),
    ("PNG", "640x480", "still/p480/png", "still/p480/jpeg", 1),
    ("WebP q80", "640x480", "still/p480/webp", "still/p480/jpeg", 1),
    ("AVIF q80", "640x480", "still/p480/avif", "still/p480/jpeg", 1),
    ("JPEG q80, `width=320` (baseline)", "320x240", "still/p480/jpeg/w320",
     "still/p480/jpeg/w320", 1),
    ("PNG, `width=320`", "320x240", "still/p480/png/w320", "still/p480/jpeg/w320", 1),
    ("WebP q80, `width=320`", "320x240", "still/p480/webp/w320", "still/p480/jpeg/w320", 1),
    ("AVIF q80, `width=320`", "320x240", "still/p480/avif/w320", "still/p480/jpeg/w320", 1),
    ("JPEG q80, `fit=cover` 320x320", "320x320", "still/p480/jpeg/cover320x320",
     "still/p480/jpeg/w320", 1),
    ("JPEG q80, `rotate=90`", "480x640", "still/p480/jpeg/rotate90", "still/p480/jpeg", 1),
    ("JPEG q80, a 29-character label (`overlay=time`)", "640x480", "still/p480/jpeg/overlay",
     "still/p480/jpeg", 1),
    ("animated WebP q60 (previews' default), 10 frames", "320x240", "preview/p480/webp/10x320",
     "still/p480/jpeg/w320", 10),
    ("GIF, 10 frames", "320x240", "preview/p480/gif/10x320", "still/p480/jpeg/w320", 10),
]


def benchmark_medians(binary, runs):
    """The median aggregates of a Google Benchmark binary's runs, by run name."""
    out = subprocess.run([binary, "--benchmark_format=json",
                          f"--benchmark_repetitions={max(runs, 2)}",
                          "--benchmark_report_aggregates_only=true"],
                         check=True, capture_output=True, text=True).stdout
    return {b["run_name"]: b for b in json.loads(out)["benchmarks"]
            if b.get("aggregate_name") == "median"}


def metrics_cost(runs):
    """Nanoseconds per counting operation (bench/metrics_bench.cpp), medians."""
    return {name.replace("/real_time", ""): b["real_time"]
            for name, b in benchmark_medians(METRICS_BENCH, runs).items()}


def checksum_speed(runs):
    """Bytes per second of each S3 checksum over 1 MiB (bench/checksum_bench.cpp), medians."""
    return {name.replace("BM_Checksum/", ""): b["bytes_per_second"]
            for name, b in benchmark_medians(CHECKSUM_BENCH, runs).items()}


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


def ffmpeg_cli(clip, runs, out_dir, last_only):
    """The ffmpeg CLI as a process, as scripts spawn it, seeking to the last 3 s. Without
    |last_only| it is the usual one-liner (-update 1), which JPEG-encodes every frame of those
    3 s and keeps the last; with it, only the last frame is encoded (-vf reverse -frames:v 1)."""
    out = os.path.join(out_dir, "last.jpg")
    tail = (["-vf", "reverse", "-frames:v", "1"] if last_only else ["-update", "1"])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-sseof", "-3",
                        "-i", clip, *tail, "-q:v", "4", out], check=True)
        times.append(ms(time.perf_counter() - start))
    return median(times)


class KeyedConnection(http.client.HTTPConnection):
    """A connection whose requests to lastframe's own routes carry an API key (access
    control is on, as users run it); object URLs carry their own signature."""

    def __init__(self, port, token):
        super().__init__("127.0.0.1", port, timeout=60)
        self.token = token

    def request(self, method, url, body=None, headers=None, **kw):
        headers = dict(headers or {})
        if url.startswith(("/v1/", "/snapshot", "/metrics")):
            headers.setdefault("Authorization", f"Bearer {self.token}")
        super().request(method, url, body=body, headers=headers, **kw)


class Server:
    started = []  # every server, so that a failed run stops them too

    def __init__(self, data_dir, extra=()):
        os.makedirs(data_dir, exist_ok=True)
        self.token = subprocess.run([BIN, "keys", "create", "--data-dir", data_dir, "--role",
                                     "admin", "--label", "bench"], check=True,
                                    capture_output=True, text=True).stdout.strip()
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
        return KeyedConnection(self.port, self.token)

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
    (cold, over the Kinesis Video API), then looks answered by the node's GetMedia follower.
    The follower is proven by the node's metrics, not assumed: the warm looks are timed only
    once a look was answered warm, and each must add a warm answer and no cold fetch."""
    cold, warm = [], []
    proof = {"warm_answers": 0, "cold_fetches_during_warm": 0, "follower_fragments": 0}
    for i in range(runs):
        stream = f"kvs-{i}"
        origin.push(stream, data)
        c = node.conn()
        cold.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
        answered = metric(node, "lastframe_kvs_warm_answers_total")
        deadline = time.time() + 20
        while metric(node, "lastframe_kvs_warm_answers_total") == answered:
            if time.time() > deadline:
                raise SystemExit(f"--source kvs: no look at {stream} was answered by its follower")
            timed_get(c, f"/v1/streams/{stream}/snapshot")
            time.sleep(0.05)
        answers = metric(node, "lastframe_kvs_warm_answers_total")
        fetches = metric(node, "lastframe_kvs_cold_fetches_total")
        for _ in range(10):
            warm.append(timed_get(c, f"/v1/streams/{stream}/snapshot"))
        added = metric(node, "lastframe_kvs_warm_answers_total") - answers
        fetched = metric(node, "lastframe_kvs_cold_fetches_total") - fetches
        if added != 10 or fetched != 0:
            raise SystemExit(f"--source kvs: of 10 warm looks {added:.0f} came from the follower "
                             f"and {fetched:.0f} fetched cold")
        proof["warm_answers"] += added
        proof["cold_fetches_during_warm"] += fetched
    proof["follower_fragments"] = metric(node, "lastframe_kvs_follower_fragments_total")
    return median(cold), median(warm), proof


def live_producer(server, stream, seconds):
    """ffmpeg pushing the recipe's profile in real time, as a camera does."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc2=size=640x480:rate=5", "-t", str(seconds), "-c:v", "libx264", "-b:v", "1M",
         "-g", "10", "-bf", "0", "-tune", "zerolatency", "-f", "matroska", "-live", "1",
         "-cluster_time_limit", "100", "-flush_packets", "1", "-method", "POST",
         "-chunked_post", "1", "-headers", f"x-amzn-stream-name: {stream}\r\n",
         f"http://127.0.0.1:{server.port}/putMedia"])


def wait_for_fragments(server, stream, count, seconds=30):
    c = server.conn()
    deadline = time.time() + seconds
    while time.time() < deadline:
        c.request("GET", f"/v1/streams/{stream}")
        r = c.getresponse()
        info = json.loads(r.read())
        if r.status == 200 and info.get("fragment_count", 0) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"live stream {stream} did not reach {count} fragments")


def recipe_end_to_end(server, streams, runs):
    """The recipe's function against this server's own Kinesis Video and S3 APIs, on live
    streams: warm (one process, clients kept, the first invocation left out) and cold (a new
    Python process per invocation, timed from spawn to exit, as a cold function start)."""
    script = os.path.join(ROOT, "bench", "recipe_kvs.py")
    base = ["/usr/bin/python3", script, f"http://127.0.0.1:{server.port}"]
    out = subprocess.run([*base, streams[0], str(runs + 1), BENCH_KEY, BENCH_SECRET], check=True,
                         capture_output=True, text=True).stdout.split("\n")
    lines = [l.split() for l in out if l.strip()]
    warm = [ms(float(t)) for t, _ in lines[1:]]
    check_image_url(lines[-1][1])
    cold = []
    for i in range(runs):
        start = time.perf_counter()
        r = subprocess.run([*base, streams[i % len(streams)], "1", BENCH_KEY, BENCH_SECRET],
                           check=True, capture_output=True, text=True)
        cold.append(ms(time.perf_counter() - start))
        check_image_url(r.stdout.split()[1])
    return median(warm), median(cold)


def check_image_url(url):
    """A URL the recipe or lastframe handed out must give a JPEG, or the figure means nothing."""
    m = re.match(r"http://127\.0\.0\.1:(\d+)(/.*)", url)
    c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=30)
    c.request("GET", m.group(2))
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or not body.startswith(b"\xff\xd8"):
        raise SystemExit(f"{url}: {r.status}, not a JPEG")


def live_section(server, runs, look_seconds):
    """Live 640x480 5 fps streams pushed by ffmpeg in real time, one per run: lastframe's first
    look at each (cold), then looks every 50 ms at one of them split by whether a new frame had
    arrived; and the recipe end to end on the same streams."""
    streams = [f"live-{i}" for i in range(runs)]
    producers = [live_producer(server, s, 120) for s in streams]
    try:
        for s in streams:
            wait_for_fragments(server, s, 2)  # the recipe's GetClip of 3 s has whole fragments
        c = server.conn()
        cold = []
        for s in streams:
            start = time.perf_counter()
            c.request("GET", f"/v1/streams/{s}/snapshot")
            r = c.getresponse()
            body = json.loads(r.read())
            cold.append(ms(time.perf_counter() - start))
            if r.status != 200:
                raise SystemExit(f"first look at {s}: {r.status} {body}")
            check_image_url(body["url"])
        new, same = [], []
        last = None
        end = time.time() + look_seconds
        while time.time() < end:
            start = time.perf_counter()
            c.request("GET", f"/v1/streams/{streams[0]}/snapshot")
            body = json.loads(c.getresponse().read())
            elapsed = ms(time.perf_counter() - start)
            if last is not None:
                (new if body["frame_timestamp_ms"] != last else same).append(elapsed)
            last = body["frame_timestamp_ms"]
            time.sleep(0.05)
        recipe_warm, recipe_cold = recipe_end_to_end(server, streams, runs)
    finally:
        for p in producers:
            p.kill()
            p.wait()
    return {"cold": median(cold), "new": median(new), "same": median(same),
            "new_samples": len(new), "recipe_warm": recipe_warm, "recipe_cold": recipe_cold}


WRK_SCRIPT = """
local streams = %d
local headers = { ["Authorization"] = "Bearer %s" }
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/streams/load-" .. (i %% streams) .. "/snapshot", headers)
end
"""


def signed_put(server, key, body, headers):
    """PUT /lastframe/KEY signed by botocore's SigV4 signer; (seconds, response)."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    url = f"http://127.0.0.1:{server.port}/lastframe/{key}"
    req = botocore.awsrequest.AWSRequest("PUT", url, data=b"", headers=dict(headers))
    # SigV4Auth signs the x-amz-content-sha256 given (S3SigV4Auth would hash the empty body).
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(BENCH_KEY, BENCH_SECRET), "s3",
                            "us-east-1").add_auth(req)
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    sent = dict(req.headers.items())
    sent["Content-Length"] = str(len(body))
    t0 = time.perf_counter()
    c.request("PUT", f"/lastframe/{key}", body=body, headers=sent)
    r = c.getresponse()
    answer = (r.status, dict(r.getheaders()), r.read())
    elapsed = time.perf_counter() - t0
    c.close()
    if answer[0] != 200:
        raise SystemExit(f"PUT {key}: {answer[0]} {answer[2][:300]}")
    return elapsed, answer


def uploads(server, runs, work):
    """A 32 MiB object PUT to the embedded store, plain and as current SDKs send it
    (aws-chunked, CRC32 trailer), against writing the same bytes to a file."""
    import base64
    import hashlib
    import zlib
    data = os.urandom(32 << 20)
    md5 = hashlib.md5(data).hexdigest()
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    chunk = 64 << 10
    framed = b"".join(b"%x\r\n" % len(data[i:i + chunk]) + data[i:i + chunk] + b"\r\n"
                      for i in range(0, len(data), chunk))
    framed += b"0\r\nx-amz-checksum-crc32:" + crc32.encode() + b"\r\n\r\n"
    out = {"file": [], "plain": [], "plain_cpu": [], "chunked": [], "chunked_cpu": []}
    for i in range(runs):
        path = os.path.join(work, f"upload-floor-{i}")
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            f.write(data)
        out["file"].append(time.perf_counter() - t0)
        os.unlink(path)
        cpu0 = server.cpu_seconds()
        took, answer = signed_put(server, f"bench/plain-{i}", data,
                                  {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        out["plain_cpu"].append(server.cpu_seconds() - cpu0)
        out["plain"].append(took)
        if answer[1].get("ETag") != f'"{md5}"':
            raise SystemExit(f"plain PUT: ETag {answer[1].get('ETag')}, not the MD5 {md5}")
        cpu0 = server.cpu_seconds()
        took, answer = signed_put(server, f"bench/chunked-{i}", framed, {
            "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
            "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"})
        out["chunked_cpu"].append(server.cpu_seconds() - cpu0)
        out["chunked"].append(took)
        if answer[1].get("x-amz-checksum-crc32") != crc32 or answer[1].get("ETag") != f'"{md5}"':
            raise SystemExit(f"aws-chunked PUT: {answer[1]}, not CRC32 {crc32} and MD5 {md5}")
    return {k: median(v) for k, v in out.items()}


def load(server, data, streams, seconds, clients):
    for i in range(streams):
        server.push(f"load-{i}", data)
    rss_pushed = server.rss_kib()
    c = server.conn()
    for i in range(streams):  # first looks: the load below measures warm looks
        timed_get(c, f"/v1/streams/load-{i}/snapshot")
    rss_looked = server.rss_kib()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (streams, server.token))
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


COLUMNS = """\
What each figure measures (all times are wall-clock milliseconds, medians of the runs):

- **floor 1 thr / floor 2 thr**: `build/bench/lf_snapshot_bench` (Google Benchmark, in process):
  decode the clip's last fragment from its keyframe to its last frame with 1 and 2 decoder
  threads, plus one JPEG q80 encode. **JPEG encode**: that encode alone.
- **recipe method (file)**: the recipe's decode step on this machine, `bench/recipe_method.py`:
  Debian's python3-opencv opens the local clip, seeks to its last frame, reads it, writes a
  JPEG 80 (no Kinesis Video, no upload); **+ upload** adds boto3 `put_object` and a 600 s
  presigned URL against the bench server's embedded S3 store.
- **ffmpeg, every frame**: `ffmpeg -sseof -3 -i clip -update 1 out.jpg`, the usual one-liner: it
  decodes the last 3 s *and JPEG-encodes every one of their frames*, keeping the last.
  **ffmpeg, last frame**: the same seek, but only the last frame is encoded
  (`-vf reverse -frames:v 1`). Both are a new process each run, as a script spawns them.
- **lastframe cold**: the real server (`build/`, RelWithDebInfo, default flags, a log line per
  request); the clip pushed to a new stream in one `POST /putMedia`, then the first
  `GET /v1/streams/NAME/snapshot` over a kept-alive loopback connection: decode, encode, store
  the object, sign the URL. **warm, same frame**: that request again with no new frame: an
  image-cache hit, one URL signature.
- **Live streams**: ffmpeg pushes 640x480 5 fps streams in real time (`-re`, x264 zerolatency,
  sharing the same cores), one per run. **lastframe first look**: the first snapshot of each
  live stream. **new frame / same frame**: looks every 50 ms at one live stream, split by
  whether a frame had arrived since the previous look (warm decoder: decode the new frames,
  encode, store, sign) or not (image cache).
- **The recipe end to end** (`bench/recipe_kvs.py`) on the same live streams, against this
  server's own APIs: boto3 `GetDataEndpoint` + `GetClip` of the last 3 s (Kinesis Video API),
  OpenCV reads the MP4 to its last frame, JPEG 80, `put_object` to the embedded S3 store and a
  600 s presigned URL; every URL is fetched back and must be a JPEG. **warm**: one process,
  clients kept, the first invocation left out; **cold**: a new Python process per invocation,
  timed from spawn to exit (imports, clients, the call), as a cold function start.
- **Remote store**: a second server with `--store s3://lastframe/remote --s3-endpoint <the
  first>`: every image uploaded by `S3Store` (libcurl, SigV4) to the first server's store.
- **Through Kinesis Video's API**: a second server with `--source kvs --kvs-endpoint <the
  first>`; its first look is cold over the API (GetDataEndpoint, ListFragments,
  GetMediaForFragmentList, parse, decode, encode, store, sign). Warm looks are timed only once
  the node's `lastframe_kvs_warm_answers_total` shows a look answered by its GetMedia follower,
  and each timed look must add one warm answer and no cold fetch (else the run fails).
- **Load**: 50 streams of the recipe's clip, each looked at once, then `wrk -t2 -c50` rotating
  over their snapshot URLs (warm, same frame); server CPU from `/proc`.
- **Counting**: `build/bench/lf_metrics_bench` (Google Benchmark): one `Counter::Add` and one
  `Histogram::Observe` of `/metrics` (issue 19), beside a plain relaxed atomic add in the same
  run, each alone and on 2 threads at once; set against the server CPU a warm snapshot costs
  under the load above, which records one request-duration observation per request.
- **Uploads**: a 32 MiB object of random bytes PUT to the embedded store over HTTP (SigV4 by
  botocore's signer, `UNSIGNED-PAYLOAD`): streamed to disk, MD5 (the ETag) and CRC64NVME (S3's
  default checksum) computed on the way; then the same bytes as current SDKs send them
  (aws-chunked, 64 KiB chunks, a CRC32 trailer, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`), the
  answer's ETag and CRC32 checked. Against Python writing the same bytes to a file in the same
  folder (page cache, no sync: the store does not sync uploads either). Server CPU from `/proc`.
  Checksum speeds: `build/bench/lf_checksum_bench` (Google Benchmark, 1 MiB buffers).
- **Memory**: RSS per idle stream holding the 6 s 640x480 clip, and per warm decoder with its
  cached image.
"""


def target_rows(rows, live, loaded):
    """Issue 4's targets, judged from this run's figures."""
    def verdict(ok):
        return "met" if ok else "**not met**"
    out = [
        ("warm snapshot, no new frame, p50 <= 1 ms",
         f"{verdict(live['same'] <= 1.0)}: {live['same']:.2f} ms on a live stream; "
         f"{rows[0]['warm']:.2f} ms on a pushed clip"),
        ("warm snapshot with a new frame, p50 <= 5 ms",
         f"{verdict(live['new'] <= 5.0)}: {live['new']:.2f} ms over {live['new_samples']} new "
         "frames, the producer's encoder on the same cores"),
        (">= 500 warm snapshots/s over 50 streams, no errors",
         f"{verdict(loaded['rps'] >= 500 and loaded['non2xx'] == 0 and loaded['socket_errors'] == 'none')}: "
         f"{loaded['rps']:.0f}/s, p99 {loaded['p99']:.2f} ms, {loaded['non2xx']} non-2xx"),
        ("first looks instant where the CPU budget allows",
         f"`--warm-all` removed (issue 14: it doubled ingest CPU for no faster first looks at "
         f"100 streams); a first look decodes the newest GOP: {live['cold']:.1f} ms"),
    ]
    for r in rows:
        out.append((f"cold within 1.1x the 2-thread floor ({r['name']})",
                    f"{verdict(r['cold'] <= 1.1 * r['floor2'])}: {r['cold'] / r['floor2']:.2f}x"))
    for r in rows:
        want = 4.0 if r["name"] == "p480" else 1.2
        out.append((f"cold >= {want:g}x faster than the recipe's method ({r['name']})",
                    f"{verdict(r['recipe'] / r['cold'] >= want)}: {r['recipe'] / r['cold']:.2f}x "
                    f"(method on a local file, no upload)"))
    return out


def report(args, rows, live, remote, kvs, loaded, per_stream, idle_rss0, up, sums,
           counting):
    cpu = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*:\s*(.*)", cpu)
    mem = re.search(r"MemTotal:\s*(\d+)", open("/proc/meminfo").read())
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cmd = "bench/run.py" + (" --quick" if args.quick else "") + f" --runs {args.runs}"
    L = []
    L.append("# Benchmarks\n")
    L.append("Generated by `make bench` (= `scripts/install-deps.sh`, the build, then "
             "`bench/run.py --runs 5`): every figure below comes from one run of it; nothing is "
             "typed by hand. `.ci/run` runs `bench/run.py --quick --runs 1` so the harness "
             "cannot rot. Run to run on a shared VM, times move by 10-25%: compare the ratios "
             "within one run.\n")
    L.append(COLUMNS)
    L.append(f"## This run: {when}, commit {commit}, `{cmd}`\n")
    L.append(f"Machine: {os.cpu_count()} cores, {model.group(1) if model else 'unknown CPU'}, "
             f"{int(mem.group(1)) / 1048576:.0f} GiB; medians of {args.runs} runs; ms.\n")
    L.append("| clip | floor 1 thr | floor 2 thr | JPEG encode | recipe method (file) | + upload | "
             "ffmpeg, every frame | ffmpeg, last frame | lastframe cold | warm, same frame | "
             "recipe / cold | ffmpeg last frame / cold | cold / floor 2 thr |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append(f"| {r['desc']} | {r['floor1']:.1f} | {r['floor2']:.1f} | {r['encode']:.1f} | "
                 f"{r['recipe']:.1f} | {r['recipe_upload']:.1f} | {r['ffmpeg_all']:.1f} | "
                 f"{r['ffmpeg_last']:.1f} | {r['cold']:.1f} | {r['warm']:.2f} | "
                 f"{r['recipe'] / r['cold']:.2f}x | {r['ffmpeg_last'] / r['cold']:.1f}x | "
                 f"{r['cold'] / r['floor2']:.2f}x |")
    L.append("")
    L.append("### The recipe end to end, beside lastframe, on the same live 640x480 5 fps streams\n")
    L.append("| | cold | warm |")
    L.append("|---|---|---|")
    L.append(f"| the recipe (GetDataEndpoint + GetClip 3 s, OpenCV, JPEG 80, put_object, presign) "
             f"| {live['recipe_cold']:.1f} (new process) | {live['recipe_warm']:.1f} (clients kept) |")
    L.append(f"| lastframe `GET /v1/streams/NAME/snapshot` | {live['cold']:.1f} (first look) | "
             f"{live['new']:.2f} (a new frame); {live['same']:.2f} (same frame) |")
    L.append(f"| recipe / lastframe | {live['recipe_cold'] / live['cold']:.1f}x | "
             f"{live['recipe_warm'] / live['new']:.1f}x (against a new frame) |")
    L.append("")
    L.append(f"The published recipe, on AWS (Lambda, Kinesis Video, S3), answered in 3.0 s cold "
             "and 0.8 s warm; its figures are not comparable with loopback ones and are not "
             "divided here.\n")
    L.append("### Other paths\n")
    L.append(f"- Remote S3 store, 640x480: cold {remote[0]:.1f} ms (local store "
             f"{rows[0]['cold']:.1f} ms), warm same frame {remote[1]:.2f} ms (local "
             f"{rows[0]['warm']:.2f} ms).")
    L.append(f"- Through Kinesis Video's API (`--source kvs`), 640x480: cold {kvs[0]:.1f} ms "
             f"(local cold {rows[0]['cold']:.1f} ms), warm {kvs[1]:.2f} ms; "
             f"{kvs[2]['warm_answers']:.0f} timed warm looks, each counted by the node's "
             f"`lastframe_kvs_warm_answers_total`, {kvs[2]['cold_fetches_during_warm']:.0f} "
             f"cold fetches among them; its follower received "
             f"{kvs[2]['follower_fragments']:.0f} fragments.")
    L.append(f"- Load: 50 streams, 50 connections, {args.load_seconds} s of wrk, warm (same "
             f"frame): {loaded['rps']:.0f} snapshots/s, p50 {loaded['p50']:.2f} ms, p99 "
             f"{loaded['p99']:.2f} ms, server CPU {loaded['cpu'] * 100:.0f}% of one core, "
             f"non-2xx {loaded['non2xx']}, socket errors {loaded['socket_errors']}.")
    per_request_ns = loaded["cpu"] / loaded["rps"] * 1e9
    observe = counting.get("histogram_observe/threads:2", float("nan"))
    L.append(f"- Counting: a counter add {counting.get('counter_add/threads:1', float('nan')):.1f} "
             f"ns, a histogram observation "
             f"{counting.get('histogram_observe/threads:1', float('nan')):.1f} ns "
             f"({observe:.1f} ns with 2 threads at once), against a relaxed atomic add "
             f"{counting.get('atomic_add/threads:1', float('nan')):.1f} ns; a warm snapshot under "
             f"the load above took {per_request_ns / 1000:.1f} us of server CPU, so its one "
             f"observation is {observe / per_request_ns * 100:.2f}% of it at most.")
    mib_s = lambda seconds: 32 / seconds
    L.append(f"- Uploads of 32 MiB: plain {up['plain'] * 1000:.0f} ms ({mib_s(up['plain']):.0f} "
             f"MiB/s, server CPU {up['plain_cpu'] * 1000:.0f} ms), aws-chunked with a CRC32 "
             f"trailer {up['chunked'] * 1000:.0f} ms ({mib_s(up['chunked']):.0f} MiB/s, server CPU "
             f"{up['chunked_cpu'] * 1000:.0f} ms); writing the same bytes to a file "
             f"{up['file'] * 1000:.0f} ms ({mib_s(up['file']):.0f} MiB/s), so a PUT takes "
             f"{up['plain'] / up['file']:.1f}x (aws-chunked {up['chunked'] / up['file']:.1f}x) the "
             f"file write. Checksums over 1 MiB: "
             + ", ".join(f"{name} {sums[name] / 1e9:.2f} GB/s" for name in
                         ("crc32", "crc32c", "crc64nvme", "sha1", "sha256") if name in sums)
             + ".")
    L.append(f"- Memory: {per_stream:.0f} KiB RSS per idle stream holding a 6 s 640x480 clip; "
             f"{loaded['per_decoder']:.0f} KiB more per warm decoder and cached image (server "
             f"idle RSS {idle_rss0 / 1024:.1f} MiB).\n")
    L.append("### Against the targets of issue 4 (judged from this run)\n")
    L.append("| target | this run |")
    L.append("|---|---|")
    for target, status in target_rows(rows, live, loaded):
        L.append(f"| {target} | {status} |")
    L.append("")
    return "\n".join(L)


def stills_report(args, floors, floor_bytes, tiles):
    nan = float("nan")
    L = ["### Stills, previews and dashboard tiles (issue 16)\n"]
    L.append("In process (`build/bench/lf_snapshot_bench`, `still/p480/...`, `preview/p480/...`): "
             "`media::EncodeImage` of the newest decoded frame of the 640x480 clip, one image "
             "per iteration; previews are `media::AnimationEncoder` over 10 frames of its last "
             "5 s at 2 fps, 320 px wide, as `preview.webp`/`.gif` make them (decoding not "
             "included). Ratios are against JPEG q80 of the same run at the same width; a "
             "preview against ten 320 px JPEGs.\n")
    L.append("| image | size | ms per image | bytes | time / JPEG | bytes / JPEG |")
    L.append("|---|---|---|---|---|---|")
    for label, size, name, base, n in STILLS:
        t, b = floors.get(name, nan), floor_bytes.get(name, nan)
        bt, bb = floors.get(base, nan) * n, floor_bytes.get(base, nan) * n
        L.append(f"| {label} | {size} | {t:.2f} | {b:.0f} | {t / bt:.2f}x | {b / bb:.2f}x |")
    L.append("")
    streams = 10 if args.quick else 100
    L.append(f"Dashboard tiles (`bench/dashboard_tiles.py --streams {streams}`, run by this "
             f"harness): {streams} streams of 640x480 H.264 (a keyframe a second), each asked "
             "for its still at once by 4 clients, then again; the server's CPU time (utime + "
             "stime) per still, and its size.\n")
    L.append("| still | CPU per still, ms | again (cached), ms | KiB |")
    L.append("|---|---|---|---|")
    by = {(t["label"], t["cached"]): t for t in tiles}
    for label, _ in dashboard_tiles.ROUNDS:
        first, again = by[(label, False)], by[(label, True)]
        L.append(f"| {label} | {first['cpu_ms']:.2f} | {again['cpu_ms']:.2f} | "
                 f"{first['kib']:.1f} |")
    tile = by[(dashboard_tiles.ROUNDS[0][0], False)]
    L.append("")
    L.append(f"A page of 100 live tiles loads one tile still per stream per GOP (the page asks "
             f"only when a frame event names a new fragment): with a keyframe a second, "
             f"100 x {tile['cpu_ms']:.2f} ms = {tile['cpu_ms'] / 10:.2f} of a core, "
             f"{100 * tile['kib']:.0f} KiB/s to the browser; half that with a keyframe every "
             f"2 s; a second page of the same streams adds the cached cost.\n")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="the recipe's profile only, short load and live phases; prints the "
                         "report instead of writing BENCHMARKS.md (CI)")
    ap.add_argument("--load-seconds", type=int, default=None)
    ap.add_argument("--output", help="where to write the report (default: BENCHMARKS.md, or "
                                     "standard output with --quick)")
    ap.add_argument("--time-limit", type=int, default=None,
                    help="seconds before the run gives up (default 900, 300 with --quick)")
    args = ap.parse_args()
    if args.load_seconds is None:
        args.load_seconds = 3 if args.quick else 10
    limit = args.time_limit or (300 if args.quick else 900)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(
        SystemExit(f"bench/run.py: over its time limit of {limit} s")))
    signal.alarm(limit)
    for tool in (BIN, BENCH, METRICS_BENCH, CHECKSUM_BENCH):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: run `make build` first")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk missing: scripts/install-deps.sh installs it")
    profiles = PROFILES[:1] if args.quick else PROFILES
    look_seconds = 4 if args.quick else 8
    work = tempfile.mkdtemp(prefix="lastframe-bench-")
    try:
        clips = os.path.join(work, "clips")
        os.makedirs(clips)
        make_clips(clips, profiles)
        floors, floor_bytes = floor(clips, args.runs)
        counting = metrics_cost(args.runs)
        sums = checksum_speed(args.runs)
        server = Server(os.path.join(work, "data"))
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
                "ffmpeg_all": ffmpeg_cli(clip, args.runs, work, last_only=False),
                "ffmpeg_last": ffmpeg_cli(clip, args.runs, work, last_only=True),
                "cold": cold, "warm": warm,
            })
        live = live_section(server, args.runs, look_seconds)
        with open(os.path.join(clips, "p480.mkv"), "rb") as f:
            p480 = f.read()
        # Images to a remote S3 store: a second lastframe's embedded store, so the hop (SigV4,
        # HTTP PUT, MD5 and SHA-256) is what differs.
        remote_server = Server(os.path.join(work, "data-remote"),
                               ["--store", "s3://lastframe/remote", "--s3-endpoint",
                                f"http://127.0.0.1:{server.port}", "--s3-access-key", BENCH_KEY,
                                "--s3-secret-key", BENCH_SECRET])
        remote = lastframe_cold_warm(remote_server, "p480", p480, args.runs)
        remote_server.stop()
        kvs_node = Server(os.path.join(work, "data-kvs"),
                          ["--source", "kvs", "--kvs-endpoint", f"http://127.0.0.1:{server.port}",
                           "--kvs-access-key", BENCH_KEY, "--kvs-secret-key", BENCH_SECRET])
        kvs = kvs_source_cold_warm(server, kvs_node, p480, args.runs)
        kvs_node.stop()
        up = uploads(server, args.runs, work)
        server.stop()
        tiles = dashboard_tiles.measure(BIN, 10 if args.quick else 100)
        # Load and memory on a fresh server: 50 streams of the recipe's profile.
        server = Server(os.path.join(work, "data-load"))
        idle_rss0 = server.rss_kib()
        loaded = load(server, p480, 50, args.load_seconds, 50)
        per_stream = (loaded["rss_pushed"] - idle_rss0) / 50
        server.stop()
        if args.quick:
            # Ingest at scale is run on its own (minutes at full size); its smoke run (~20 s)
            # keeps the harness from rotting.
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "ingest_load.py"),
                            "--quick", "--json", os.path.join(work, "ingest_load.json")],
                           check=True)
    finally:
        for s in Server.started:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    signal.alarm(0)
    text = report(args, rows, live, remote, kvs, loaded, per_stream, idle_rss0,
                  up, sums, counting)
    text += stills_report(args, floors, floor_bytes, tiles)
    text += ingest_load.SECTION
    output = args.output or (None if args.quick else os.path.join(ROOT, "BENCHMARKS.md"))
    if output:
        with open(output, "w") as f:
            f.write(text)
        print(f"bench/run.py: wrote {output}")
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
