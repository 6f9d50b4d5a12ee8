"""Drives lastframe's Kinesis Video Streams API with boto3 (Debian's python3-boto3).

  boto3_kvs_check.py --endpoint URL --access-key AK --secret-key SK --stream NAME
                     --clip-start EPOCH_S --fragments N --frame-ms MS --gop FRAMES
                     --width W --height H [--prefix P]

NAME must already hold one clip pushed through PutMedia with the header
x-amzn-producer-start-timestamp: EPOCH_S (a whole second: botocore sends
timestamps as whole epoch seconds), N fragments of GOP frames of MS each, W x H.

Control plane (kinesisvideo): CreateStream, DescribeStream, ListStreams (name
condition, paging), UpdateDataRetention (versions), image generation
configuration, DeleteStream by ARN, GetDataEndpoint. Archived media
(kinesis-video-archived-media, at the endpoint GetDataEndpoint names):
ListFragments (count, producer timestamps, paging, a time range), GetClip (an
MP4 whose length ffprobe measures), GetImages (JPEGs decoded with OpenCV, their
count and sizes, paging), GetMediaForFragmentList (Matroska whose frames
ffprobe counts). Errors: an unknown stream, a wrong secret, a SamplingInterval
below 3000 (refused by botocore's own validation, and by the server when
botocore's validation is off).

Prints one "ok ..." line per check; the first failure prints "FAIL ..." and
exits with status 1. Streams it makes are named PREFIX-... (default botokvs).
Run it with /usr/bin/python3: another python3 may come first on PATH.
"""

import argparse
import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile

import boto3
import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError


class CheckFailed(Exception):
    pass


def check(label, got, want):
    if got != want:
        raise CheckFailed(f"{label}: got {got!r}, want {want!r}")
    print(f"ok {label}", flush=True)


def check_true(label, cond, detail=""):
    if not cond:
        raise CheckFailed(f"{label}: {detail}")
    print(f"ok {label}", flush=True)


def check_near(label, got, want, tolerance):
    if abs(got - want) > tolerance:
        raise CheckFailed(f"{label}: got {got!r}, want {want!r} +- {tolerance}")
    print(f"ok {label} ({got})", flush=True)


