// Drives lastframe's embedded S3 store with the AWS SDK for JavaScript v3 as
// it comes (its defaults: checksums on, x-id, aws-chunked stream bodies), plus
// lib-storage's multipart Upload, the presigner, and an aws-chunked upload with
// signed chunks built by hand.
//
//   node tests/sdk_js/s3_check.mjs ENDPOINT BUCKET ACCESS_KEY SECRET REGION WORKDIR [--keep-going]
//
// Prints "ok LABEL" per check; at the first failure "FAIL LABEL: NAME: MESSAGE
// (HTTP STATUS)" and exit status 1 (--keep-going: every check runs, then exit
// status 1 if any failed). Keys it writes are under sdk-js/RANDOM/ in BUCKET.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";

import { crc32 } from "@aws-crypto/crc32";
import { crc32c } from "@aws-crypto/crc32c";
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand,
  CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand,
  S3Client, UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Crc64Nvme } from "@aws-sdk/crc64-nvme";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { SignatureV4 } from "@smithy/signature-v4";

import {
  check, expectS3Error, expectStatus, finish, keepGoingAfterFailures, refused, same, sameBytes,
} from "./checks.mjs";

const args = process.argv.slice(2);
keepGoingAfterFailures(args.includes("--keep-going"));
const [endpoint, bucket, accessKeyId, secretAccessKey, region, workdir] =
  args.filter((a) => a !== "--keep-going");
if (!workdir) {
  console.error("usage: s3_check.mjs ENDPOINT BUCKET ACCESS_KEY SECRET REGION WORKDIR [--keep-going]");
  process.exit(2);
}

const MiB = 1024 * 1024;
const credentials = { accessKeyId, secretAccessKey };
// The SDK's defaults but for retries: a retried request would hide the first answer.
const s3 = new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });

// ---- digests, computed here ----

const md5 = (b) => createHash("md5").update(b).digest();
const sha256Hex = (b) => createHash("sha256").update(b).digest("hex");
const hmac = (key, text) => createHmac("sha256", key).update(text).digest();
const be32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

async function checksumOf(algorithm, body) {
  switch (algorithm) {
    case "CRC32": return be32(crc32(body)).toString("base64");
    case "CRC32C": return be32(crc32c(body)).toString("base64");
    case "CRC64NVME": {
      const c = new Crc64Nvme();
      c.update(body);
      return Buffer.from(await c.digest()).toString("base64");
    }
    case "SHA1": return createHash("sha1").update(body).digest("base64");
    case "SHA256": return createHash("sha256").update(body).digest("base64");
  }
  throw new Error(`no algorithm ${algorithm}`);
}

// ---- helpers ----

// Every key of a run under a prefix of its own, so that runs against one server do not meet.
const prefix = `sdk-js/${randomBytes(4).toString("hex")}/`;
const key = (name) => `${prefix}${name}`;

async function getBytes(k, extra = {}) {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k, ...extra }));
  return { got, body: Buffer.from(await got.Body.transformToByteArray()) };
}

async function putAndReadBack(name, body, want) {
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key(name), Body: body }));
  same("ETag", put.ETag, `"${md5(want).toString("hex")}"`);
  sameBytes("read back", (await getBytes(key(name))).body, want);
  return `${want.length} bytes`;
}

// A presigned URL's parameters, with the values of those not SigV4's own.
const presignedQuery = (url) => `query: ${[...new URL(url).searchParams]
  .map(([k, v]) => (k.startsWith("X-Amz-") ? k : `${k}=${v}`)).join(" ")}`;

// ---- the checks ----

const text = "lastframe: a string body, é and all\n".repeat(100);
await check("PutObject with a string body, read back", () =>
  putAndReadBack("string.txt", text, Buffer.from(text)));

const buffer = randomBytes(300 * 1024);
await check("PutObject with a Buffer body, read back", () => putAndReadBack("buffer.bin", buffer, buffer));

await check("HeadObject", async () => {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key("head.bin"), Body: buffer,
    ContentType: "application/x-test", Metadata: { camera: "north" } }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key("head.bin") }));
  same("ContentLength", head.ContentLength, buffer.length);
  same("ETag", head.ETag, `"${md5(buffer).toString("hex")}"`);
  same("ContentType", head.ContentType, "application/x-test");
  same("Metadata", JSON.stringify(head.Metadata), JSON.stringify({ camera: "north" }));
});

await check("ListObjectsV2", async () => {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key("") }));
  const keys = (listed.Contents ?? []).map((o) => o.Key);
  same("keys", JSON.stringify(keys), JSON.stringify(["buffer.bin", "head.bin", "string.txt"].map(key)));
  same("size", listed.Contents[0].Size, buffer.length);
});

await check("DeleteObject, then HeadObject is NotFound", async () => {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key("head.bin") }));
  await refused("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key("head.bin") })),
    "NotFound", 404);
});

