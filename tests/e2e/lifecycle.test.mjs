// Process lifecycle: the access log, and graceful shutdown on SIGTERM / SIGINT.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { h1, h2, json, killAll, makeCerts, poll, sleep, startEdge, startOrigin } from './lib.mjs';

after(killAll);

const LOG_KEYS = [
  'time',
  'request_id',
  'client',
  'method',
  'host',
  'path',
  'status',
  'bytes',
  'duration_ms',
  'upstream_ms',
  'protocol',
];

function readLog(file) {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        assert.fail(`access log line is not JSON: ${l}`);
      }
    });
}

// Waits until the log has an entry for each id; returns them by id.
async function logEntries(file, ids) {
  const found = await poll(() => {
    const byId = new Map(readLog(file).map((e) => [e.request_id, e]));
    return ids.every((id) => byId.has(id)) ? byId : null;
  }, 2500);
  assert.ok(found, `access log ${file} lacks some of ${ids}:\n${fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(no file)'}`);
  return found;
}

function tlsListener() {
  const c = makeCerts().certs.localhost;
  return `{ address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }`;
}

describe('access log', () => {
  let origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => {
    if (origin) await origin.close();
  });

  const routes = () => `hosts:
  "*":
    routes:
      - path: /al/
        origin: { url: "${origin.url}" }
        timeout: 10s
`;

  test('one JSON line per request with the documented fields', async () => {
    const edge = await startEdge(`threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - ${tlsListener()}
access_log: { path: logs.jsonl }
${routes()}`);
    try {
      const [port, tport] = edge.ports;
      const file = path.join(edge.dir, 'logs.jsonl');
      const get = await h1({ port, path: '/al/one', headers: { host: 'log.test' } });
      assert.equal(get.status, 200);
      const post = await h1({ port, path: '/al/two', method: 'POST', body: 'abcd', headers: { host: 'log.test' } });
      assert.equal(post.status, 200);
      const nf = await h2({ port: tport, path: '/nothing' });
      assert.equal(nf.status, 404);
      const ids = [get, post, nf].map((r) => r.headers['x-request-id']);
      assert.equal(new Set(ids).size, 3);
      const byId = await logEntries(file, ids);
      assert.equal(readLog(file).length, 3, 'one line per request');
      const want = [
        [get, 'GET', '/al/one', 200, 'HTTP/1.1'],
        [post, 'POST', '/al/two', 200, 'HTTP/1.1'],
        [nf, 'GET', '/nothing', 404, 'HTTP/2'],
      ];
      for (const [res, method, p, status, protocol] of want) {
        const e = byId.get(res.headers['x-request-id']);
        assert.deepEqual(Object.keys(e).filter((k) => LOG_KEYS.includes(k)).sort(), [...LOG_KEYS].sort(), JSON.stringify(e));
        assert.equal(e.method, method);
        assert.equal(e.path, p);
        assert.equal(e.status, status);
        assert.equal(e.protocol, protocol);
        assert.match(String(e.client), /127\.0\.0\.1/);
        assert.equal(typeof e.bytes, 'number');
        assert.ok(e.bytes >= res.body.length, `bytes ${e.bytes} < body ${res.body.length}`);
        assert.equal(typeof e.duration_ms, 'number');
        assert.ok(e.duration_ms >= 0);
        assert.equal(typeof e.time, 'string');
        assert.ok(!Number.isNaN(Date.parse(e.time)), `time ${e.time}`);
        assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60000, `time ${e.time}`);
      }
      const g = byId.get(get.headers['x-request-id']);
      assert.match(String(g.host), /^log\.test(:\d+)?$/);
      assert.equal(typeof g.upstream_ms, 'number');
      assert.ok(g.upstream_ms >= 0 && g.upstream_ms <= g.duration_ms + 1, JSON.stringify(g));
    } finally {
      await edge.stopClean();
    }
  });

  test('upstream time reflects a slow origin', async () => {
    const edge = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
access_log: { path: access.jsonl }
${routes()}`);
    try {
      const r = await h1({ port: edge.ports[0], path: '/al/slow/400' });
      assert.equal(r.status, 200);
      const byId = await logEntries(path.join(edge.dir, 'access.jsonl'), [r.headers['x-request-id']]);
      const e = byId.get(r.headers['x-request-id']);
      assert.ok(e.upstream_ms >= 350, `upstream_ms ${e.upstream_ms}`);
      assert.ok(e.duration_ms >= e.upstream_ms, JSON.stringify(e));
    } finally {
      await edge.stopClean();
    }
  });

  test('by default the log goes to data_dir/access.log', async () => {
    const edge = await startEdge(`threads: 1
data_dir: state
listen:
  - { address: 127.0.0.1, port: 0 }
${routes()}`);
    try {
      const r = await h1({ port: edge.ports[0], path: '/al/default' });
      assert.equal(r.status, 200);
      const byId = await logEntries(path.join(edge.dir, 'state', 'access.log'), [r.headers['x-request-id']]);
      assert.equal(byId.get(r.headers['x-request-id']).path, '/al/default');
    } finally {
      await edge.stopClean();
    }
  });

  test('enabled: false writes nothing', async () => {
    const edge = await startEdge(`threads: 1
data_dir: state
listen:
  - { address: 127.0.0.1, port: 0 }
access_log: { enabled: false, path: off.jsonl }
${routes()}`);
    try {
      for (const p of ['/al/a', '/nothing']) await h1({ port: edge.ports[0], path: p });
      await sleep(1000);
      for (const f of [path.join(edge.dir, 'off.jsonl'), path.join(edge.dir, 'state', 'access.log')]) {
        assert.equal(readLog(f).length, 0, `${f} has lines`);
      }
      assert.doesNotMatch(edge.stdout(), /"request_id"/);
    } finally {
      await edge.stopClean();
    }
  });
});

// Tries to connect until the port refuses; resolves the ms it took, or null if it never refused within `within`.
async function refusedWithin(port, within) {
  const start = Date.now();
  while (Date.now() - start < within) {
    const err = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(null);
      });
      s.once('error', (e) => resolve(e));
    });
    if (err && err.code === 'ECONNREFUSED') return Date.now() - start;
    await sleep(50);
  }
  return null;
}

describe('graceful shutdown', () => {
  let origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => {
    if (origin) await origin.close();
  });

  test('SIGTERM: in-flight requests finish, new connections are refused, exit 0', async () => {
    const edge = await startEdge(`threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - ${tlsListener()}
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        timeout: 5s
`);
    const [port, tport] = edge.ports;
    const inflight1 = h1({ port, path: '/slow/1500', timeout: 10000 });
    const inflight2 = h2({ port: tport, path: '/slow/1500', timeout: 10000 });
    await sleep(200);
    const signalled = Date.now();
    edge.proc.kill('SIGTERM');
    const [plainRefused, tlsRefused] = await Promise.all([refusedWithin(port, 1000), refusedWithin(tport, 1000)]);
    assert.notEqual(plainRefused, null, 'plain listener still accepting 1 s after SIGTERM');
    assert.notEqual(tlsRefused, null, 'TLS listener still accepting 1 s after SIGTERM');
    const [r1, r2] = await Promise.all([inflight1, inflight2]);
    assert.equal(r1.status, 200);
    assert.equal(json(r1).url, '/slow/1500');
    assert.equal(r2.status, 200);
    assert.equal(json(r2).url, '/slow/1500');
    const code = await edge.stop();
    assert.equal(code, 0, edge.logs());
    assert.ok(Date.now() - signalled < 6000, `exit ${Date.now() - signalled} ms after SIGTERM`);
  });

  test('SIGTERM with a hanging request: exit 0 after shutdown_timeout', async () => {
    const edge = await startEdge(`threads: 1
shutdown_timeout: 1s
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        timeout: 20s
`);
    const hanging = h1({ port: edge.ports[0], path: '/hang', timeout: 15000 }).then(
      (r) => r,
      (e) => e,
    );
    await sleep(300);
    const start = Date.now();
    edge.proc.kill('SIGTERM');
    let timer;
    const { code, signal } = await Promise.race([
      edge.exited,
      new Promise((resolve) => (timer = setTimeout(resolve, 5000, { code: 'still running' }))),
    ]);
    clearTimeout(timer);
    const took = Date.now() - start;
    assert.equal(signal ?? null, null, edge.logs());
    assert.equal(code, 0, edge.logs());
    assert.ok(took < 3000, `exit ${took} ms after SIGTERM`);
    assert.ok(took >= 900, `exit ${took} ms after SIGTERM, before shutdown_timeout (1s)`);
    await hanging;
  });

  test('an idle keep-alive client connection does not hold up the exit', async () => {
    const edge = await startEdge(`threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
`);
    const agent = new http.Agent({ keepAlive: true });
    try {
      const r = await h1({ port: edge.ports[0], path: '/keep', agent });
      assert.equal(r.status, 200);
      assert.notEqual(r.headers.connection, 'close');
      const start = Date.now();
      const code = await edge.stop('SIGTERM');
      assert.equal(code, 0, edge.logs());
      assert.ok(Date.now() - start < 3000, `exit ${Date.now() - start} ms after SIGTERM (shutdown_timeout 10s)`);
    } finally {
      agent.destroy();
    }
  });

  test('SIGINT on an idle server exits 0 promptly', async () => {
    const edge = await startEdge(`threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
`);
    const r = await h1({ port: edge.ports[0], path: '/before' });
    assert.equal(r.status, 200);
    const start = Date.now();
    const code = await edge.stop('SIGINT');
    assert.equal(code, 0, edge.logs());
    assert.ok(Date.now() - start < 3000, `exit ${Date.now() - start} ms after SIGINT`);
  });

  test('SIGTERM as soon as it says ready: every worker is set up by then, exit 0 (10 times, 4 threads)', async () => {
    // the main thread wakes every worker at a SIGTERM: a worker still setting up had no receiver yet (a crash)
    for (let i = 0; i < 10; i++) {
      const edge = await startEdge(`threads: 4
listen:
  - { address: 127.0.0.1, port: 0 }
cache: {}
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        cache: {}
`);
      const code = await edge.stop('SIGTERM');
      assert.equal(code, 0, edge.logs());
    }
  });
});

describe('idle timeout', () => {
  // Resolves the ms until the server closes a connection that sent `text` (maybe nothing) and then stayed idle.
  function closedAfter(port, text) {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      let start;
      let got = '';
      s.on('connect', () => {
        start = Date.now();
        if (text) s.write(text);
      });
      s.on('data', (d) => {
        got += d;
        if (text) start = Date.now(); // idle from the end of the response
      });
      s.on('error', () => {});
      s.on('close', () => resolve({ ms: Date.now() - start, got }));
      setTimeout(() => {
        s.destroy();
        reject(new Error('connection still open after 8 s'));
      }, 8000);
    });
  }

  test('limits.idle_timeout closes idle client connections', async () => {
    const origin = await startOrigin();
    const edge = await startEdge(`threads: 1
limits: { idle_timeout: 1s }
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
`);
    try {
      const port = edge.ports[0];
      const [silent, keptAlive] = await Promise.all([
        closedAfter(port, ''),
        closedAfter(port, 'GET /idle HTTP/1.1\r\nHost: t\r\n\r\n'),
      ]);
      assert.ok(silent.ms >= 800 && silent.ms < 3000, `silent connection closed after ${silent.ms} ms`);
      assert.match(keptAlive.got, /^HTTP\/1\.1 200 /);
      assert.ok(keptAlive.ms >= 800 && keptAlive.ms < 3000, `idle keep-alive connection closed after ${keptAlive.ms} ms`);
    } finally {
      await edge.stopClean();
      await origin.close();
    }
  });
});

describe('worker threads', () => {
  // CPU ticks (user + system) of each thread named edge-worker-N of the process.
  function workerTicks(pid) {
    const ticks = new Map();
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      if (!comm.startsWith('edge-worker-')) continue;
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on
      ticks.set(comm, Number(f[11]) + Number(f[12]));
    }
    return ticks;
  }

  test('threads: 3 runs three named worker threads, and connections are spread over them', { timeout: 30000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ep-threads-'));
    fs.writeFileSync(path.join(dir, 'f.txt'), 'x'.repeat(1000));
    const edge = await startEdge(`threads: 3
access_log: { enabled: false }
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { static: ${dir} }
`);
    try {
      const pid = edge.proc.pid;
      const before = workerTicks(pid);
      assert.deepEqual([...before.keys()].sort(), ['edge-worker-0', 'edge-worker-1', 'edge-worker-2']);
      // 48 keep-alive connections, opened a few at a time, each sending requests for 2 s
      const port = edge.ports[0];
      const until = Date.now() + 2000;
      let served = 0;
      const client = async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          while (Date.now() < until) {
            const r = await h1({ port, path: '/f.txt', agent });
            assert.equal(r.status, 200);
            served++;
          }
        } finally {
          agent.destroy();
        }
      };
      const clients = [];
      for (let i = 0; i < 48; i++) {
        clients.push(client());
        if (i % 8 === 7) await sleep(20);
      }
      await Promise.all(clients);
      const after = workerTicks(pid);
      const busy = [...after].filter(([name, t]) => t - before.get(name) >= 1).map(([name]) => name);
      assert.ok(busy.length >= 2, `only ${busy.join(', ')} used CPU over ${served} requests`);
    } finally {
      await edge.stopClean();
    }
  });
});
