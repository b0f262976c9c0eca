// End-to-end test harness for edgeproxy: test certificates, test origins, starting and stopping the real binary, and
// small HTTP/1.1, HTTP/2 and raw-socket clients. Built-in node modules and the openssl CLI only.
//
//   EDGEPROXY_BIN=/abs/path/to/edgeproxy node --test tests/e2e/
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.EDGEPROXY_BIN || path.join(REPO, 'build-e2e', 'edgeproxy');

// Generous: the suite must also pass against an ASan/UBSan build.
export const START_TIMEOUT_MS = 20000;
export const STOP_TIMEOUT_MS = 15000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* ------------------------------------------------------------------------------------------------------------------ */
/* temp dirs                                                                                                          */

const tempDirs = [];

export function tempDir(prefix = 'ep-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
  if (!process.env.EDGEPROXY_KEEP_TMP) {
    for (const d of tempDirs) {
      try {
        fs.rmSync(d, { recursive: true, force: true });
      } catch {}
    }
  }
});

/* ------------------------------------------------------------------------------------------------------------------ */
/* certificates                                                                                                       */

export const LEAF_NAMES = {
  'a.test': 'DNS:a.test',
  'b.test': 'DNS:b.test',
  localhost: 'DNS:localhost,IP:127.0.0.1',
  'wrong.test': 'DNS:wrong.test',
};

let certsCache = null;

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

// Creates (once per process) a test CA and leaf certificates signed by it. Returns
// { dir, ca, caPem, certs: { name: { cert, key, certPem, keyPem } } } with absolute paths.
export function makeCerts(dir) {
  if (certsCache) return certsCache;
  dir = dir || tempDir('ep-certs-');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req', '-x509', '-new', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30',
      '-subj', '/CN=edgeproxy e2e test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const certs = {};
  let serial = 1000;
  for (const [name, san] of Object.entries(LEAF_NAMES)) {
    const ext = path.join(dir, `${name}.ext`);
    fs.writeFileSync(
      ext,
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
    );
    openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(
      [
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++),
        '-days', '30', '-out', `${name}.pem`, '-extfile', ext,
      ],
      dir,
    );
    const cert = path.join(dir, `${name}.pem`);
    const key = path.join(dir, `${name}.key`);
    certs[name] = { cert, key, certPem: fs.readFileSync(cert), keyPem: fs.readFileSync(key) };
  }
  const ca = path.join(dir, 'ca.pem');
  certsCache = { dir, ca, caPem: fs.readFileSync(ca), certs };
  return certsCache;
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* deterministic bodies                                                                                               */

const BLOCK = (() => {
  // 1 MiB + 7 bytes (a length coprime with powers of two, so that offsets matter) of hash-chained bytes.
  const size = 1024 * 1024 + 7;
  const buf = Buffer.alloc(size);
  let h = crypto.createHash('sha256').update('edgeproxy').digest();
  for (let off = 0; off < size; off += 32) {
    h.copy(buf, off, 0, Math.min(32, size - off));
    h = crypto.createHash('sha256').update(h).digest();
  }
  return buf;
})();

// Yields the first n bytes of the deterministic stream, in chunks of at most 1 MiB.
export function* patternChunks(n) {
  let off = 0;
  while (n > 0) {
    const len = Math.min(n, BLOCK.length - off, 1024 * 1024);
    yield BLOCK.subarray(off, off + len);
    n -= len;
    off = (off + len) % BLOCK.length;
  }
}

export function pattern(n) {
  return Buffer.concat([...patternChunks(n)]);
}

const shaCache = new Map();
export function patternSha256(n) {
  if (!shaCache.has(n)) {
    const h = crypto.createHash('sha256');
    for (const c of patternChunks(n)) h.update(c);
    shaCache.set(n, h.digest('hex'));
  }
  return shaCache.get(n);
}

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/* ------------------------------------------------------------------------------------------------------------------ */
/* test origins                                                                                                       */