def client_error(call):
    """(error code, HTTP status) of a call that must fail with a ClientError."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise CheckFailed("the call succeeded; expected an error")


def make_client(service, endpoint, access_key, secret_key, validate=True):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate,
                      connect_timeout=10, read_timeout=60),
    )


def epoch(t):
    """Epoch seconds of a timestamp botocore parsed into a datetime."""
    if not isinstance(t, datetime.datetime):
        raise CheckFailed(f"a timestamp that is not one: {t!r}")
    return t.timestamp()


def ffprobe(path, *args):
    out = subprocess.run(["ffprobe", "-v", "error", *args, "-of", "json", path],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise CheckFailed(f"ffprobe {path}: {out.stderr}")
    return json.loads(out.stdout)


def frame_count(path):
    probe = ffprobe(path, "-count_frames", "-select_streams", "v:0",
                    "-show_entries", "stream=nb_read_frames,codec_name,width,height")
    stream = probe["streams"][0]
    return int(stream["nb_read_frames"]), stream["codec_name"], stream["width"], stream["height"]


def control_plane(kv, opts):
    a_name, b_name = f"{opts.prefix}-a", f"{opts.prefix}-b"
    created = kv.create_stream(StreamName=a_name, DataRetentionInHours=2, MediaType="video/h264",
                               DeviceName="boto-camera")
    arn_a = created["StreamARN"]
    check_true("create_stream answers an ARN",
               arn_a.startswith(f"arn:aws:kinesisvideo:us-east-1:") and f":stream/{a_name}/" in arn_a,
               arn_a)
    arn_b = kv.create_stream(StreamName=b_name, DataRetentionInHours=0)["StreamARN"]
    check("create_stream twice", client_error(lambda: kv.create_stream(StreamName=a_name)),
          ("ResourceInUseException", 400))

    info = kv.describe_stream(StreamName=a_name)["StreamInfo"]
    check("describe_stream name", info["StreamName"], a_name)
    check("describe_stream ARN", info["StreamARN"], arn_a)
    check("describe_stream status", info["Status"], "ACTIVE")
    check("describe_stream retention", info["DataRetentionInHours"], 2)
    check("describe_stream media type", info["MediaType"], "video/h264")
    check("describe_stream device", info["DeviceName"], "boto-camera")
    check_true("describe_stream creation time", isinstance(info["CreationTime"], datetime.datetime),
               repr(info["CreationTime"]))
    check("describe_stream by ARN", kv.describe_stream(StreamARN=arn_a)["StreamInfo"]["StreamName"],
          a_name)
    pushed = kv.describe_stream(StreamName=opts.stream)["StreamInfo"]
    check("describe_stream of the pushed stream: media type", pushed.get("MediaType"), "video/h264")

    condition = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": opts.prefix + "-"}
    listed = kv.list_streams(StreamNameCondition=condition)
    check("list_streams with a name condition",
          [s["StreamName"] for s in listed["StreamInfoList"]], [a_name, b_name])
    check("list_streams: no NextToken when all fit", "NextToken" in listed, False)
    everything = [s["StreamName"] for s in kv.list_streams()["StreamInfoList"]]
    check_true("list_streams without a condition has all", {a_name, b_name, opts.stream} <=
               set(everything), repr(everything))
    first = kv.list_streams(StreamNameCondition=condition, MaxResults=1)
    check("list_streams page 1", [s["StreamName"] for s in first["StreamInfoList"]], [a_name])
    check_true("list_streams page 1 has a NextToken", bool(first.get("NextToken")), repr(first))
    second = kv.list_streams(StreamNameCondition=condition, MaxResults=1,
                             NextToken=first["NextToken"])
    check("list_streams page 2", [s["StreamName"] for s in second["StreamInfoList"]], [b_name])
    check("list_streams page 2 is the last", "NextToken" in second, False)
    pages = kv.get_paginator("list_streams").paginate(StreamNameCondition=condition,
                                                      PaginationConfig={"PageSize": 1})
    check("list_streams paginator",
          [s["StreamName"] for page in pages for s in page["StreamInfoList"]], [a_name, b_name])

    version = info["Version"]
    kv.update_data_retention(StreamName=a_name, CurrentVersion=version,
                             Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=3)
    after = kv.describe_stream(StreamName=a_name)["StreamInfo"]
    check("update_data_retention increases", after["DataRetentionInHours"], 5)
    check_true("update_data_retention changes the version", after["Version"] != version,
               f"still {version}")
    check("update_data_retention with a stale version",
          client_error(lambda: kv.update_data_retention(
              StreamName=a_name, CurrentVersion=version, Operation="DECREASE_DATA_RETENTION",
              DataRetentionChangeInHours=1)),
          ("VersionMismatchException", 400))
    kv.update_data_retention(StreamARN=arn_a, CurrentVersion=after["Version"],
                             Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=4)
    check("update_data_retention decreases (by ARN)",
          kv.describe_stream(StreamName=a_name)["StreamInfo"]["DataRetentionInHours"], 1)
    check("update_data_retention below zero",
          client_error(lambda: kv.update_data_retention(
              StreamName=a_name,
              CurrentVersion=kv.describe_stream(StreamName=a_name)["StreamInfo"]["Version"],
              Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=2)),
          ("InvalidArgumentException", 400))

    # Image generation: kept and described; refused on a stream without retention.
    config = {"Status": "ENABLED", "ImageSelectorType": "PRODUCER_TIMESTAMP",
              "DestinationConfig": {"Uri": "s3://lastframe/boto-images",
                                    "DestinationRegion": "us-east-1"},
              "SamplingInterval": 3000, "Format": "JPEG", "FormatConfig": {"JPEGQuality": "70"},
              "WidthPixels": 160}
    kv.update_image_generation_configuration(StreamName=a_name, ImageGenerationConfiguration=config)
    described = kv.describe_image_generation_configuration(StreamName=a_name)
    check("describe_image_generation_configuration", described.get("ImageGenerationConfiguration"),
          config)
    check("image generation without retention",
          client_error(lambda: kv.update_image_generation_configuration(
              StreamName=b_name, ImageGenerationConfiguration=config)),
          ("NoDataRetentionException", 400))
    kv.update_image_generation_configuration(StreamName=a_name)  # none: removed
    check("image generation removed",
          "ImageGenerationConfiguration" in kv.describe_image_generation_configuration(
              StreamName=a_name), False)

    check("delete_stream with a stale version",
          client_error(lambda: kv.delete_stream(StreamARN=arn_a, CurrentVersion=version)),
          ("VersionMismatchException", 400))
    kv.delete_stream(StreamARN=arn_a)
    kv.delete_stream(StreamARN=arn_b,
                     CurrentVersion=kv.describe_stream(StreamARN=arn_b)["StreamInfo"]["Version"])
    check("describe_stream after delete_stream",
          client_error(lambda: kv.describe_stream(StreamName=a_name)),
          ("ResourceNotFoundException", 404))
    check("delete_stream twice", client_error(lambda: kv.delete_stream(StreamARN=arn_a)),
          ("ResourceNotFoundException", 404))
    check("list_streams after delete_stream",
          kv.list_streams(StreamNameCondition=condition)["StreamInfoList"], [])


def data_endpoint(kv, opts):
    endpoint = None
    for api in ["PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_MEDIA_FOR_FRAGMENT_LIST",
                "GET_CLIP", "GET_IMAGES"]:
        got = kv.get_data_endpoint(StreamName=opts.stream, APIName=api)["DataEndpoint"]
        check(f"get_data_endpoint {api}", got.rstrip("/"), opts.endpoint.rstrip("/"))
        endpoint = got
    check("get_data_endpoint of an unknown stream",
          client_error(lambda: kv.get_data_endpoint(StreamName=f"{opts.prefix}-none",
                                                    APIName="GET_CLIP")),
          ("ResourceNotFoundException", 404))
    return endpoint


def list_fragments(am, opts):
    fragment_ms = opts.gop * opts.frame_ms
    fragments = am.list_fragments(StreamName=opts.stream)["Fragments"]
    check("list_fragments count", len(fragments), opts.fragments)
    starts = [epoch(f["ProducerTimestamp"]) for f in fragments]
    check_near("first fragment's producer timestamp", starts[0], opts.clip_start, 0.0015)
    for i in range(1, len(starts)):
        check_near(f"fragment {i} starts {fragment_ms} ms after fragment {i - 1}",
                   (starts[i] - starts[i - 1]) * 1000, fragment_ms, 1.5)
    check("fragment lengths", [f["FragmentLengthInMilliseconds"] for f in fragments],
          [fragment_ms] * opts.fragments)
    check_true("fragment sizes", all(f["FragmentSizeInBytes"] > 0 for f in fragments),
               repr(fragments))
    servers = [epoch(f["ServerTimestamp"]) for f in fragments]
    check("server timestamps in order", servers, sorted(servers))
    numbers = [f["FragmentNumber"] for f in fragments]
    check("fragment numbers are distinct digits",
          (len(set(numbers)), all(n.isdigit() for n in numbers)), (len(numbers), True))

    paged, token, calls = [], None, 0
    while True:
        kwargs = {"StreamName": opts.stream, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        page = am.list_fragments(**kwargs)
        calls += 1
        check_true(f"list_fragments page {calls} holds at most 2", len(page["Fragments"]) <= 2,
                   repr(page))
        paged += [f["FragmentNumber"] for f in page["Fragments"]]
        token = page.get("NextToken")
        if not token or calls > opts.fragments:
            break
    check("list_fragments paged with MaxResults=2", paged, numbers)
    check("list_fragments pages", calls, (opts.fragments + 1) // 2)

    # A producer-time range (whole seconds, as botocore sends them) that holds
    # the fragments starting in it, both ends included: fragments 1 and 2 of 1 s ones.
    low = int(opts.clip_start + fragment_ms / 1000)
    high = int(opts.clip_start + 2 * fragment_ms / 1000)
    ranged = am.list_fragments(StreamName=opts.stream, FragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {
            "StartTimestamp": datetime.datetime.fromtimestamp(low, datetime.timezone.utc),
            "EndTimestamp": datetime.datetime.fromtimestamp(high, datetime.timezone.utc)}})
    want = [n for n, t in zip(numbers, starts) if low - 0.0005 <= t <= high + 0.0005]
    check_true("the producer time range holds fragments", len(want) >= 1, repr(starts))
    check("list_fragments in a producer time range",
          [f["FragmentNumber"] for f in ranged["Fragments"]], want)
    return fragments


def get_clip(am, opts, workdir):
    duration_s = opts.fragments * opts.gop * opts.frame_ms / 1000
    clip = am.get_clip(StreamName=opts.stream, ClipFragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": opts.clip_start,
                           "EndTimestamp": opts.clip_start + duration_s}})
    check("get_clip content type", clip["ContentType"], "video/mp4")
    path = os.path.join(workdir, "clip.mp4")
    with open(path, "wb") as f:
        f.write(clip["Payload"].read())
    probe = ffprobe(path, "-show_entries", "format=duration,format_name")
    check_true("get_clip is an MP4", "mp4" in probe["format"]["format_name"], repr(probe))
    check_near("get_clip duration", float(probe["format"]["duration"]), duration_s,
               opts.frame_ms / 1000 + 0.01)
    check("get_clip frames", frame_count(path), (opts.fragments * opts.gop, "h264", opts.width,
                                                 opts.height))
    check("get_clip of a range with no fragments",
          client_error(lambda: am.get_clip(StreamName=opts.stream, ClipFragmentSelector={
              "FragmentSelectorType": "PRODUCER_TIMESTAMP",
              "TimestampRange": {"StartTimestamp": opts.clip_start - 100,
                                 "EndTimestamp": opts.clip_start - 50}})),
          ("ResourceNotFoundException", 404))


def decode_jpeg(b64):
    data = base64.b64decode(b64)
    if data[:3] != b"\xff\xd8\xff":
        raise CheckFailed(f"an image that is not a JPEG: {data[:8]!r}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CheckFailed("OpenCV cannot decode an image")
    return image


def get_images(am, opts):
    # Whole seconds, as botocore sends them: from the clip's start to its end.
    span_ms = opts.fragments * opts.gop * opts.frame_ms // 1000 * 1000
    interval = 3000
    end = opts.clip_start + span_ms / 1000
    want_count = span_ms // interval + 1
    want_times = [opts.clip_start + i * interval / 1000 for i in range(want_count)]

    def images(**extra):
        return am.get_images(StreamName=opts.stream, ImageSelectorType="PRODUCER_TIMESTAMP",
                             StartTimestamp=opts.clip_start, EndTimestamp=end,
                             SamplingInterval=interval, Format="JPEG", **extra)

    both = images(WidthPixels=opts.width // 2, HeightPixels=opts.height // 4)
    check("get_images count", len(both["Images"]), want_count)
    check("get_images times", [round(epoch(i["TimeStamp"]), 3) for i in both["Images"]],
          [round(t, 3) for t in want_times])
    for n, image in enumerate(both["Images"]):
        check(f"get_images image {n} has no error", image.get("Error"), None)
        check(f"get_images image {n} size (WidthPixels and HeightPixels)",
              decode_jpeg(image["ImageContent"]).shape, (opts.height // 4, opts.width // 2, 3))
    width_only = images(WidthPixels=opts.width // 2, FormatConfig={"JPEGQuality": "90"})
    check("get_images size (WidthPixels: the aspect ratio kept)",
          decode_jpeg(width_only["Images"][0]["ImageContent"]).shape,
          (opts.height // 2, opts.width // 2, 3))
    natural = images()
    check("get_images size (neither: the stream's)",
          decode_jpeg(natural["Images"][-1]["ImageContent"]).shape, (opts.height, opts.width, 3))

    paged, token, calls = [], None, 0
    while True:
        extra = {"MaxResults": 1}
        if token:
            extra["NextToken"] = token
        page = images(**extra)
        calls += 1
        check(f"get_images page {calls} size", len(page["Images"]), 1)
        paged.append(round(epoch(page["Images"][0]["TimeStamp"]), 3))
        token = page.get("NextToken")
        if not token or calls > want_count:
            break
    check("get_images paged with MaxResults=1", paged, [round(t, 3) for t in want_times])

    before = am.get_images(StreamName=opts.stream, ImageSelectorType="PRODUCER_TIMESTAMP",
                           StartTimestamp=opts.clip_start - 30, EndTimestamp=opts.clip_start - 25,
                           SamplingInterval=interval, Format="JPEG")
    check("get_images before the clip: NO_MEDIA",
          [(i.get("Error"), "ImageContent" in i) for i in before["Images"]],
          [("NO_MEDIA", False)] * 2)


def get_media_for_fragment_list(am, opts, fragments, workdir):
    numbers = [f["FragmentNumber"] for f in fragments]
    for label, chosen in [("one fragment", numbers[1:2]), ("two fragments", numbers[2:4])]:
        got = am.get_media_for_fragment_list(StreamName=opts.stream, Fragments=chosen)
        payload = got["Payload"].read()
        check_true(f"get_media_for_fragment_list {label} is Matroska",
                   payload[:4] == b"\x1a\x45\xdf\xa3", repr(payload[:8]))
        check(f"get_media_for_fragment_list {label} content type", got["ContentType"],
              "video/webm")
        path = os.path.join(workdir, f"fragments-{len(chosen)}.mkv")
        with open(path, "wb") as f:
            f.write(payload)
        check(f"get_media_for_fragment_list {label}: frames", frame_count(path),
              (len(chosen) * opts.gop, "h264", opts.width, opts.height))
    check("get_media_for_fragment_list of an unknown fragment",
          client_error(lambda: am.get_media_for_fragment_list(
              StreamName=opts.stream, Fragments=["1"])),
          ("ResourceNotFoundException", 404))


def errors(kv, am, am_endpoint, opts):
    unknown = f"{opts.prefix}-unknown"
    check("describe_stream of an unknown stream",
          client_error(lambda: kv.describe_stream(StreamName=unknown)),
          ("ResourceNotFoundException", 404))
    check("list_fragments of an unknown stream",
          client_error(lambda: am.list_fragments(StreamName=unknown)),
          ("ResourceNotFoundException", 404))
    check("get_clip of an unknown stream",
          client_error(lambda: am.get_clip(StreamName=unknown, ClipFragmentSelector={
              "FragmentSelectorType": "SERVER_TIMESTAMP",
              "TimestampRange": {"StartTimestamp": 1, "EndTimestamp": 2}})),
          ("ResourceNotFoundException", 404))

    wrong = make_client("kinesisvideo", opts.endpoint, opts.access_key, opts.secret_key + "x")
    check("a wrong secret (kinesisvideo)", client_error(lambda: wrong.list_streams()),
          ("InvalidSignatureException", 403))
    wrong_am = make_client("kinesis-video-archived-media", am_endpoint, opts.access_key,
                           opts.secret_key + "x")
    check("a wrong secret (archived media)",
          client_error(lambda: wrong_am.list_fragments(StreamName=opts.stream)),
          ("InvalidSignatureException", 403))
    stranger = make_client("kinesisvideo", opts.endpoint, "AKIANOTOURS0000000", opts.secret_key)
    check("an unknown access key", client_error(lambda: stranger.list_streams()),
          ("UnrecognizedClientException", 403))

    low = {"StreamName": opts.stream, "ImageSelectorType": "PRODUCER_TIMESTAMP",
           "StartTimestamp": opts.clip_start, "EndTimestamp": opts.clip_start + 1,
           "SamplingInterval": 100, "Format": "JPEG"}
    try:
        am.get_images(**low)
        raise CheckFailed("get_images with SamplingInterval 100 succeeded")
    except ParamValidationError as e:
        check_true("SamplingInterval 100: botocore's validation refuses it",
                   "SamplingInterval" in str(e), str(e))
    unvalidated = make_client("kinesis-video-archived-media", am_endpoint, opts.access_key,
                              opts.secret_key, validate=False)
    check("SamplingInterval 100: the server refuses it",
          client_error(lambda: unvalidated.get_images(**low)),
          ("InvalidArgumentException", 400))
    check("SamplingInterval 20001: the server refuses it",
          client_error(lambda: unvalidated.get_images(**dict(low, SamplingInterval=20001))),
          ("InvalidArgumentException", 400))
    check("MaxResults 0: the server refuses it",
          client_error(lambda: unvalidated.list_fragments(StreamName=opts.stream, MaxResults=0)),
          ("InvalidArgumentException", 400))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--clip-start", type=float, required=True)
    p.add_argument("--fragments", type=int, required=True)
    p.add_argument("--frame-ms", type=int, required=True)
    p.add_argument("--gop", type=int, required=True, help="frames per fragment")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--prefix", default="botokvs", help="names of the streams this script makes")
    opts = p.parse_args()
    if opts.clip_start != int(opts.clip_start):
        p.error("--clip-start must be a whole second (botocore sends whole epoch seconds)")

    kv = make_client("kinesisvideo", opts.endpoint, opts.access_key, opts.secret_key)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            control_plane(kv, opts)
            am_endpoint = data_endpoint(kv, opts)
            am = make_client("kinesis-video-archived-media", am_endpoint, opts.access_key,
                             opts.secret_key)
            fragments = list_fragments(am, opts)
            get_clip(am, opts, workdir)
            get_images(am, opts)
            get_media_for_fragment_list(am, opts, fragments, workdir)
            errors(kv, am, am_endpoint, opts)
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        return 1
    except ClientError as e:
        print(f"FAIL unexpected error {e.response['Error']} "
              f"(HTTP {e.response['ResponseMetadata']['HTTPStatusCode']}): {e}", flush=True)
        return 1
    print("boto3 kvs checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
