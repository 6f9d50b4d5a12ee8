#!/usr/bin/python3
"""The cloud recipe's function body, end to end, against lastframe's own APIs on this machine:
boto3 GetDataEndpoint + GetClip of the stream's last 3 s (Kinesis Video API), OpenCV reads the
clip to its last frame, JPEG quality 80, boto3 put_object to the embedded S3 store and a
presigned GET URL valid 600 s.

Usage: recipe_kvs.py ENDPOINT STREAM RUNS ACCESS_KEY SECRET_KEY [BUCKET]
  -> one line per run: "SECONDS URL". The clients are made once (a warm function keeps
  them); a cold start is this script run anew for one run (bench/run.py times the process).
"""
import datetime
import os
import sys
import tempfile
import time

import boto3
import cv2
from botocore.config import Config


def clients(endpoint, access_key, secret_key):
    common = dict(region_name="us-east-1", aws_access_key_id=access_key,
                  aws_secret_access_key=secret_key)
    kvs = boto3.client("kinesisvideo", endpoint_url=endpoint, **common)
    s3 = boto3.client("s3", endpoint_url=endpoint,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
                      **common)
    media = {}  # archived-media clients by data endpoint, as a warm function caches them

    def archived_media(data_endpoint):
        if data_endpoint not in media:
            media[data_endpoint] = boto3.client("kinesis-video-archived-media",
                                                endpoint_url=data_endpoint, **common)
        return media[data_endpoint]
    return kvs, s3, archived_media


def handler(stream, bucket, kvs, s3, archived_media, workdir, n):
    """One invocation of the recipe: returns the presigned URL of the new image."""
    data_endpoint = kvs.get_data_endpoint(StreamName=stream, APIName="GET_CLIP")["DataEndpoint"]
    now = datetime.datetime.now(datetime.timezone.utc)
    clip = archived_media(data_endpoint).get_clip(
        StreamName=stream,
        ClipFragmentSelector={"FragmentSelectorType": "SERVER_TIMESTAMP",
                              "TimestampRange": {"StartTimestamp": now - datetime.timedelta(seconds=3),
                                                 "EndTimestamp": now}})
    path = os.path.join(workdir, f"clip-{n}.mp4")
    with open(path, "wb") as f:
        f.write(clip["Payload"].read())
    cap = cv2.VideoCapture(path)
    last = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        last = frame
    cap.release()
    os.unlink(path)
    if last is None:
        raise SystemExit("OpenCV read no frame from the clip")
    ok, jpeg = cv2.imencode(".jpg", last, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise SystemExit("OpenCV could not encode the JPEG")
    key = f"recipe/{stream}/{time.time_ns()}.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=jpeg.tobytes(), ContentType="image/jpeg")
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                     ExpiresIn=600)


def main():
    endpoint, stream, runs, access_key, secret_key = sys.argv[1:6]
    bucket = sys.argv[6] if len(sys.argv) > 6 else "lastframe"
    kvs, s3, archived_media = clients(endpoint, access_key, secret_key)
    with tempfile.TemporaryDirectory() as workdir:
        for n in range(int(runs)):
            start = time.perf_counter()
            url = handler(stream, bucket, kvs, s3, archived_media, workdir, n)
            print(f"{time.perf_counter() - start:.6f} {url}", flush=True)


if __name__ == "__main__":
    main()