// Routes (matched on the end of the path, so that they work behind any route prefix or base path):
//   .../big/N        N bytes of pattern() with content-length
//   .../chunked/N    N bytes, chunked
//   .../pause/N      N bytes with content-length: the first 70000 at once, the rest 300 ms later
//   .../pausechunked/N  the same, chunked
//   .../close/N      N bytes, close-delimited (raw HTTP/1.0 response, no length, then close)
//   .../slow/MS      waits MS ms, then answers like echo
//   .../hang         never answers
//   .../drip         head at once, then 20 x 1000 bytes over ~2 s (content-length 20000)
//   .../headdrip     "HTTP/1.1 200 OK\r\nx-drip: " then one byte every 100 ms, never ending the head
//   .../status/N     status N, body ?body= (text/plain)
//   .../upload       like echo (sha256 and length of the streamed request body)
//   anything else    echo: JSON {method, url, headers, httpVersion, remotePort, bodySha256, bodyLength}
// Every echo response also carries x-powered-by: origin-test and x-origin: yes.
function originHandler(origin) {
  return (req, res) => {
    const u = new URL(req.url, 'http://origin');
    const p = u.pathname;
    origin.requests.push({ method: req.method, url: req.url, headers: req.headers, remotePort: req.socket.remotePort });
    let m;
    if ((m = p.match(/\/(big|chunked)\/(\d+)$/))) {
      const n = Number(m[2]);
      const head = { 'content-type': 'application/octet-stream' };
      if (m[1] === 'big') head['content-length'] = n;
      drain(req);
      res.writeHead(200, head);
      Readable.from(patternChunks(n)).pipe(res);
      return;
    }
    if ((m = p.match(/\/(pause|pausechunked)\/(\d+)$/))) {
      const body = pattern(Number(m[2]));
      const head = { 'content-type': 'application/octet-stream' };
      if (m[1] === 'pause') head['content-length'] = body.length;
      drain(req);
      res.writeHead(200, head);
      res.write(body.subarray(0, 70000));
      const t = setTimeout(() => res.end(body.subarray(70000)), 300);
      origin.timers.add(t);
      return;
    }
    if ((m = p.match(/\/close\/(\d+)$/))) {
      const n = Number(m[1]);
      const sock = req.socket;
      drain(req);
      sock.write('HTTP/1.0 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n');
      Readable.from(patternChunks(n)).pipe(sock);
      return;
    }
    if (p.endsWith('/headdrip')) {
      const sock = req.socket;
      drain(req);
      sock.write('HTTP/1.1 200 OK\r\nx-drip: ');
      const t = setInterval(() => {
        if (sock.destroyed) return clearInterval(t);
        sock.write('a');
      }, 100);
      origin.timers.add(t);
      sock.on('close', () => clearInterval(t));
      return;
    }
    if (p.endsWith('/hang')) {
      drain(req);
      origin.hanging.add(res);
      return;
    }
    if (p.endsWith('/drip')) {
      drain(req);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 20000 });
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed) return clearInterval(t);
        res.write(Buffer.alloc(1000, 0x61 + (i % 26)));
        if (++i === 20) {
          clearInterval(t);
          res.end();
        }
      }, 100);
      origin.timers.add(t);
      return;
    }
    if ((m = p.match(/\/status\/(\d+)$/))) {
      drain(req);
      const body = u.searchParams.get('body') || '';
      res.writeHead(Number(m[1]), { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const delay = (m = p.match(/\/slow\/(\d+)$/)) ? Number(m[1]) : 0;
    const h = crypto.createHash('sha256');
    let length = 0;
    req.on('data', (c) => {
      h.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const send = () => {
        if (res.destroyed) return;
        const body = JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          httpVersion: req.httpVersion,
          remotePort: req.socket.remotePort,
          bodySha256: h.digest('hex'),
          bodyLength: length,
        });
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-powered-by': 'origin-test',
          'x-origin': 'yes',
        });
        res.end(body);
      };
      if (delay) origin.timers.add(setTimeout(send, delay));
      else send();
    });
  };
}

function drain(req) {
  req.on('data', () => {});
}

const origins = new Set();