// The SDK signs x-amz-checksum-crc32 of the empty body it was given (AAAAAA==)
// into the URL; S3 ignores checksums in presigned URLs, so any body uploads.
await check("presigned PUT (PutObjectCommand) uploaded with fetch, read back", async () => {
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key("presigned-put") }),
    { expiresIn: 60 });
  const body = randomBytes(40000);
  const r = await fetch(url, { method: "PUT", body });
  await expectStatus("PUT", r, 200);
  sameBytes("read back", (await getBytes(key("presigned-put"))).body, body);
  return presignedQuery(url);
});

// A file's stream: the SDK sends it aws-chunked (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// x-amz-decoded-content-length) with its CRC32 in a trailer, in an HTTP chunked
// body without Content-Length (ContentLength given or not).
const streamed = randomBytes(2 * MiB + 12345);
writeFileSync(join(workdir, "stream.bin"), streamed);
await check("PutObject with a stream body (aws-chunked, CRC32 trailer), read back", async () => {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key("stream.bin"),
    Body: createReadStream(join(workdir, "stream.bin")) }));
  const { got, body } = await getBytes(key("stream.bin"), { ChecksumMode: "ENABLED" });
  sameBytes("read back", body, streamed);
  same("ChecksumCRC32", got.ChecksumCRC32, await checksumOf("CRC32", streamed));
});

const sums = randomBytes(100 * 1024 + 7);
for (const algorithm of ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]) {
  await check(`PutObject with ChecksumAlgorithm ${algorithm}, GetObject and HeadObject return it`, async () => {
    const k = key(`sum-${algorithm}`);
    const want = await checksumOf(algorithm, sums);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: sums, ChecksumAlgorithm: algorithm }));
    const { got, body } = await getBytes(k, { ChecksumMode: "ENABLED" });
    sameBytes("read back", body, sums);
    same(`GetObject Checksum${algorithm}`, got[`Checksum${algorithm}`], want);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k, ChecksumMode: "ENABLED" }));
    same(`HeadObject Checksum${algorithm}`, head[`Checksum${algorithm}`], want);
    return want;
  });
}

await check("PutObject with a wrong ChecksumSHA256 is refused with BadDigest, nothing stored", async () => {
  const k = key("bad-sum");
  await refused("PutObject", () => s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: sums,
    ChecksumSHA256: createHash("sha256").update("something else").digest("base64") })), "BadDigest", 400);
  await refused("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k })), "NotFound", 404);
});

await check("presigned GET (GetObjectCommand) fetched with fetch", async () => {
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key("buffer.bin") }),
    { expiresIn: 60 });
  const r = await fetch(url);
  await expectStatus("GET", r, 200);
  sameBytes("body", Buffer.from(await r.arrayBuffer()), buffer);
  return presignedQuery(url);
});

// CopySource is "BUCKET/KEY", URL-encoded (a space as %20): copied twice, the
// second time from the first copy, whose key has spaces.
await check("CopyObject, the copies read back", async () => {
  for (const [from, to] of [["buffer.bin", "copy of buffer.bin"], ["copy of buffer.bin", "copy 2.bin"]]) {
    const copied = await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key(to),
      CopySource: encodeURI(`${bucket}/${key(from)}`) }));
    same("CopyObjectResult.ETag", copied.CopyObjectResult?.ETag, `"${md5(buffer).toString("hex")}"`);
    sameBytes(to, (await getBytes(key(to))).body, buffer);
  }
});

// SHA-256 and HMAC-SHA256 as @smithy/signature-v4 wants them.
class NodeSha256 {
  constructor(secret) { this.hash = secret ? createHmac("sha256", secret) : createHash("sha256"); }
  update(data) { this.hash.update(data); }
  async digest() { return this.hash.digest(); }
}

// ---- aws-chunked with signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), by hand ----

