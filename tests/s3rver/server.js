#!/usr/bin/env node
'use strict'

// S3 test server for the C++ integration tests.
//
//   node tests/s3rver/server.js --port 0 --dir DIR --bucket NAME \
//        --access-key AK --secret-key SK [--fail-first N] [--delay-ms MS]
//        [--allow-anonymous] [--no-strict]
//
// Runs @20minutes/s3rver (which verifies SigV4 signatures in the Authorization header and in
// presigned URLs) on an ephemeral loopback port, and a small fault-injecting HTTP proxy on
// --port in front of it. Clients talk to the proxy only. See README.md.

const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')

const USAGE =
  'usage: node server.js --port PORT --dir DIR --bucket NAME --access-key AK --secret-key SK ' +
  '[--fail-first N] [--delay-ms MS] [--allow-anonymous] [--no-strict]'

const SLOW_DOWN_BODY =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>' +
  '<Message>Please reduce your request rate.</Message></Error>'

function xmlEscape(text) {
  return String(text).replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]
  )
}

function s3ErrorXml(code, message, detail = {}) {
  const extra = Object.entries(detail)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('')
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${extra}</Error>`
  )
}

const ACCESS_DENIED_BODY = s3ErrorXml(
  'AccessDenied',
  'Anonymous requests are refused by the test server (no Authorization header and no ' +
    'X-Amz-Algorithm/Signature query parameter).'
)

function die(message) {
  process.stderr.write(`server.js: ${message}\n${USAGE}\n`)
  process.exit(2)
}

function parseNonNegativeInt(name, value) {
  if (!/^\d+$/.test(value)) die(`${name} must be a non-negative integer, got '${value}'`)
  const n = Number(value)
  if (!Number.isSafeInteger(n)) die(`${name} is too large: '${value}'`)
  return n
}

function parseArgs(argv) {
  const valued = {
    '--port': 'port',
    '--dir': 'dir',
    '--bucket': 'bucket',
    '--access-key': 'accessKey',
    '--secret-key': 'secretKey',
    '--fail-first': 'failFirst',
    '--delay-ms': 'delayMs',
  }
  const opts = { allowAnonymous: false, strict: true }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let value
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`)
      process.exit(0)
    }
    if (arg === '--allow-anonymous' || arg === '--no-strict') {
      if (value !== undefined) die(`${arg} takes no value`)
      if (arg === '--allow-anonymous') opts.allowAnonymous = true
      else opts.strict = false
      continue
    }
    const key = valued[arg]
    if (!key) die(`unknown argument '${argv[i]}'`)
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`${arg} requires a value`)
      value = argv[++i]
    }
    if (key in opts) die(`${arg} given more than once`)
    opts[key] = value
  }
  for (const [flag, key] of Object.entries(valued)) {
    if (['failFirst', 'delayMs'].includes(key)) continue
    if (opts[key] === undefined || opts[key] === '') die(`missing required ${flag}`)
  }
  opts.port = parseNonNegativeInt('--port', opts.port)
  if (opts.port > 65535) die(`--port out of range: ${opts.port}`)
  opts.failFirst = parseNonNegativeInt('--fail-first', opts.failFirst ?? '0')
  opts.delayMs = parseNonNegativeInt('--delay-ms', opts.delayMs ?? '0')
  // S3 bucket naming rules (lower case, 3-63 chars); s3rver itself only accepts such names.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) {
    die(`invalid bucket name '${opts.bucket}' (3-63 chars of a-z, 0-9, '.', '-')`)
  }
  if (/[\s/]/.test(opts.accessKey)) die('--access-key must not contain whitespace or /')
  return opts
}