// Starts a test origin on 127.0.0.1:0. opts.tls: a leaf name of makeCerts() ("localhost", "wrong.test") for HTTPS.
// Returns { port, url, requests, close() }.
export async function startOrigin(opts = {}) {
  const origin = { requests: [], hanging: new Set(), timers: new Set(), sockets: new Set() };
  const handler = originHandler(origin);
  let server;
  if (opts.tls) {
    const c = makeCerts().certs[opts.tls];
    server = https.createServer({ cert: c.certPem, key: c.keyPem, ...(opts.tlsOptions || {}) }, handler);
    server.on('secureConnection', (s) => track(s));
  } else {
    server = http.createServer(handler);
  }
  server.keepAliveTimeout = 30000;
  const track = (s) => {
    origin.sockets.add(s);
    s.on('close', () => origin.sockets.delete(s));
  };
  server.on('connection', track);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  origin.server = server;
  origin.port = server.address().port;
  origin.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${origin.port}`;
  origins.add(origin);
  origin.close = () => {
    origins.delete(origin);
    for (const t of origin.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    for (const s of origin.sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return origin;
}

// A port on 127.0.0.1 where nothing listens (bound, then released), for a server to listen on later or a client to be
// refused on. It is taken below the kernel's ephemeral range: a port of that range, once released, could be handed to
// any outgoing connection (a test client's, edgeproxy's own) before the server binds it ("Address already in use").
const handedOut = new Set();
function ephemeralLow() {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}
export async function closedPort() {
  const low = Math.min(ephemeralLow(), 32768);
  for (let tries = 0; tries < 200; tries++) {
    const port = 10000 + Math.floor(Math.random() * (low - 10000));
    if (handedOut.has(port)) continue;
    const s = net.createServer();
    const ok = await new Promise((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) continue;
    await new Promise((resolve) => s.close(resolve));
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port below the ephemeral range');
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* edgeproxy process                                                                                                  */

const running = new Set();

// ASan builds: libh2o's per-thread recycle lists are reported as leaks at exit; use the project's suppressions unless
// the caller set LSAN_OPTIONS (tests/run.sh does the same).
function childEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  const supp = path.join(REPO, 'tests', 'lsan.supp');
  if (env.LSAN_OPTIONS === undefined && fs.existsSync(supp)) env.LSAN_OPTIONS = `suppressions=${supp}:print_suppressions=0`;
  return env;
}

export function runCli(args, opts = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(), ...opts });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeout || 15000);
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Writes yamlText to DIR/edge.yaml (DIR: opts.dir or a new temp dir), starts edgeproxy -c on it and waits for one
// "edgeproxy: listening on SCHEME://ADDR:PORT" line per listener and then "edgeproxy: ready".
// Relative paths in the conf resolve against DIR. Returns { ports, schemes, proc, dir, conf, stop(signal), logs(), exited }.
export async function startEdge(yamlText, opts = {}) {
  const dir = opts.dir || tempDir('ep-edge-');
  const conf = path.join(dir, opts.file || 'edge.yaml');
  fs.writeFileSync(conf, yamlText);
  // An empty working directory elsewhere: relative paths in the conf must resolve against the conf file, not the cwd.
  const proc = spawn(BIN, ['-c', conf], { cwd: opts.cwd || tempDir('ep-cwd-'), stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(opts.env) });
  running.add(proc);
  let out = '';
  let stdout = '';
  let stderr = '';
  const edge = { proc, dir, conf, ports: [], schemes: [], logs: () => out, stdout: () => stdout, stderr: () => stderr };
  edge.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      edge.exitCode = code;
      edge.exitSignal = signal;
      resolve({ code, signal });
    });
  });
  await new Promise((resolve, reject) => {
    let done = false;
    let buf = '';
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        proc.kill('SIGKILL');
        reject(err);
      } else resolve();
    };
    const onData = (which) => (d) => {
      const s = d.toString();
      out += s;
      if (which === 'stdout') stdout += s;
      else stderr += s;
      if (done) return;
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = line.match(/edgeproxy: listening on (https?):\/\/(\S+):(\d+)\s*$/);
        if (m) {
          edge.schemes.push(m[1]);
          edge.ports.push(Number(m[3]));
        } else if (/edgeproxy: ready\b/.test(line)) {
          finish();
        }
      }
    };
    proc.stdout.on('data', onData('stdout'));
    proc.stderr.on('data', onData('stderr'));
    proc.on('error', (e) => finish(e));
    proc.on('exit', (code, signal) =>
      finish(new Error(`edgeproxy exited before ready (code ${code}, signal ${signal}):\n${out}`)),
    );
    const timer = setTimeout(
      () => finish(new Error(`edgeproxy not ready after ${START_TIMEOUT_MS} ms:\n${out}`)),
      opts.startTimeout || START_TIMEOUT_MS,
    );
  });
  // Sends `signal` and waits for the exit; returns the exit code (or the signal name if killed by one).
  edge.stop = async (signal = 'SIGTERM', timeout = STOP_TIMEOUT_MS) => {
    if (edge.exitCode === undefined && edge.exitSignal === undefined) proc.kill(signal);
    let timer;
    const r = await Promise.race([edge.exited, new Promise((resolve) => (timer = setTimeout(resolve, timeout, null)))]);
    clearTimeout(timer);
    if (!r) {
      proc.kill('SIGKILL');
      await edge.exited;
      throw new Error(`edgeproxy did not exit within ${timeout} ms after ${signal}:\n${out}`);
    }
    return r.code !== null ? r.code : r.signal;
  };
  // stop() and assert a clean exit (code 0), failing with the process output otherwise (crash, sanitizer report).
  edge.stopClean = async (signal = 'SIGTERM') => {
    const code = await edge.stop(signal);
    assert.equal(code, 0, `edgeproxy exit status ${code}; output:\n${out.slice(-6000)}`);
  };
  return edge;
}

// The conf of an edgeproxy with one caching route at / to originUrl: `top` is more top-level lines (data_dir, cache,
// admin...), each ending in a newline; `cache` the route's cache block.
export function cachingConf(originUrl, { threads = 1, top = '', cache = '{ default_ttl: 1h, override: true }' } = {}) {
  return `threads: ${threads}
${top}listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${originUrl}" }
        cache: ${cache}
`;
}

// Kills every edgeproxy still running in this process and closes every test origin still open (after() hook of every
// file, so that a failing hook cannot leave the file's process hanging).
export async function killAll() {
  for (const o of [...origins]) await o.close();
  const waits = [];
  for (const p of running) {
    waits.push(new Promise((resolve) => p.once('exit', resolve)));
    p.kill('SIGKILL');
  }
  await Promise.all(waits);
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* clients                                                                                                            */

function bodyToStream(body) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return null;
  if (body && typeof body.pipe === 'function') return body;
  if (body && body.pattern !== undefined) return Readable.from(patternChunks(body.pattern));
  throw new Error('bad body');
}

// HTTP/1.1 request. opts: port, path, method, headers, body (string | Buffer | Readable | {pattern: n}), tls (bool),
// servername, ca, agent (default false: a fresh connection), setHost, timeout, localAddress (the client's address).
// Resolves { status, headers, body: Buffer, elapsed (ms to the end), headElapsed, reusedSocket, localPort, httpVersion }.
export function h1(opts) {
  const {
    port,
    path: p = '/',
    method = 'GET',
    body,
    tls: useTls = false,
    servername,
    ca,
    agent = false,
    setHost = true,
    timeout = 30000,
    host = '127.0.0.1',
  } = opts;
  let headers = opts.headers || {};
  const mod = useTls ? https : http;
  const start = Date.now();
  const lower = Object.keys(headers).map((k) => k.toLowerCase());
  if ((typeof body === 'string' || Buffer.isBuffer(body)) && !lower.includes('content-length') && !lower.includes('transfer-encoding')) {
    // node frames DELETE/OPTIONS bodies with neither content-length nor chunked unless told
    headers = { ...headers, 'content-length': Buffer.byteLength(body) };
  }
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = mod.request({
      host,
      port,
      path: p,
      method,
      headers,
      agent,
      setHost,
      servername: useTls ? servername : undefined,
      ca: useTls ? ca : undefined,
      rejectUnauthorized: useTls ? !!ca : undefined,
      localAddress: opts.localAddress,
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`request ${method} ${p} timed out after ${timeout} ms`));
    }, timeout);
    req.on('error', (e) => {
      if (responded) return; // e.g. EPIPE after an early error response: the response is what counts
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      responded = true;
      const headElapsed = Date.now() - start;
      const localPort = res.socket && res.socket.localPort;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      res.on('aborted', () => {
        clearTimeout(timer);
        reject(new Error(`response to ${method} ${p} aborted`));
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks),
          elapsed: Date.now() - start,
          headElapsed,
          reusedSocket: req.reusedSocket,
          localPort,
          httpVersion: res.httpVersion,
        });
      });
    });
    const stream = bodyToStream(body);
    if (stream) {
      stream.on('error', () => {});
      stream.pipe(req);
    } else if (body !== undefined && body !== null) req.end(body);
    else req.end();
  });
}

// Opens an HTTP/2 session over TLS (ALPN h2).
export async function h2connect(port, { servername = 'localhost', ca } = {}) {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    servername,
    ca,
    rejectUnauthorized: !!ca,
    ALPNProtocols: ['h2'],
  });
  await new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  session.on('error', () => {});
  return session;
}

// HTTP/2 request. opts: port (or session), path, method, headers, body, authority, timeout.
// Resolves { status, headers, body, elapsed, headElapsed }.
export async function h2(opts) {
  const { port, path: p = '/', method = 'GET', headers = {}, body, timeout = 30000, authority } = opts;
  const own = !opts.session;
  const session = opts.session || (await h2connect(port, opts));
  const start = Date.now();
  try {
    return await new Promise((resolve, reject) => {
      const reqHeaders = { ':method': method, ':path': p, ...headers };
      if (authority) reqHeaders[':authority'] = authority;
      const hasBody = body !== undefined && body !== null;
      const stream = session.request(reqHeaders, { endStream: !hasBody });
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error(`h2 request ${method} ${p} timed out after ${timeout} ms`));
      }, timeout);
      let head = null;
      let headElapsed;
      const chunks = [];
      stream.on('response', (h) => {
        head = h;
        headElapsed = Date.now() - start;
      });
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        clearTimeout(timer);
        if (!head) return reject(new Error('h2 stream ended without a response'));
        const headers = {};
        for (const [k, v] of Object.entries(head)) if (!k.startsWith(':')) headers[k] = v;
        resolve({
          status: head[':status'],
          headers,
          body: Buffer.concat(chunks),
          elapsed: Date.now() - start,
          headElapsed,
        });
      });
      stream.on('error', (e) => {
        clearTimeout(timer);
        if (head) return; // a reset after a complete response does not matter
        reject(e);
      });
      stream.on('close', () => {
        if (!head && stream.rstCode) {
          clearTimeout(timer);
          reject(new Error(`h2 stream reset (code ${stream.rstCode}) before a response`));
        }
      });
      if (hasBody) {
        const s = bodyToStream(body);
        if (s) s.pipe(stream);
        else stream.end(body);
      }
    });
  } finally {
    if (own) session.close();
  }
}

// One request over proto "h1" (plain), "h1s" (HTTP/1.1 over TLS) or "h2" (HTTP/2 over TLS).
export function request(proto, opts) {
  if (proto === 'h2') return h2(opts);
  return h1({ ...opts, tls: proto === 'h1s' });
}

// Writes `text` on a raw TCP (or TLS) connection and reads until the peer closes (or timeout).
// Resolves { raw: Buffer, status, headers (lower-cased, repeated ones joined by ", "), head: string, rest: Buffer (all
// bytes after the head), body: Buffer (rest decoded by content-length / chunked) }.
export function raw(port, text, { useTls = false, timeout = 10000, servername = 'localhost' } = {}) {
  return new Promise((resolve, reject) => {
    const sock = useTls
      ? tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    const timer = setTimeout(() => sock.destroy(), timeout);
    sock.on(useTls ? 'secureConnect' : 'connect', () => sock.write(text));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', (e) => {
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(e);
      }
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks)));
    });
  });
}

export function parseRaw(buf) {
  const end = buf.indexOf('\r\n\r\n');
  const head = end >= 0 ? buf.subarray(0, end).toString('latin1') : buf.toString('latin1');
  const rest = end >= 0 ? buf.subarray(end + 4) : Buffer.alloc(0);
  const lines = head.split('\r\n');
  const m = lines[0].match(/^HTTP\/\d\.\d (\d{3})/);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
  }
  let body = rest;
  if (/\bchunked\b/i.test(headers['transfer-encoding'] || '')) body = dechunk(rest);
  else if (headers['content-length'] !== undefined) body = rest.subarray(0, Number(headers['content-length']));
  return { raw: buf, status: m ? Number(m[1]) : null, headers, head, rest, body };
}

function dechunk(buf) {
  const out = [];
  let off = 0;
  for (;;) {
    const nl = buf.indexOf('\r\n', off);
    if (nl < 0) break;
    const size = parseInt(buf.subarray(off, nl).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(buf.subarray(nl + 2, nl + 2 + size));
    off = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/* ------------------------------------------------------------------------------------------------------------------ */
/* assertions                                                                                                         */

export const REQUEST_ID_RE = /^[0-9a-f]{32}$/;

// Asserts an edgeproxy error response: status, JSON body {message, request_id}, content-type application/json and
// x-request-id equal to request_id. Returns the parsed body.
export function assertJsonError(res, status, what = '') {
  const ctx = `${what} (status ${res.status}, body ${res.body.toString().slice(0, 300)})`;
  assert.equal(res.status, status, `status ${ctx}`);
  assert.match(String(res.headers['content-type'] || ''), /^application\/json\b/, `content-type ${ctx}`);
  let j;
  try {
    j = JSON.parse(res.body.toString());
  } catch (e) {
    assert.fail(`error body is not JSON ${ctx}`);
  }
  assert.equal(typeof j.message, 'string', `message ${ctx}`);
  assert.ok(j.message.length > 0, `empty message ${ctx}`);
  assert.equal(typeof j.request_id, 'string', `request_id ${ctx}`);
  assert.ok(j.request_id.length > 0, `empty request_id ${ctx}`);
  assert.equal(res.headers['x-request-id'], j.request_id, `x-request-id header vs body ${ctx}`);
  return j;
}

export function json(res) {
  try {
    return JSON.parse(res.body.toString());
  } catch {
    assert.fail(`not JSON (status ${res.status}): ${res.body.toString().slice(0, 300)}`);
  }
}

// Polls fn() every 50 ms until it returns a truthy value or timeout ms pass; returns the last value.
export async function poll(fn, timeout = 2000) {
  const end = Date.now() + timeout;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(50);
  }
}
