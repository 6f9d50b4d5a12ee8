// Drives lastframe's Kinesis Video Streams API with the AWS SDK for JavaScript
// v3: the control plane (ListStreams, DescribeStream, GetDataEndpoint) and
// archived media (ListFragments, GetImages as JPEG, each image's size read from
// its SOF marker).
//
//   node tests/sdk_js/kvs_check.mjs --endpoint URL --access-key AK --secret-key SK
//       --region R --stream NAME --clip-start EPOCH_S --seconds S --fragments N
//       --width W --height H [--keep-going]
//
// NAME must hold one clip, pushed with x-amzn-producer-start-timestamp EPOCH_S,
// of S seconds in N fragments, W x H. Output as s3_check.mjs's.
import { parseArgs } from "node:util";

import {
  DescribeStreamCommand, GetDataEndpointCommand, KinesisVideoClient, ListStreamsCommand,
} from "@aws-sdk/client-kinesis-video";
import {
  GetImagesCommand, KinesisVideoArchivedMediaClient, ListFragmentsCommand,
} from "@aws-sdk/client-kinesis-video-archived-media";

import { check, finish, keepGoingAfterFailures, Mismatch, same } from "./checks.mjs";

const { values: opts } = parseArgs({
  options: Object.fromEntries(["endpoint", "access-key", "secret-key", "region", "stream", "clip-start",
    "seconds", "fragments", "width", "height"].map((o) => [o, { type: "string" }])
    .concat([["keep-going", { type: "boolean" }]])),
});
for (const [name, value] of Object.entries(opts))
  if (value === undefined) throw new Error(`--${name} is required`);
keepGoingAfterFailures(opts["keep-going"] ?? false);
const [clipStart, seconds, fragments, width, height] =
  ["clip-start", "seconds", "fragments", "width", "height"].map((o) => Number(opts[o]));

// The SDK's defaults but for retries: a retried request would hide the first answer.
const config = (endpoint) => ({ endpoint, region: opts.region, maxAttempts: 1,
  credentials: { accessKeyId: opts["access-key"], secretAccessKey: opts["secret-key"] } });
const kv = new KinesisVideoClient(config(opts.endpoint));
const StreamName = opts.stream;

// Width and height of a baseline or progressive JPEG, from its SOF marker.
function jpegSize(jpeg) {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Mismatch(`not a JPEG: ${jpeg.subarray(0, 8).toString("hex")}`);
  if (jpeg[jpeg.length - 2] !== 0xff || jpeg[jpeg.length - 1] !== 0xd9) throw new Mismatch("a JPEG without its EOI");
  for (let at = 2; at + 9 <= jpeg.length;) {
    if (jpeg[at] !== 0xff) throw new Mismatch(`a JPEG with no marker at byte ${at}`);
    const marker = jpeg[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker))
      return `${jpeg.readUInt16BE(at + 7)}x${jpeg.readUInt16BE(at + 5)}`;
    at += 2 + jpeg.readUInt16BE(at + 2);
  }
  throw new Mismatch("a JPEG without a SOF marker");
}

await check("ListStreams has the stream", async () => {
  const names = (await kv.send(new ListStreamsCommand({}))).StreamInfoList.map((s) => s.StreamName);
  if (!names.includes(StreamName)) throw new Mismatch(`${StreamName} not in ${JSON.stringify(names)}`);
});

await check("DescribeStream", async () => {
  const info = (await kv.send(new DescribeStreamCommand({ StreamName }))).StreamInfo;
  same("StreamName", info.StreamName, StreamName);
  same("Status", info.Status, "ACTIVE");
  same("MediaType", info.MediaType, "video/h264");
  if (!(info.CreationTime instanceof Date)) throw new Mismatch(`CreationTime ${info.CreationTime}`);
  return info.StreamARN;
});

let dataEndpoint;
for (const APIName of ["LIST_FRAGMENTS", "GET_IMAGES"]) {
  await check(`GetDataEndpoint ${APIName}`, async () => {
    dataEndpoint = (await kv.send(new GetDataEndpointCommand({ StreamName, APIName }))).DataEndpoint;
    same("DataEndpoint", dataEndpoint.replace(/\/$/, ""), opts.endpoint.replace(/\/$/, ""));
  });
}
const am = new KinesisVideoArchivedMediaClient(config(dataEndpoint));

await check("ListFragments", async () => {
  const listed = (await am.send(new ListFragmentsCommand({ StreamName }))).Fragments;
  same("fragments", listed.length, fragments);
  const starts = listed.map((f) => f.ProducerTimestamp.getTime()).sort((a, b) => a - b);
  same("first producer timestamp (ms)", starts[0], clipStart * 1000);
  if (!listed.every((f) => /^\d+$/.test(f.FragmentNumber) && f.FragmentSizeInBytes > 0))
    throw new Mismatch(JSON.stringify(listed));
});

// Every 3 s of the clip, both ends included (as the boto3 check expects).
const interval = 3000;
const count = Math.floor((seconds * 1000) / interval) + 1;
for (const [label, size, want] of [["the stream's size", {}, `${width}x${height}`],
  ["WidthPixels: half, the aspect ratio kept", { WidthPixels: width / 2 }, `${width / 2}x${height / 2}`]]) {
  await check(`GetImages JPEG, ${label}`, async () => {
    const { Images } = await am.send(new GetImagesCommand({ StreamName, ImageSelectorType: "PRODUCER_TIMESTAMP",
      StartTimestamp: new Date(clipStart * 1000), EndTimestamp: new Date((clipStart + seconds) * 1000),
      SamplingInterval: interval, Format: "JPEG", ...size }));
    same("images", Images.length, count);
    Images.forEach((image, i) => {
      same(`image ${i}'s error`, image.Error, undefined);
      same(`image ${i}'s time (ms)`, image.TimeStamp.getTime(), clipStart * 1000 + i * interval);
      same(`image ${i}'s size`, jpegSize(Buffer.from(image.ImageContent, "base64")), want);
    });
    return `${count} images of ${want}`;
  });
}

finish("sdk-js kvs");