// s3rver 5.0.0 canonicalizes SigV4 query parameters with encodeURIComponent, which leaves
// ! ' ( ) * unescaped, while the SigV4 spec (and real S3, and every SDK) percent-encodes
// them. A correctly signed request such as ListObjectsV2 with prefix "a(b" would then fail with
// SignatureDoesNotMatch. Load the authentication middleware with that one call replaced by the
// RFC 3986 encoder the same file already imports. Returns false if the source did not match.
function patchQueryCanonicalization() {
  const Module = require('node:module')
  const file = require.resolve('@20minutes/s3rver/lib/middleware/authentication')
  const src = fs.readFileSync(file, 'utf8')
  const needle = ": [param, value].map(encodeURIComponent).join('=')"
  if (!src.includes(needle) || !src.includes('encodeURIComponentRFC3986')) return false
  const mod = new Module(file, module)
  mod.filename = file
  mod.paths = Module._nodeModulePaths(path.dirname(file))
  mod._compile(src.replace(needle, ": [param, value].map(encodeURIComponentRFC3986).join('=')"), file)
  mod.loaded = true
  require.cache[file] = mod
  return true
}

// Debian 12 ships Node.js 18, which lacks ES2023's copying array methods; @koa/router 15 (an
// s3rver dependency) calls Array.prototype.toReversed on every request. Define the ones missing,
// as the spec does, so the pinned packages run on the Node.js that Debian ships.
function polyfillArrayMethods() {
  const define = (name, fn) => {
    if (typeof Array.prototype[name] !== 'function') {
      Object.defineProperty(Array.prototype, name, { value: fn, writable: true, configurable: true })
    }
  }
  define('toReversed', function () {
    return Array.from(this).reverse()
  })
  define('toSorted', function (compare) {
    return Array.from(this).sort(compare)
  })
  define('toSpliced', function (...args) {
    const copy = Array.from(this)
    copy.splice(...args)
    return copy
  })
  define('with', function (index, value) {
    const copy = Array.from(this)
    const at = index < 0 ? copy.length + index : index
    if (at < 0 || at >= copy.length) throw new RangeError('Invalid index')
    copy[at] = value
    return copy
  })
}

function loadS3rver() {
  polyfillArrayMethods()
  try {
    if (!patchQueryCanonicalization()) {
      process.stderr.write(
        'server.js: warning: could not patch s3rver SigV4 query canonicalization ' +
          "(unexpected source); query values containing !'()* will fail signature checks\n"
      )
    }
    const S3rver = require('@20minutes/s3rver')
    // Not exported from the package entry point; s3rver keeps its key pairs in this registry.
    const AWSAccount = require('@20minutes/s3rver/lib/models/account')
    return { S3rver, AWSAccount }
  } catch (err) {
    process.stderr.write(
      `server.js: cannot load @20minutes/s3rver (${err.message}); run 'npm ci' in ${__dirname}\n`
    )
    process.exit(3)
  }
}

