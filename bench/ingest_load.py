#!/usr/bin/python3
"""Ingest at scale (issue 14): N paced producers against one lastframe server.

  bench/ingest_load.py [--bin build/src/app/lastframe] [--producers 100] [--seconds 40]
                       [--bitrate 1M] [--stagger S] [--looks 20] [--ffmpeg-ref K] [--sink-ref K]
                       [--ref-seconds S] [--server-arg=--flag ...] [--json FILE] [--quick]

Makes a clip with ffmpeg (640x480, 5 fps, --bitrate H.264, a keyframe every 2 s, Matroska, a
cluster per GOP, as long as the run), starts the server (default flags, durable fragments on,
its own temporary data dir, a free loopback port, an admin key), then runs
build/bench/ingest_load: N producers over real sockets in one epoll loop, each a chunked
`POST /putMedia` paced at the clip's timecodes, started staggered over --stagger seconds. Every
second it samples the whole server process from /proc (CPU as % of one core from utime+stime,
threads, RSS) and `lastframe_archive_syncs_total` from /metrics (fsyncs/s; "n/a" if the server
has no such counter). During the load it makes --looks first looks (`latest.jpg` of a stream
not looked at before) each followed by repeat looks of the same stream. References, in the same
run: --ffmpeg-ref K streams each written to segment files by its own `ffmpeg -c copy -f segment`
(fed the same clip, paced, over raw TCP; CPU and RSS of all of them summed), and --sink-ref K
streams into build/bench/epoll_sink (receive, append, fsync every 2 s: the floor).
Writes a JSON file and prints markdown table rows. --quick (CI): 5 producers for 6 s and tiny
references; exits non-zero unless every producer got RECEIVED and PERSISTED acks, no ERROR ack,
no producer dropped and every look answered.
"""
import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = os.path.join(ROOT, "build", "bench", "ingest_load")
SINK = os.path.join(ROOT, "build", "bench", "epoll_sink")
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def proc_sample(pid):
    """(cpu seconds, threads, RSS KiB) of one process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    return ((int(fields[11]) + int(fields[12])) / TICK, threads, int(rss.group(1)) if rss else 0)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            m = re.search(r"^Pss:\s+(\d+)", f.read(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Every second: CPU, threads and RSS summed over |pids()|, and |counter()| if given."""

    def __init__(self, pids, counter=None):
        super().__init__(daemon=True)
        self.pids, self.counter = pids, counter
        self.samples = []  # (t, {pid: (cpu, threads, rss)}, counter or None)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            per = {}
            for pid in self.pids():
                s = proc_sample(pid)
                if s:
                    per[pid] = s
            value = self.counter() if self.counter else None
            self.samples.append((t, per, value))
            self.halt.wait(max(0.0, 1.0 - (time.monotonic() - t)))

    def stop(self):
        self.halt.set()
        self.join()

    def summary(self, steady_from, steady_to):
        """CPU (% of one core, mean over [steady_from, steady_to], processes present at both
        ends), threads (max), RSS (max, and the last sample), counter rate over the window."""
        inside = [s for s in self.samples if steady_from <= s[0] <= steady_to]
        out = {"samples": len(self.samples)}
        if len(inside) >= 2:
            (t0, a, c0), (t1, b, c1) = inside[0], inside[-1]
            cpu = sum(b[p][0] - a[p][0] for p in b if p in a)
            out["cpu_pct"] = 100.0 * cpu / (t1 - t0)
            out["window_s"] = t1 - t0
            out["syncs_per_s"] = (c1 - c0) / (t1 - t0) if c0 is not None and c1 is not None \
                else None
        else:
            out["cpu_pct"], out["syncs_per_s"] = None, None
        live = [s for s in self.samples if s[1]]
        out["threads_max"] = max((sum(v[1] for v in s[1].values()) for s in live), default=0)
        out["rss_max_mib"] = max((sum(v[2] for v in s[1].values()) for s in live),
                                 default=0) / 1024
        # At the end of the load: the last sample before the producers stopped.
        ended = [s for s in live if s[0] <= steady_to] or live
        out["rss_end_mib"] = sum(v[2] for v in ended[-1][1].values()) / 1024 if ended else 0
        out["cpu_timeline_pct"] = [
            round(100.0 * sum(b[p][0] - a[p][0] for p in b if p in a) / (t1 - t0), 1)
            for (t0, a, _), (t1, b, _) in zip(self.samples, self.samples[1:])]
        out["rss_timeline_mib"] = [round(sum(v[2] for v in s[1].values()) / 1024, 1)
                                   for s in self.samples]
        return out


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def make_clip(path, seconds, bitrate):
    """640x480, 5 fps, H.264 at |bitrate|, a keyframe every 2 s, a Matroska cluster per GOP
    (clusters are cut only at keyframes), as long as the run: no loop, so timecodes only grow."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=5", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-maxrate",
                    bitrate, "-bufsize", bitrate, "-g", "10", "-keyint_min", "10",
                    "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "matroska",
                    "-cluster_size_limit", "50000000", "-cluster_time_limit", "10000", path],
                   check=True)


class Server:
    def __init__(self, binary, data_dir, extra):
        os.makedirs(data_dir)
        self.token = subprocess.run([binary, "keys", "create", "--data-dir", data_dir, "--role",
                                     "admin", "--label", "ingest-load"], check=True,
                                    capture_output=True, text=True).stdout.strip()
        self.log_path = os.path.join(data_dir, "server.log")
        self.log = open(self.log_path, "w+")
        # Default flags (durable fragments on); the log at its default level, as users run it.
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                                      data_dir, *extra], stdout=self.log, stderr=self.log)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None and self.proc.poll() is None:
            with open(self.log_path) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            self.kill()
            raise SystemExit(f"lastframe did not start: see {self.log_path}")

    def get(self, conn, path):
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        r = conn.getresponse()
        return r.status, r.read()

    def fetch(self, path):
        """(status, body) of one GET on a connection of its own, or None if it fails."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            answer = self.get(c, path)
            c.close()
            return answer
        except OSError:
            return None

    def syncs(self):
        """lastframe_archive_syncs_total, or None where the server has no such counter."""
        answer = self.fetch("/metrics")
        if answer is None:
            return None
        status, body = answer
        m = re.search(r"^lastframe_archive_syncs_total(?:\{[^}]*\})? ([\d.e+]+)$",
                      body.decode(errors="replace"), re.M)
        return float(m.group(1)) if status == 200 and m else None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class ArchiveStore:
    """--archive-store: a second lastframe used only for its embedded S3 store, the shared store
    of deploy/local-cluster.sh; the measured node archives every fragment to it."""

    def __init__(self, binary, data_dir):
        os.makedirs(data_dir)
        self.port = free_ports(1)[0]
        self.access_key, self.secret_key = "LFBENCHARCHIVE0000", "bench-archive-secret-key"
        env = dict(os.environ, LASTFRAME_ACCESS_KEY=self.access_key,
                   LASTFRAME_SECRET_KEY=self.secret_key)
        self.log = open(os.path.join(data_dir, "store.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir,
             "--node-id", "store", "--bucket", "lastframe", "--auth", "off"],
            env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.kill()
                raise SystemExit(f"the archive store did not start: see {self.log.name}")
            time.sleep(0.05)
        self.cpu_start = proc_sample(self.proc.pid)[0]

    def server_args(self):
        return ["--archive", "s3://lastframe/archive", "--s3-endpoint",
                f"http://127.0.0.1:{self.port}", "--s3-addressing", "path", "--s3-region",
                "us-east-1", "--s3-access-key", self.access_key, "--s3-secret-key",
                self.secret_key]

    def cpu_s(self):
        sample = proc_sample(self.proc.pid)
        return None if sample is None else round(sample[0] - self.cpu_start, 1)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self.log.close()


def looks(server, streams, start, end, repeats=3):
    """First looks at |streams| (never looked at before), spread over [start, end] (monotonic),
    each followed by |repeats| repeat looks of the same stream, on one kept-alive connection."""
    out = {"first_ms": [], "repeat_ms": [], "failed": [], "at_s": []}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for i, name in enumerate(streams):
        when = start + (end - start) * i / max(1, len(streams) - 1)
        time.sleep(max(0.0, when - time.monotonic()))
        for k in range(1 + repeats):
            t = time.perf_counter()
            try:
                status, body = server.get(conn, f"/v1/streams/{name}/latest.jpg")
            except (OSError, http.client.HTTPException) as e:
                status, body = 0, str(e).encode()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            took = (time.perf_counter() - t) * 1000
            if status != 200:
                out["failed"].append(f"{name}: {status} {body[:160]!r}")
                break
            (out["first_ms"] if k == 0 else out["repeat_ms"]).append(took)
            if k == 0:
                out["at_s"].append(round(time.monotonic() - start, 1))
    conn.close()
    return out


def steady_start(stagger, seconds):
    """When the steady part of a run begins: every producer started, and 3 s more (its first
    fragment on its way), or half the rest of a short run."""
    return stagger + min(3.0, (seconds - stagger) / 2)


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    rank = q * (len(xs) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def generate(args, clip, seconds, producers, target, out_json, stagger):
    """Runs build/bench/ingest_load; |target| is its connection arguments."""
    cmd = [GENERATOR, "--clip", clip, "--producers", str(producers), "--seconds", str(seconds),
           "--stagger", str(stagger), "--out", out_json, *target]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def run_lastframe(args, work, clip):
    store = ArchiveStore(args.bin, os.path.join(work, "store")) if args.archive_store else None
    server_args = args.server_arg + (store.server_args() if store else [])
    try:
        server = Server(args.bin, os.path.join(work, "data"), server_args)
    except BaseException:
        if store:
            store.kill()
        raise
    try:
        sampler = Sampler(lambda: [server.proc.pid], server.syncs)
        sampler.start()
        time.sleep(0.5)  # an idle sample before the load
        t0 = time.monotonic()
        gen_json = os.path.join(work, "generator.json")
        gen = generate(args, clip, args.seconds, args.producers,
                       ["--port", str(server.port), "--token", server.token], gen_json,
                       args.stagger)
        n_looks = min(args.looks, args.producers)
        streams = [f"load-{args.producers * i // max(1, n_looks):04d}" for i in range(n_looks)]
        look_start = t0 + args.stagger + 2.0
        look_end = t0 + max(args.stagger + 2.0, args.seconds - 2.0)
        seen = looks(server, streams, look_start, look_end)
        gen.wait()
        t_end = t0 + args.seconds
        time.sleep(0.5)
        sampler.stop()
        alive = server.proc.poll() is None
        with open(gen_json) as f:
            g = json.load(f)
        # The steady part: every producer started and its first fragment complete, until the
        # producers stop sending.
        s = sampler.summary(t0 + steady_start(args.stagger, args.seconds), t_end)
        fragments = sum(f.endswith(".mkv") for _, _, fs in
                        os.walk(os.path.join(work, "data", "fragments")) for f in fs)
        store_cpu_s = store.cpu_s() if store else None
    finally:
        server.kill()
        if store:
            store.kill()
    return {
        "binary": args.bin, "server_args": args.server_arg, "server_alive_at_end": alive,
        "archive_store": bool(store), "archive_store_cpu_s": store_cpu_s,
        "producers": args.producers, "seconds": args.seconds, "stagger_s": args.stagger,
        "server": s, "generator": g, "fragment_files_at_end": fragments,
        "looks": {"first_p50_ms": pct(seen["first_ms"], 0.5),
                  "first_p99_ms": pct(seen["first_ms"], 0.99),
                  "repeat_p50_ms": pct(seen["repeat_ms"], 0.5),
                  "repeat_p99_ms": pct(seen["repeat_ms"], 0.99), **seen},
    }


def run_ffmpeg_ref(args, work, clip, streams, seconds):
    ports = free_ports(streams)
    procs = []
    for i, port in enumerate(ports):
        d = os.path.join(work, "ffmpeg", f"s{i:04d}")
        os.makedirs(d)
        procs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "matroska", "-i",
             f"tcp://127.0.0.1:{port}?listen=1", "-c", "copy", "-f", "segment",
             "-segment_time", "2", "-segment_format", "matroska", "-reset_timestamps", "1",
             os.path.join(d, "seg%05d.mkv")], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "ffmpeg.log"), "w")))
    ports_file = os.path.join(work, "ffmpeg-ports")
    with open(ports_file, "w") as f:
        f.write("\n".join(map(str, ports)) + "\n")
    try:
        out = measure_raw(args, work, clip, streams, seconds, lambda: [p.pid for p in procs],
                          ["--raw", "--ports-file", ports_file], "ffmpeg", procs,
                          lambda: sum(pss_kib(p.pid) for p in procs) / 1024)
        for p in procs:  # each ends at its input's end
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        out["failed_processes"] = sum(p.poll() not in (0,) for p in procs)
        out["segments"] = sum(f.endswith(".mkv") for _, _, fs in
                              os.walk(os.path.join(work, "ffmpeg")) for f in fs)
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def run_sink_ref(args, work, clip, streams, seconds):
    d = os.path.join(work, "sink")
    os.makedirs(d)
    sink = subprocess.Popen([SINK, "0", d], stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        out = measure_raw(args, work, clip, streams, seconds, lambda: [sink.pid],
                          ["--raw", "--port", str(port)], "sink", [sink], None)
        time.sleep(0.5)  # the sink's last reads
        out["bytes_written"] = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        return out
    finally:
        sink.kill()
        sink.wait()


def measure_raw(args, work, clip, streams, seconds, pids, target, name, procs, pss):
    stagger = min(args.stagger, seconds / 4)
    sampler = Sampler(pids)
    sampler.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    gen_json = os.path.join(work, f"generator-{name}.json")
    gen = generate(args, clip, seconds, streams, target, gen_json, stagger)
    pss_mib = None
    while gen.poll() is None:
        if pss and pss_mib is None and time.monotonic() > t0 + seconds - 2:
            pss_mib = pss()  # shared pages counted once: ffmpeg's libraries are shared
        time.sleep(0.2)
    sampler.stop()
    with open(gen_json) as f:
        g = json.load(f)
    s = sampler.summary(t0 + steady_start(stagger, seconds), t0 + seconds)
    exited = sum(p.poll() is not None for p in procs)
    return {"streams": streams, "seconds": seconds, "stagger_s": stagger, "processes": len(procs),
            "exited_before_end": exited, "pss_sum_mib": pss_mib, "server": s, "generator": g}


def fmt(v, spec=".1f", none="n/a"):
    return none if v is None else format(v, spec)


def table(result):
    head = ("| producers | CPU (% of one core) | threads (max) | RSS max / end (MiB) | fsyncs/s "
            "| RECEIVED p50 / p99 (ms) | PERSISTED p50 / p99 (ms) | first look p50 / p99 (ms) "
            "| repeat look p50 (ms) | ERROR acks | fragments without PERSISTED | dropped |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    r = result["lastframe"]
    s, g, lk = r["server"], r["generator"], r["looks"]
    rows.append(
        f"| {r['producers']} | {fmt(s['cpu_pct'], '.0f')}% | {s['threads_max']} | "
        f"{s['rss_max_mib']:.0f} / {s['rss_end_mib']:.0f} | {fmt(s['syncs_per_s'])} | "
        f"{fmt(g['received_ms']['p50'], '.0f')} / {fmt(g['received_ms']['p99'], '.0f')} | "
        f"{fmt(g['persisted_ms']['p50'], '.0f')} / {fmt(g['persisted_ms']['p99'], '.0f')} | "
        f"{fmt(lk['first_p50_ms'])} / {fmt(lk['first_p99_ms'])} | {fmt(lk['repeat_p50_ms'], '.2f')}"
        f" | {g['error_acks']} | {g['missing_persisted']} of {g['fragments_sent']} | "
        f"{g['dropped']} |")
    for key, label in (("ffmpeg", "`ffmpeg -c copy -f segment` each (sum)"),
                       ("sink", "epoll sink (floor)")):
        ref = result.get(key)
        if not ref:
            continue
        s, g = ref["server"], ref["generator"]
        rss = f"{s['rss_max_mib']:.0f} / {s['rss_end_mib']:.0f}"
        if ref.get("pss_sum_mib") is not None:
            rss += f" (PSS {ref['pss_sum_mib']:.0f})"
        rows.append(f"| {ref['streams']}, {label} | {fmt(s['cpu_pct'], '.0f')}% | "
                    f"{s['threads_max']} | {rss} | - | - | - | - | - | - | - | {g['dropped']} |")
    return "\n".join(rows)


def problems(result):
    """What makes a run insane: the checks of --quick."""
    out = []
    r = result["lastframe"]
    g = r["generator"]
    if not r["server_alive_at_end"]:
        out.append("the server died during the run")
    if g["dropped"]:
        out.append(f"{g['dropped']} producers dropped: {g['drop_reasons']}")
    if g["error_acks"]:
        out.append(f"{g['error_acks']} ERROR acks: {g['error_samples']}")
    for event in ("received", "persisted"):
        if g[f"producers_with_{event}"] != r["producers"]:
            out.append(f"{r['producers'] - g[f'producers_with_{event}']} producers got no "
                       f"{event.upper()} ack")
    if g["missing_received"] or g["missing_persisted"]:
        out.append(f"fragments without RECEIVED: {g['missing_received']}, without PERSISTED: "
                   f"{g['missing_persisted']}")
    if r["looks"]["failed"]:
        out.append(f"looks failed: {r['looks']['failed'][:3]}")
    for key in ("ffmpeg", "sink"):
        if result.get(key) and result[key]["generator"]["dropped"]:
            out.append(f"{key} reference: {result[key]['generator']['drop_reasons']}")
    if result.get("ffmpeg") and (result["ffmpeg"]["failed_processes"] or
                                 not result["ffmpeg"]["segments"]):
        out.append(f"ffmpeg reference: {result['ffmpeg']['failed_processes']} processes failed, "
                   f"{result['ffmpeg']['segments']} segments written")
    if result.get("sink") and (result["sink"]["bytes_written"] !=
                               result["sink"]["generator"]["bytes_sent"]):
        out.append(f"sink reference: {result['sink']['bytes_written']} bytes written of "
                   f"{result['sink']['generator']['bytes_sent']} sent")
    return out


SECTION = """
### Ingest at scale (issue 14)

`bench/ingest_load.py` (`build/bench/ingest_load` and `build/bench/epoll_sink`, built with the
benchmarks) measures ingest alone, against the real server binary over loopback sockets. It is
run on its own (minutes at full size; `bench/run.py --quick` runs its smoke test), and each
row below comes from one command:

```sh
bench/ingest_load.py --producers 100 --seconds 40 --ffmpeg-ref 100 --sink-ref 100
bench/ingest_load.py --producers 200 --seconds 40
bench/ingest_load.py --producers 500 --seconds 300 --sink-ref 500   # issue 14's targets: 5 minutes
bench/ingest_load.py --producers 1000 --seconds 60
bench/ingest_load.py --bin /path/to/lastframe-before/lastframe ...   # the same, before the change
bench/ingest_load.py --producers 100 --seconds 40 --server-arg=--no-persist   # a flag's cost
bench/ingest_load.py --producers 200 --seconds 60 --archive-store   # the shared archive (issue 15)
```

What each run does and measures:

- **The stream**: one clip made by ffmpeg before the run, 640x480, 5 fps, H.264 at `--bitrate`
  (1M: about 0.9 Mbit/s), a keyframe every 2 s, Matroska with a cluster per GOP, as long as the
  run (no loop: timecodes only grow). Every producer sends it.
- **Producers**: `build/bench/ingest_load`, one epoll loop, N connections, each a chunked
  `POST /putMedia` (`x-amzn-stream-name: load-NNNN`, `x-amzn-fragment-timecode-type: RELATIVE`,
  `x-amzn-producer-start-timestamp`, an admin key as Bearer), **paced at the clip's timecodes**:
  a frame's bytes (with the cluster header before a keyframe) are released when its timecode
  comes due, so each producer sends about 110 KB/s. They start staggered over the first 5 s and
  stop at `--seconds`, each after finishing the GOP it is sending (a body ends with a whole
  cluster, as ffmpeg's ends).
- **The server**: `--bin` (default `build/src/app/lastframe`) with default flags (durable
  fragments on) plus any `--server-arg`, its own temporary data dir, a free loopback port.
  **CPU**: utime + stime of the whole process from `/proc/PID/stat`, as % of one core, the mean
  over the steady part (from 3 s after the last producer started to the end of the load);
  **threads**: the most `Threads` of `/proc/PID/status` seen; **RSS**: `VmRSS`, the most seen
  and at the end of the load; **fsyncs/s**: `lastframe_archive_syncs_total` of `/metrics` over
  the steady part ("n/a" from a server without it). Sampled every second.
- **Acks**: RECEIVED and PERSISTED, matched to fragments by `FragmentTimecode`, timed from the
  moment the fragment's last byte (the byte before the next keyframe's cluster) was written to
  the socket. A fragment is complete only when the next keyframe arrives, so these include one
  frame interval (200 ms at 5 fps); the JSON also has both timed from the next keyframe's frame
  written whole (`received_after_next_keyframe_ms`). ERROR acks and dropped producers (refused,
  closed or reset before their body ended) are counted.
- **Looks during the load**: 20 first looks, spread over the steady part, each at a stream not
  looked at before (`GET /v1/streams/NAME/latest.jpg`, one kept-alive connection), each followed
  by 3 repeat looks of the same stream: p50 and p99.
- **References** (same clip, same pacing, same sampling; the generator with `--raw` sends the
  bare Matroska over TCP): `--ffmpeg-ref K`, K streams each into its own
  `ffmpeg -f matroska -i tcp://127.0.0.1:PORT?listen=1 -c copy -f segment -segment_time 2`
  (what people script today; CPU, threads and RSS summed over the K processes, and their PSS,
  which counts shared libraries once); `--sink-ref K`, K streams into `bench/epoll_sink.c`, which
  only receives, appends each connection's bytes to a file and fsyncs every file every 2 s:
  the floor.
- **`--archive-store`**: a second lastframe runs as the shared S3 store (its embedded store, as
  `deploy/local-cluster.sh` runs it) and the server archives every fragment to it (`--archive`):
  PERSISTED then waits for the upload. The store's CPU is reported apart (seconds over the run),
  not in the table's row.
- Results: a JSON file (`build/bench/ingest_load-N<N>.json`: every figure, per-second CPU and
  RSS timelines) and the table rows on standard output. `--quick` (5 producers for 6 s, tiny
  references) is run by `bench/run.py --quick` and fails unless every producer got RECEIVED and
  PERSISTED acks, no ERROR ack, no producer dropped and every look answered.

**Results** (this 2-core VM: 2 vCPUs, 24 GiB, ext4 without a journal; 2026-12-01; one run each on
an otherwise idle machine; "now" is the server of commit 31250eb, "before" that of commit 72d4378,
a thread per producer and every retained fragment in memory; the commands are those above):

| server | producers, length | CPU (% of one core) | threads (max) | RSS max / end (MiB) | fsyncs/s | RECEIVED p50 / p99 (ms) | PERSISTED p50 / p99 (ms) | first look p50 / p99 (ms) | repeat look p50 (ms) | ERROR acks | fragments without PERSISTED | dropped |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| now | 100, 40 s | 11% | 12 | 140 / 139 | 40.0 | 201 / 211 | 225 / 241 | 26.3 / 48.3 | 0.64 | 0 | 0 of 1920 | 0 |
| now | 200, 40 s | 22% | 12 | 178 / 175 | 78.4 | 201 / 209 | 226 / 240 | 26.5 / 58.2 | 0.60 | 0 | 0 of 3840 | 0 |
| now | **500, 5 min** | **46%** | **12** | **302 / 301** | 80.7 | 201 / 208 | 220 / 253 | **27.6 / 45.0** | **0.67** | 0 | 0 of 74600 | 0 |
| now | 1000, 60 s | 97% | 12 | 522 / 498 | 85.8 | 201 / 211 | 232 / 359 | 44.7 / 105.7 | 0.84 | 0 | 0 of 29200 | 0 |
| now, `--no-persist` | 500, 60 s | 27% | 9 | 868 / 866 | - | 201 / 204 | 201 / 205 | 22.0 / 34.1 | 0.52 | 0 | 0 of 14600 | 0 |
| now, `--archive-store` | 200, 60 s | 42% | 32 | 190 / 187 | 78.6 | 202 / 254 | 233 / 397 | 30.6 / 61.0 | 0.71 | 0 | 0 of 5840 | 0 |
| now, the same run without it | 200, 60 s | 28% | 12 | 184 / 182 | 79.8 | 201 / 206 | 227 / 239 | 28.1 / 51.1 | 0.55 | 0 | 0 of 5840 | 0 |
| now, `--archive-store` | 350, 60 s | 66% | 32 | 260 / 254 | 66.9 | 202 / 225 | 238 / 554 | 38.4 / 69.6 | 0.85 | 0 | 0 of 10220 | 0 |
| now, `--archive-store` | 500, 60 s | 99% | 32 | 1030 / 875 | 9.7 | 204 / 582 | 2749 / 8118 | 121.5 / 240.8 | 5.15 | 580 | 580 of 14600 | 0 |
| before | 100, 40 s | 73% | 108 | 554 / 550 | n/a | 216 / 231 | 219 / 236 | 25.8 / 54.6 | 0.63 | 0 | 0 of 1920 | 0 |
| before | 200, 40 s | 126% | 208 | 1004 / 994 | n/a | 215 / 326 | 219 / 338 | 42.8 / 75.0 | 1.71 | 0 | 0 of 3840 | 0 |
| before | 500, 60 s | 169% | 508 | 1695 / 1491 | n/a | 22447 / 44612 | 22453 / 44617 | 114.2 / 176.8 | 49.39 | 0 | 5225 of 11958 | 368 |
| reference: 100 streams, `ffmpeg -c copy -f segment` each (sum) | 100, 40 s | 11% | 100 | 5095 / 5069 (PSS 1212) | - | - | - | - | - | - | - | 0 |
| reference: the epoll sink (floor) | 500, 40 s | 17% | 1 | 1 / 1 | - | - | - | - | - | - | - | 0 |

Issue 14's targets, from the 5-minute row: ingest CPU at most 50% of a core (46%), no producer
dropped and every fragment PERSISTED (74,600 of 74,600), at most 32 threads (12, whatever the
number of producers), RSS at most 384 MiB (302), first looks p50 at most 60 ms and p99 at most
200 ms (27.6 / 45.0), repeat looks at most 1 ms p50 (0.67); 1,000 producers accepted without an
error (97% of a core: two such nodes' worth of cores for 1,000 cameras). The mean hides a
trim every 30 s (the CPU timeline in the JSON peaks at 60-88% for a second or two as retention
recycles ~7,500 files). RECEIVED comes ~200 ms after a fragment's last byte because a fragment
ends only when the next keyframe's first frame arrives (one frame interval at 5 fps; 1 ms after
it, p50); PERSISTED ~20 ms later (the group commit's wait). `--no-persist` keeps 10 s
(`--memory-retention`) of every stream in memory: 500 streams x 10 s x ~110 KB/s is ~550 MB of
frames, flat from the 20th second on. The "before" server at 500 fell 22 s behind, dropped 368
producers and left 5,225 fragments without PERSISTED.

**The shared archive** (`--archive`, issue 15; 2026-12-01, commit 2bd68ff with
`--archive-store`, one run each, the store on this same 2-core machine): each fragment is also
uploaded (16 upload threads, one PUT of ~55 KB each) before its PERSISTED. At 200 producers
that costs the node 14 points of a core (42% against 28% in the same run without it; 20 more
threads) and the store ~23% of a core (14.9 s of CPU), and PERSISTED p99 grows from 239 to 397
ms. At 350 the node takes 66% and the store ~35% (22.4 s): one of the two cores, every fragment
PERSISTED, p99 554 ms. At 500 the machine, running node, store and producers, is saturated:
uploads fall behind, the disk queue fills (128 MiB) and 580 fragments (4%) get `ARCHIVAL_ERROR`
instead of PERSISTED. So a 2-core node archiving to a store on another machine takes ~350
cameras; without the archive it takes 500 (above).

What took 500 producers from 171% of a core (the event-driven ingest and writer pool of the
previous stop, 60 s runs) to 46%, each step measured with `perf` and this harness (35-60 s runs,
one each, so ±5%):

| change | CPU at 500 |
|---|---|
| a thread per producer (72d4378) | 169% |
| libwebm on a 2-thread parse pool, writer pool with group commit, retention on disk | 112-171% |
| the parse on the connection's I/O thread (no hand-off and wake-up per read) and 64 KiB reads (beast had read each body in pieces the size of its header buffer: 54,000 `recvmsg` a second) | 62% |
| a round waits 20 ms for more writes (400 -> 80 syncs a second), no CRC-32 elements in fragment files, muxing without regrowing its buffer | 54% |
| trimmed fragment files written over instead of removed and created (5-minute run, where retention runs) | 46% |

**Pulled cameras** cost a thread each (libavformat blocks), so they are counted apart and capped
by `--max-pulls` (256); each thread has a 1 MiB stack. `bench/pull_cost.py --pulls 100 --seconds
30` starts the server with no source and then with 100 pulled `file://` sources of the same clip
(a pull loops a file at its frame rate: the same demux, fragmenting and durable fragments as a
camera, without a network) and samples each once every source is live (2026-12-01, commit
358c6a6, one run, during a build on the other core):

| server | CPU (% of one core) | threads | RSS max / end (MiB) | live pulls |
|---|---|---|---|---|
| 0 pulls | 0.1% | 10 | 38 / 38 | 0 |
| 100 pulls | 6.9% | 110 | 276 / 274 | 100 |
| one pull | 0.07% | 1.00 | 2.36 (end) | - |

**`--warm-all`, removed.** It decoded every stream as frames arrived so that first looks would
need no GOP decode. Measured with this harness at 100 producers for 40 s (the server of commit
c2f63ea, the new ingest, default flags, this 2-core machine, one run each, 2026-12-01):

| server | CPU (% of one core) | RSS max (MiB) | first look p50 / p99 (ms) | repeat look p50 (ms) |
|---|---|---|---|---|
| default | 24% | 139 | 20.8 / 42.2 | 0.47 |
| `--warm-all` | 85% | 273 | 21.3 / 53.0 | 0.53 |

3.5 times the CPU and twice the memory for first looks no faster (a look at a stream the warm
set does not hold still decodes cold), so the flag went rather than gaining a CPU budget. A first
look decodes the newest GOP on a worker; a repeat look is served from the cache.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "src", "app", "lastframe"))
    ap.add_argument("--producers", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--bitrate", default="1M")
    ap.add_argument("--stagger", type=float, default=None,
                    help="producers start over this many seconds (default 5, 1 with --quick)")
    ap.add_argument("--looks", type=int, default=20)
    ap.add_argument("--ffmpeg-ref", type=int, default=0, metavar="K",
                    help="reference: K streams, each into its own ffmpeg -c copy -f segment")
    ap.add_argument("--sink-ref", type=int, default=0, metavar="K",
                    help="reference: K streams into bench/epoll_sink (the floor)")
    ap.add_argument("--ref-seconds", type=float, default=None,
                    help="length of each reference run (default --seconds)")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="an extra server flag, e.g. --server-arg=--no-persist (repeatable)")
    ap.add_argument("--archive-store", action="store_true",
                    help="archive every fragment (--archive) to a second lastframe's embedded "
                         "S3 store, as deploy/local-cluster.sh does; PERSISTED then waits for it")
    ap.add_argument("--json", help="where to write the results (default "
                                   "build/bench/ingest_load-N<producers>.json)")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: 5 producers for 8 s, 2 ffmpeg and 5 sink streams for 4 s; "
                         "fails unless the run is sane")
    args = ap.parse_args()
    if args.quick:
        args.producers, args.seconds, args.looks = 5, 6, 5
        args.ffmpeg_ref, args.sink_ref = args.ffmpeg_ref or 2, args.sink_ref or 5
        args.ref_seconds = args.ref_seconds or 4
    if args.stagger is None:
        args.stagger = 1.0 if args.quick else 5.0
    args.ref_seconds = args.ref_seconds or args.seconds
    args.bin = os.path.abspath(args.bin)
    for tool in (args.bin, GENERATOR, SINK):
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: build it first (cmake --build build)")
    # A thousand producers, and the server's side of them, need a thousand descriptors each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want != resource.RLIM_INFINITY and want < 2 * args.producers + 256:
        print(f"ingest_load.py: warning: only {want} file descriptors allowed", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = tempfile.mkdtemp(prefix="lastframe-ingest-load-")
    started = time.time()
    try:
        clip = os.path.join(work, "clip.mkv")
        make_clip(clip, int(max(args.seconds, args.ref_seconds)) + 2, args.bitrate)
        result = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
                  "machine_cores": os.cpu_count(), "bitrate": args.bitrate,
                  "clip_bytes": os.path.getsize(clip)}
        result["tree_commit"] = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
            text=True).stdout.strip()
        commit_file = os.path.join(os.path.dirname(args.bin), "COMMIT")  # a saved binary's
        if os.path.exists(commit_file):
            with open(commit_file) as f:
                result["binary_commit"] = f.read().strip()
        result["lastframe"] = run_lastframe(args, work, clip)
        if args.ffmpeg_ref:
            result["ffmpeg"] = run_ffmpeg_ref(args, work, clip, args.ffmpeg_ref, args.ref_seconds)
        if args.sink_ref:
            result["sink"] = run_sink_ref(args, work, clip, args.sink_ref, args.ref_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["wall_s"] = round(time.time() - started, 1)
    result["table"] = table(result)
    result["problems"] = problems(result)
    out = args.json or os.path.join(ROOT, "build", "bench",
                                    f"ingest_load-N{args.producers}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(result["table"])
    g = result["lastframe"]["generator"]
    print(f"\n{g['fragments_sent']} fragments sent at {g['mbit_s_per_producer']:.2f} Mbit/s per "
          f"producer; generator CPU {g['generator_cpu_s']:.1f} s; "
          f"{result['lastframe']['fragment_files_at_end']} fragment files at the end; "
          f"{result['wall_s']} s in all; results in {out}")
    if result["lastframe"]["archive_store"]:
        print(f"archive store (a process of its own, not in the table): "
              f"{result['lastframe']['archive_store_cpu_s']} s of CPU")
    for p in result["problems"]:
        print(f"ingest_load.py: problem: {p}", file=sys.stderr)
    if args.quick and result["problems"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
