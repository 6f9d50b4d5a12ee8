#!/usr/bin/env python3
"""What a pulled camera costs (issue 14): threads, memory and CPU per pull.

Starts the real server twice on this machine, with the same flags: once with no source, once
with K pulled sources (`--config` listing K streams, each `file://` of the same clip, which a
pull loops at its own frame rate: the same demux, fragmenting and durable fragments as a camera
over RTSP, without a network). Once every source is live it samples the whole process every
second for --seconds (threads, RSS, CPU from /proc), and reports both runs and the difference
divided by K: the threads, MiB and CPU of one pull.

  bench/pull_cost.py --pulls 50 --seconds 30
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_load import ROOT, Sampler, Server, make_clip  # noqa: E402


def live_sources(server):
    """How many pulled sources are live, from GET /v1/streams (None if it does not answer)."""
    answer = server.fetch("/v1/streams")
    if answer is None or answer[0] != 200:
        return None
    streams = json.loads(answer[1])["streams"]
    return sum(1 for s in streams if (s.get("source") or {}).get("state") == "live")


def run(binary, work, clip, pulls, seconds, extra):
    data = os.path.join(work, f"data-{pulls}")
    config = os.path.join(work, f"pulls-{pulls}.toml")
    with open(config, "w") as f:
        for i in range(pulls):
            f.write(f'[[streams]]\nname = "pull-{i:04d}"\nurl = "file://{clip}"\n\n')
    server = Server(binary, data, ["--config", config, *extra])
    try:
        deadline = time.monotonic() + 60 + pulls
        while (live_sources(server) or 0) < pulls:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise SystemExit(f"{pulls} pulls did not all go live: see {server.log_path}")
            time.sleep(0.2)
        sampler = Sampler(lambda: [server.proc.pid])
        sampler.start()
        t0 = time.monotonic()
        time.sleep(seconds)
        sampler.stop()
        live = live_sources(server)
        s = sampler.summary(t0, t0 + seconds)
    finally:
        server.kill()
    return {"pulls": pulls, "live_at_end": live, "cpu_pct": s["cpu_pct"],
            "threads": s["threads_max"], "rss_max_mib": s["rss_max_mib"],
            "rss_end_mib": s["rss_end_mib"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "src", "app", "lastframe"))
    ap.add_argument("--pulls", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--bitrate", default="1M")
    ap.add_argument("--server-arg", action="append", default=[])
    ap.add_argument("--json", help="where to write the results "
                                   "(default build/bench/pull_cost-K<pulls>.json)")
    args = ap.parse_args()
    if args.pulls < 1:
        raise SystemExit("--pulls must be at least 1")
    if args.seconds < 3:
        raise SystemExit("--seconds must be at least 3 (samples are a second apart)")
    work = tempfile.mkdtemp(prefix="lf-pull-cost-")
    try:
        clip = os.path.join(work, "clip.mkv")
        make_clip(clip, 20, args.bitrate)
        base = run(os.path.abspath(args.bin), work, clip, 0, args.seconds, args.server_arg)
        loaded = run(os.path.abspath(args.bin), work, clip, args.pulls, args.seconds,
                     args.server_arg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    k = args.pulls
    per = {"threads": (loaded["threads"] - base["threads"]) / k,
           "rss_mib": (loaded["rss_end_mib"] - base["rss_end_mib"]) / k,
           "cpu_pct": (loaded["cpu_pct"] - base["cpu_pct"]) / k}
    result = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
              "machine_cores": os.cpu_count(), "bitrate": args.bitrate, "seconds": args.seconds,
              "server_args": args.server_arg, "no_pulls": base, "with_pulls": loaded,
              "per_pull": per}
    rows = ["| server | CPU (% of one core) | threads | RSS max / end (MiB) | live pulls |",
            "|---|---|---|---|---|"]
    for r in (base, loaded):
        rows.append(f"| {r['pulls']} pulls | {r['cpu_pct']:.1f}% | {r['threads']} | "
                    f"{r['rss_max_mib']:.0f} / {r['rss_end_mib']:.0f} | {r['live_at_end']} |")
    rows.append(f"| one pull | {per['cpu_pct']:.2f}% | {per['threads']:.2f} | "
                f"{per['rss_mib']:.2f} (end) | - |")
    result["table"] = "\n".join(rows)
    out = args.json or os.path.join(ROOT, "build", "bench", f"pull_cost-K{k}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(result["table"])
    print(f"results in {out}")
    if loaded["live_at_end"] != k:
        raise SystemExit(f"pull_cost.py: {loaded['live_at_end']} of {k} pulls live at the end")


if __name__ == "__main__":
    main()
