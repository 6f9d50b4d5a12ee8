#!/usr/bin/python3
"""The original recipe's method, on this machine: OpenCV opens the clip, seeks to
the last frame, reads it and writes a JPEG at quality 80 (the cloud recipe then
uploaded it to S3 and presigned a URL: not yet measured here, see BENCHMARKS.md).

Usage: recipe_method.py CLIP RUNS  -> one line per run: seconds
"""
import sys
import tempfile
import time

import cv2


def once(clip, out):
    cap = cv2.VideoCapture(clip)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(count - 1, 0))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("OpenCV could not read the last frame of " + clip)
    cv2.imwrite(out, frame, [cv2.IMWRITE_JPEG_QUALITY, 80])


def main():
    clip, runs = sys.argv[1], int(sys.argv[2])
    with tempfile.NamedTemporaryFile(suffix=".jpg") as out:
        for _ in range(runs):
            start = time.perf_counter()
            once(clip, out.name)
            print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