function isSigned(req) {
  if ('authorization' in req.headers) return true
  const q = req.url.indexOf('?')
  if (q === -1) return false
  const params = new URLSearchParams(req.url.slice(q + 1))
  return params.has('X-Amz-Algorithm') || params.has('Signature')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const { S3rver, AWSAccount } = loadS3rver()

  try {
    fs.mkdirSync(opts.dir, { recursive: true })
  } catch (err) {
    die(`cannot create --dir '${opts.dir}': ${err.message}`)
  }

  // Credentials: s3rver has a global registry (access key id -> account) and a hard-coded
  // DUMMY_ACCOUNT that owns the default pair S3RVER/S3RVER. Revoke that default pair so only
  // the key pair given on the command line is valid, then register ours on the same account.
  AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER')
  AWSAccount.DUMMY_ACCOUNT.createKeyPair(opts.accessKey, opts.secretKey)

  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: path.resolve(opts.dir),
    configureBuckets: [{ name: opts.bucket }],
    silent: true,
    resetOnClose: false,
    allowMismatchedSignatures: false,
  })
  // s3rver emits 'error' for every S3 error it returns (koa); keep them off stdout.
  s3rver.on('error', () => {})
  const backendAddr = await s3rver.run()
  const backendPort = backendAddr.port

  const upstreamAgent = new http.Agent({ keepAlive: true })
  let requestCount = 0

  // One line per request: "request METHOD TARGET STATUS". STATUS is "aborted" when the client
  // went away (or the upstream failed mid-response) before a complete response was sent.
  const logged = new WeakSet()
  const logRequest = (req, status) => {
    if (logged.has(req)) return
    logged.add(req)
    process.stdout.write(`request ${req.method} ${req.url} ${status}\n`)
  }

  const sendError = (req, res, status, body) => {
    req.resume() // drain any request body so the connection stays usable
    if (!res.headersSent) {
      res.writeHead(status, {
        'Content-Type': 'application/xml',
        'Content-Length': Buffer.byteLength(body),
      })
    }
    res.end(body)
    logRequest(req, status)
  }

  // body: a Buffer already read from req (after verification), or undefined to stream req.
  const forward = (req, res, expectContinue, body) => {
    const upstream = http.request({
      host: '127.0.0.1',
      port: backendPort,
      method: req.method,
      path: req.url, // raw request target, byte for byte
      headers: req.rawHeaders, // raw array: names, order, duplicates and Host unchanged
      agent: upstreamAgent,
      setHost: false,
    })
    upstream.on('response', (ures) => {
      res.writeHead(ures.statusCode, ures.statusMessage, ures.rawHeaders)
      ures.pipe(res)
      res.on('finish', () => logRequest(req, ures.statusCode))
      ures.on('error', () => res.destroy())
    })
    upstream.on('error', (err) => {
      if (logged.has(req) || res.destroyed) return
      if (res.headersSent) {
        res.destroy()
      } else {
        const msg = `test proxy: upstream error: ${err.message}`
        sendError(req, res, 502, s3ErrorXml('InternalError', msg))
      }
    })
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    if (body !== undefined) {
      upstream.end(body)
      return
    }
    if (expectContinue) res.writeContinue()
    req.pipe(upstream)
  }

  // s3rver parses x-amz-date with new Date(), which yields an Invalid Date for the SigV4 format
  // (20240101T000000Z), so its 15-minute clock-skew check never fires. Do it here, as S3 does,
  // for requests signed in the Authorization header. Returns true if the request was refused.
  const checkClock = (req, res) => {
    const auth = req.headers.authorization
    if (typeof auth !== 'string' || !auth.startsWith('AWS4-HMAC-SHA256')) return false
    const stamp = req.headers['x-amz-date'] || req.headers.date || ''
    let t = Number.NaN
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp)
    if (m) t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])
    else if (stamp) t = Date.parse(stamp)
    if (Number.isNaN(t)) {
      sendError(
        req,
        res,
        403,
        s3ErrorXml('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header')
      )
      return true
    }
    const now = Date.now()
    if (Math.abs(now - t) > 15 * 60 * 1000) {
      sendError(
        req,
        res,
        403,
        s3ErrorXml(
          'RequestTimeTooSkewed',
          'The difference between the request time and the current time is too large.',
          {
            RequestTime: stamp,
            ServerTime: new Date(now).toISOString().replace(/\.\d+/, ''),
            MaxAllowedSkewMilliseconds: 900000,
          }
        )
      )
      return true
    }
    return false
  }

  // s3rver checks that x-amz-content-sha256 is present and well-formed but never compares it
  // with the body, and ignores Content-MD5. Real S3 rejects mismatches, so the proxy buffers
  // bodies that carry a hex SHA-256 or a Content-MD5 and checks them before forwarding.
  const verifyBody = (req, res, expectContinue, onVerified) => {
    const sha = req.headers['x-amz-content-sha256']
    const md5 = req.headers['content-md5']
    const wantSha = typeof sha === 'string' && /^[0-9a-fA-F]{64}$/.test(sha)
    if (!wantSha && md5 === undefined) return onVerified()
    if (expectContinue) res.writeContinue()
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      if (res.destroyed) return
      const body = Buffer.concat(chunks)
      if (wantSha) {
        const actual = crypto.createHash('sha256').update(body).digest('hex')
        if (actual !== sha.toLowerCase()) {
          return sendError(
            req,
            res,
            400,
            s3ErrorXml(
              'XAmzContentSHA256Mismatch',
              "The provided 'x-amz-content-sha256' header does not match what was computed.",
              { ClientComputedContentSHA256: sha, S3ComputedContentSHA256: actual }
            )
          )
        }
      }
      if (md5 !== undefined) {
        const given = Buffer.from(md5, 'base64')
        if (!/^[A-Za-z0-9+/]{22}==$/.test(md5) || given.length !== 16) {
          return sendError(
            req,
            res,
            400,
            s3ErrorXml('InvalidDigest', 'The Content-MD5 you specified was invalid.', {
              'Content-MD5': md5,
            })
          )
        }
        const actual = crypto.createHash('md5').update(body).digest()
        if (!actual.equals(given)) {
          return sendError(
            req,
            res,
            400,
            s3ErrorXml('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
              ExpectedDigest: md5,
              CalculatedDigest: actual.toString('base64'),
            })
          )
        }
      }
      onVerified(body)
    })
    req.resume()
  }

  const handle = (req, res, expectContinue) => {
    const seq = ++requestCount
    req.pause()
    res.on('close', () => logRequest(req, 'aborted')) // no-op if already logged
    const proceed = () => {
      if (req.destroyed || res.destroyed) return
      if (seq <= opts.failFirst) {
        sendError(req, res, 503, SLOW_DOWN_BODY)
      } else if (!opts.allowAnonymous && !isSigned(req)) {
        sendError(req, res, 403, ACCESS_DENIED_BODY)
      } else if (!opts.strict) {
        forward(req, res, expectContinue)
      } else if (!checkClock(req, res)) {
        verifyBody(req, res, expectContinue, (body) => forward(req, res, expectContinue, body))
      }
    }
    if (opts.delayMs > 0) {
      const timer = setTimeout(proceed, opts.delayMs)
      res.on('close', () => clearTimeout(timer))
    } else {
      proceed()
    }
  }

  const proxy = http.createServer((req, res) => handle(req, res, false))
  // Expect: 100-continue: answer 100 only when the request is really forwarded, so an
  // injected 503 (or 403) is sent before the client transmits the body, as S3 does.
  proxy.on('checkContinue', (req, res) => handle(req, res, true))
  proxy.keepAliveTimeout = 30000

  await new Promise((resolve, reject) => {
    proxy.once('error', reject)
    proxy.listen(opts.port, '127.0.0.1', () => {
      proxy.removeListener('error', reject)
      resolve()
    })
  }).catch((err) => {
    process.stderr.write(`server.js: cannot listen on 127.0.0.1:${opts.port}: ${err.message}\n`)
    process.exit(1)
  })
  proxy.on('error', (err) => process.stderr.write(`server.js: proxy error: ${err.message}\n`))

  const port = proxy.address().port
  // stdout to a pipe or file is synchronous on Linux, so this line is flushed on return.
  process.stdout.write(`s3rver listening on http://127.0.0.1:${port}\n`)

  let stopping = false
  const shutdown = () => {
    if (stopping) return
    stopping = true
    const force = setTimeout(() => process.exit(0), 3000)
    force.unref()
    proxy.close()
    proxy.closeAllConnections()
    upstreamAgent.destroy()
    s3rver.httpServer.closeAllConnections()
    s3rver
      .close()
      .catch(() => {})
      .then(() => process.exit(0))
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

main().catch((err) => {
  process.stderr.write(`server.js: fatal: ${err?.stack || err}\n`)
  process.exit(1)
})
