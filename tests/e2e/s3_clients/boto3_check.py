"""Drives lastframe's embedded S3 store with boto3 (Debian's python3-boto3).

  boto3_check.py exercise ENDPOINT BUCKET ACCESS_KEY SECRET_KEY
      put/get/head/list/delete, ranges, metadata, presigned GET and PUT, and a
      wrong secret refused. Prints one "ok ..." line per check; any failure
      raises (exit status 1, with the traceback).
  boto3_check.py multipart ENDPOINT BUCKET ACCESS_KEY SECRET_KEY WORKDIR
      upload_file of a 12 MiB file in 5 MiB parts (TransferConfig), its ETag
      S3's multipart one, download_file compared byte for byte.
  boto3_check.py presign ENDPOINT BUCKET KEY ACCESS_KEY SECRET_KEY AMZDATE EXPIRES
      prints the presigned GET URL botocore makes with its clock pinned to
      AMZDATE ("20261125T000000Z"), for comparison with lastframe's signer.

Run it with /usr/bin/python3: another python3 may come first on PATH.
"""

import datetime
import hashlib
import os
import sys
import urllib.error
import urllib.request
from unittest import mock

import boto3
import boto3.s3.transfer
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, access_key, secret_key):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}),
    )


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("expected a ClientError")


def check(label, got, want):
    if got != want:
        raise AssertionError(f"{label}: got {got!r}, want {want!r}")
    print(f"ok {label}")


def fetch(url, method="GET", data=None):
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def exercise(endpoint, bucket, access_key, secret_key):
    s3 = client(endpoint, access_key, secret_key)
    body = bytes(range(256)) * 40
    key = "boto/a key+plus~é.bin"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-test",
                        Metadata={"camera": "north"})
    check("put etag is the md5", put["ETag"].strip('"'), hashlib.md5(body).hexdigest())
    head = s3.head_object(Bucket=bucket, Key=key)
    check("head length", head["ContentLength"], len(body))
    check("head type", head["ContentType"], "application/x-test")
    check("head metadata", head["Metadata"], {"camera": "north"})
    got = s3.get_object(Bucket=bucket, Key=key)
    check("get body", got["Body"].read(), body)
    part = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-19")
    check("range body", part["Body"].read(), body[10:20])
    check("range header", part["ContentRange"], f"bytes 10-19/{len(body)}")

    for k in ["boto/x/1", "boto/x/2", "boto/y"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="boto/", Delimiter="/")
    check("list keys", [o["Key"] for o in listed.get("Contents", [])], [key, "boto/y"])
    check("list prefixes", [p["Prefix"] for p in listed.get("CommonPrefixes", [])], ["boto/x/"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="boto/",
                                                         PaginationConfig={"PageSize": 1})
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    check("paged list", keys, sorted([key, "boto/x/1", "boto/x/2", "boto/y"]))
    v1 = s3.list_objects(Bucket=bucket, Prefix="boto/x/")
    check("list v1", [o["Key"] for o in v1["Contents"]], ["boto/x/1", "boto/x/2"])

    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                    ExpiresIn=60)
    check("presigned get", fetch(url), (200, body))
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "boto/p"},
                                        ExpiresIn=60)
    check("presigned put", fetch(put_url, "PUT", b"presigned")[0], 200)
    check("presigned put stored", s3.get_object(Bucket=bucket, Key="boto/p")["Body"].read(),
          b"presigned")
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    status, text = fetch(tampered)
    check("tampered url refused", (status, b"SignatureDoesNotMatch" in text), (403, True))

    for k in [key, "boto/x/1", "boto/x/2", "boto/y", "boto/p"]:
        s3.delete_object(Bucket=bucket, Key=k)
    check("deleted", error_code(lambda: s3.head_object(Bucket=bucket, Key=key)), ("404", 404))
    check("missing get", error_code(lambda: s3.get_object(Bucket=bucket, Key=key)),
          ("NoSuchKey", 404))
    check("empty after delete", s3.list_objects_v2(Bucket=bucket, Prefix="boto/")["KeyCount"], 0)

    wrong = client(endpoint, access_key, secret_key + "x")
    check("wrong secret", error_code(lambda: wrong.list_objects_v2(Bucket=bucket)),
          ("SignatureDoesNotMatch", 403))
    stranger = client(endpoint, "AKIANOTOURS", secret_key)
    check("unknown key", error_code(lambda: stranger.get_object(Bucket=bucket, Key="k")),
          ("InvalidAccessKeyId", 403))
    check("other bucket", error_code(lambda: s3.get_object(Bucket="not-ours", Key="k")),
          ("NoSuchBucket", 404))
    print("boto3 checks passed")


def multipart(endpoint, bucket, access_key, secret_key, workdir):
    s3 = client(endpoint, access_key, secret_key)
    mib = 1024 * 1024
    body = os.urandom(12 * mib)
    up, down = os.path.join(workdir, "up-12MiB.bin"), os.path.join(workdir, "down-12MiB.bin")
    with open(up, "wb") as f:
        f.write(body)
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * mib,
                                              multipart_chunksize=5 * mib)
    key = "boto/multipart 12MiB.bin"
    s3.upload_file(up, bucket, key, Config=config)
    parts = [hashlib.md5(body[at:at + 5 * mib]).digest() for at in range(0, len(body), 5 * mib)]
    etag = f'"{hashlib.md5(b"".join(parts)).hexdigest()}-3"'
    check("multipart etag", s3.head_object(Bucket=bucket, Key=key)["ETag"], etag)
    s3.download_file(bucket, key, down, Config=config)
    with open(down, "rb") as f:
        check("downloaded equals uploaded", f.read() == body, True)
    s3.delete_object(Bucket=bucket, Key=key)
    print("boto3 multipart checks passed")


def presign(endpoint, bucket, key, access_key, secret_key, amz_date, expires):
    fixed = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")

    class PinnedDatetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    with mock.patch.object(botocore.auth.datetime, "datetime", PinnedDatetime):
        s3 = client(endpoint, access_key, secret_key)
        print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=int(expires)))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"exercise": exercise, "multipart": multipart, "presign": presign}[command](*args)
