#!/usr/bin/python3
"""The original recipe's method, on this machine: OpenCV opens the clip, seeks to
the last frame, reads it and writes a JPEG at quality 80; then, as the cloud
recipe did, boto3 uploads it to an S3 store and presigns a GET for 600 s.

Usage: recipe_method.py CLIP RUNS [ENDPOINT BUCKET ACCESS_KEY SECRET_KEY]
  -> one line per run: seconds. Without an endpoint, no upload (decode + encode only).
The boto3 client is made once, as a warm function keeps it between calls.
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


def uploader(endpoint, bucket, access_key, secret_key):
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def upload(path, key):
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f.read(), ContentType="image/jpeg")
        return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                         ExpiresIn=600)
    return upload


def main():
    clip, runs = sys.argv[1], int(sys.argv[2])
    upload = uploader(*sys.argv[3:7]) if len(sys.argv) >= 7 else None
    with tempfile.NamedTemporaryFile(suffix=".jpg") as out:
        for i in range(runs):
            start = time.perf_counter()
            once(clip, out.name)
            if upload:
                upload(out.name, f"recipe/{i}.jpg")
            print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