// The request's seed signature from the SDK's signer; each chunk's signature
// chained from it with node's crypto. |tamper| alters chunk 1's signature.
async function signedChunkPut(k, body, tamper) {
  const url = new URL(`${endpoint.replace(/\/$/, "")}/${bucket}/${k}`);
  const chunkSize = 64 * 1024;
  const chunks = [];
  for (let at = 0; at < body.length; at += chunkSize) chunks.push(body.subarray(at, at + chunkSize));
  chunks.push(Buffer.alloc(0));
  const signer = new SignatureV4({ credentials, region, service: "s3", sha256: NodeSha256,
    uriEscapePath: false, applyChecksum: false });
  const request = await signer.sign({
    method: "PUT", protocol: url.protocol, hostname: url.hostname, port: Number(url.port),
    path: url.pathname, query: {},
    headers: { host: url.host, "content-encoding": "aws-chunked",
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "x-amz-decoded-content-length": String(body.length) },
  });
  const amzDate = request.headers["x-amz-date"];
  const scope = `${amzDate.slice(0, 8)}/${region}/s3/aws4_request`;
  let signingKey = hmac(`AWS4${secretAccessKey}`, amzDate.slice(0, 8));
  for (const part of [region, "s3", "aws4_request"]) signingKey = hmac(signingKey, part);
  let previous = /Signature=([0-9a-f]{64})/.exec(request.headers.authorization)[1];
  const encoded = chunks.map((data, i) => {
    previous = hmac(signingKey, ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, sha256Hex(""),
      sha256Hex(data)].join("\n")).toString("hex");
    const sig = tamper && i === 1 ? previous.replace(/^./, (c) => (c === "0" ? "1" : "0")) : previous;
    return Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${sig}\r\n`), data,
      Buffer.from("\r\n")]);
  });
  const headers = { ...request.headers };
  delete headers.host;  // fetch sends the URL's, the one signed
  return fetch(url, { method: "PUT", headers, body: Buffer.concat(encoded) });
}

const chunked = randomBytes(200 * 1024 + 99);
await check("aws-chunked upload with signed chunks, read back", async () => {
  const r = await signedChunkPut(key("signed-chunks.bin"), chunked, false);
  await expectStatus("PUT", r, 200);
  sameBytes("read back", (await getBytes(key("signed-chunks.bin"))).body, chunked);
});

await check("aws-chunked upload with a tampered chunk signature: 403 SignatureDoesNotMatch, nothing stored",
  async () => {
    const r = await signedChunkPut(key("tampered-chunks.bin"), chunked, true);
    await expectS3Error("PUT", r, 403, "SignatureDoesNotMatch");
    await refused("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket: bucket,
      Key: key("tampered-chunks.bin") })), "NotFound", 404);
  });

// ---- multipart uploads ----

// lib-storage asks for CRC32 (CreateMultipartUpload's x-amz-checksum-algorithm),
// sends each part's and lists them in CompleteMultipartUpload: the object's
// CRC32 is then S3's composite one, the CRC32 of the parts' CRC32s, "-3".
await check("lib-storage Upload of 12 MiB in 5 MiB parts: read back, S3's multipart ETag and CRC32", async () => {
  const body = randomBytes(12 * MiB);
  const upload = new Upload({ client: s3, partSize: 5 * MiB, leavePartsOnError: false,
    params: { Bucket: bucket, Key: key("upload-12MiB.bin"), Body: body } });
  const done = await upload.done();
  const parts = [0, 5, 10].map((at) => body.subarray(at * MiB, Math.min(at + 5, 12) * MiB));
  const etag = `"${md5(Buffer.concat(parts.map(md5))).toString("hex")}-3"`;
  const crc = `${be32(crc32(Buffer.concat(parts.map((p) => be32(crc32(p)))))).toString("base64")}-3`;
  same("Upload's ETag", done.ETag, etag);
  const { got, body: back } = await getBytes(key("upload-12MiB.bin"), { ChecksumMode: "ENABLED" });
  sameBytes("read back", back, body);
  same("GetObject's ETag", got.ETag, etag);
  same("GetObject's ChecksumCRC32", got.ChecksumCRC32, crc);
  same("GetObject's ChecksumType", got.ChecksumType, "COMPOSITE");
  return `${etag}, CRC32 ${crc}`;
});

await check("multipart upload listed, aborted, then NoSuchUpload", async () => {
  const k = key("aborted.bin");
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k }));
  const part = randomBytes(5 * MiB);
  const uploaded = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: k, UploadId, PartNumber: 1,
    Body: part }));
  same("UploadPart's ETag", uploaded.ETag, `"${md5(part).toString("hex")}"`);
  const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: k, UploadId }));
  same("ListParts", JSON.stringify((listed.Parts ?? []).map((p) => [p.PartNumber, p.Size, p.ETag])),
    JSON.stringify([[1, part.length, uploaded.ETag]]));
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: k }));
  same("ListMultipartUploads", JSON.stringify((uploads.Uploads ?? []).map((u) => [u.Key, u.UploadId])),
    JSON.stringify([[k, UploadId]]));
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: k, UploadId }));
  await refused("ListParts after abort", () => s3.send(new ListPartsCommand({ Bucket: bucket, Key: k,
    UploadId })), "NoSuchUpload", 404);
  await refused("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k })), "NotFound", 404);
});

await check("CompleteMultipartUpload with a 1 MiB middle part: EntityTooSmall", async () => {
  const k = key("too-small.bin");
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k }));
  const Parts = [];
  for (const [PartNumber, size] of [[1, 5 * MiB], [2, MiB], [3, MiB]]) {
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: k, UploadId, PartNumber,
      Body: randomBytes(size) }));
    Parts.push({ PartNumber, ETag });
  }
  await refused("CompleteMultipartUpload", () => s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket,
    Key: k, UploadId, MultipartUpload: { Parts } })), "EntityTooSmall", 400);
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: k, UploadId }));
  await refused("HeadObject", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k })), "NotFound", 404);
});

finish("sdk-js s3");
