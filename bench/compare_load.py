#!/usr/bin/python3
"""Two lastframe binaries under run.py's load phase, alternated, in one run.

  bench/compare_load.py --before OLD/build/src/app/lastframe [--after build/src/app/lastframe]
                        [--runs 5] [--seconds 10]

Each run starts a fresh server of each binary in turn (order alternating), pushes the
recipe's clip to 50 streams, looks at each once, then drives `wrk -t2 -c50` over their
snapshot URLs (warm, same frame). Prints the medians and the after/before ratios: what a
change costs the hottest path, measured beside its baseline on the same machine state.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: Server, load, clip profile)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=run.BIN)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lastframe-compare-")
    name, _, encode = run.PROFILES[0]
    clip = os.path.join(work, name + ".mkv")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *encode, clip],
                   check=True)
    with open(clip, "rb") as f:
        data = f.read()
    results = {"before": [], "after": []}
    for i in range(args.runs):
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        for which in order:
            run.BIN = getattr(args, which)
            server = run.Server(os.path.join(work, f"{which}-{i}"))
            try:
                results[which].append(run.load(server, data, 50, args.seconds, 50))
            finally:
                server.stop()
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu")}
           for w, rs in results.items()}
    for w in ("before", "after"):
        m = med[w]
        print(f"{w}: {m['rps']:.0f} snapshots/s, p50 {m['p50']:.2f} ms, p99 {m['p99']:.2f} ms, "
              f"server CPU {m['cpu'] * 100:.0f}% of one core (medians of {args.runs})")
    print(f"after/before: throughput {med['after']['rps'] / med['before']['rps']:.3f}x, "
          f"p50 {med['after']['p50'] / med['before']['p50']:.3f}x, "
          f"CPU per snapshot {(med['after']['cpu'] / med['after']['rps']) / (med['before']['cpu'] / med['before']['rps']):.3f}x")


if __name__ == "__main__":
    main()
