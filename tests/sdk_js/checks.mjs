// What s3_check.mjs and kvs_check.mjs share: one line per check, and the first
// failure ends the run with the error's name, message and HTTP status.

export class Mismatch extends Error {
  name = "Mismatch";
}

let keepGoing = false;
let failures = 0;

// --keep-going: a failed check does not end the run; finish() exits 1 instead.
export function keepGoingAfterFailures(on) {
  keepGoing = on;
}

// Runs |run|; prints "ok LABEL" (with what it returns, if anything) or
// "FAIL LABEL: NAME: MESSAGE (HTTP STATUS)" and exits 1.
export async function check(label, run) {
  try {
    const detail = await run();
    console.log(`ok ${label}${detail ? ` (${detail})` : ""}`);
  } catch (e) {
    const status = e.$metadata?.httpStatusCode ?? e.status;
    console.log(`FAIL ${label}: ${e.name}: ${e.message}${status ? ` (HTTP ${status})` : ""}`);
    failures++;
    if (!keepGoing) process.exit(1);
  }
}

// The final line: "NAME checks passed", or the count of failures and exit 1.
export function finish(name) {
  if (failures) {
    console.log(`${name} checks: ${failures} failed`);
    process.exit(1);
  }
  console.log(`${name} checks passed`);
}

export function same(what, got, want) {
  if (got !== want) throw new Mismatch(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

export function sameBytes(what, got, want) {
  got = Buffer.from(got);
  if (Buffer.compare(got, want) === 0) return;
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  throw new Mismatch(`${what}: ${got.length} bytes, want ${want.length}; first difference at byte ${at}`);
}

// The error a plain HTTP answer (fetch's) stands for: named by S3's XML <Code>
// and told by its <Message> when it has them, else "HttpError" and the body.
export async function answerError(response) {
  const text = await response.text();
  const field = (tag) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(text)?.[1]
    ?.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
  const error = new Error(field("Message") ?? text.slice(0, 500));
  return Object.assign(error, { name: field("Code") ?? "HttpError", status: response.status });
}

// A plain HTTP answer that must have |status|.
export async function expectStatus(what, response, status) {
  if (response.status === status) return;
  const e = await answerError(response);
  e.message = `${what}: ${e.message}`;
  throw e;
}

// A plain HTTP answer that must be S3's error |code| with |status|.
export async function expectS3Error(what, response, status, code) {
  const e = await answerError(response);
  if (e.status === status && e.name === code) return;
  throw Object.assign(new Mismatch(`${what}: got ${e.name} "${e.message}", want ${code} (HTTP ${status})`),
    { status: e.status });
}

// An SDK call that must fail with error |name| (the service's code) and HTTP |status|.
export async function refused(what, call, name, status) {
  try {
    await call();
  } catch (e) {
    if (e.name === name && e.$metadata?.httpStatusCode === status) return;
    throw Object.assign(new Mismatch(`${what}: got ${e.name} "${e.message}", want ${name}`),
      { status: e.$metadata?.httpStatusCode });
  }
  throw new Mismatch(`${what} succeeded; want ${name} (HTTP ${status})`);
}
