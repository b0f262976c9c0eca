// The gateway: API keys (conf and admin API, the keys CLI), usage plans (token bucket exact across threads, quotas
// that persist and reset at the period's end), route and client-address throttles, RateLimit headers, and keys kept
// out of the logs. JWT and CORS are in auth.test.mjs.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, closedPort, h1, json, killAll, poll, runCli, sleep, startEdge, startOrigin, tempDir } from './lib.mjs';

after(killAll);

const TOKEN = 'gateway-admin-token-0123456789';
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const CONF_KEY = 'conf-key-secret-0001';
const OFF_KEY = 'conf-key-secret-0002';

// A conf with a static route (for load), keyed routes on an origin, plans and two conf keys.
function gatewayConf({ adminPort, origin, pub, quota = '1000000/day', extra = '' }) {
  return `
threads: 2
listen: [{ address: 127.0.0.1, port: 0 }]
access_log: { path: access.jsonl }
admin: { port: ${adminPort}, token: ${TOKEN} }
api_keys: { header: x-api-key, query: api_key }
plans:
  hammer: { rate: 100/s, burst: 50 }
  small: { rate: 1000/s, burst: 1000, quota: ${quota} }
  slow: { rate: 2/s, burst: 2 }
  methods:
    rate: 1000/s
    overrides:
      - { path: /api/, methods: [POST], rate: 1/s, burst: 1 }
keys:
  - { name: conf-key, plan: small, sha256: ${sha(CONF_KEY)} }
  - { name: off-key, plan: small, sha256: ${sha(OFF_KEY)}, enabled: false }
hosts:
  "*":
    routes:
      - path: /static/
        origin: { static: ${pub} }
        auth: api_key
      - path: /api/
        origin: { url: "${origin.url}" }
        auth: api_key
      - path: /cached/
        origin: { url: "${origin.url}" }
        auth: api_key
        cache: { default_ttl: 60s, override: true }
      - path: /open/
        origin: { url: "${origin.url}" }
        throttle: { rate: 5/s, burst: 5 }
      - path: /perip/
        origin: { url: "${origin.url}" }
        ip_throttle: { rate: 1/m, burst: 3 }
${extra}`;
}

async function setup(opts = {}) {
  const dir = opts.dir || tempDir('ep-gw-');
  const pub = path.join(dir, 'pub');
  fs.mkdirSync(pub, { recursive: true });
  fs.writeFileSync(path.join(pub, 'x.txt'), 'static body\n');
  const origin = opts.origin || (await startOrigin());
  const adminPort = opts.adminPort || (await closedPort());
  const edge = await startEdge(gatewayConf({ adminPort, origin, pub, ...opts }), { dir, env: opts.env });
  const port = edge.ports[0];
  const get = (p, headers = {}, method = 'GET') => h1({ port, path: p, method, headers });
  const admin = (p, method = 'GET', body, token = TOKEN) =>
    h1({
      port: adminPort,
      path: p,
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  return { dir, origin, adminPort, edge, port, get, admin };
}

describe('API keys', () => {
  let g;
  before(async () => {
    g = await setup();
  });
  after(async () => {
    await g.edge.stopClean();
  });

  test('a missing, unknown or disabled key gets 403 {"message": "Forbidden"} and the origin is not asked', async () => {
    const before = g.origin.requests.length;
    for (const headers of [{}, { 'x-api-key': 'nope' }, { 'x-api-key': OFF_KEY }, { 'x-api-key': '' }]) {
      const r = await g.get('/api/x', headers);
      assertJsonError(r, 403);
      assert.equal(json(r).message, 'Forbidden');
    }
    assert.equal(g.origin.requests.length, before);
  });

  test('a conf key passes, from the header or the query parameter, with RateLimit headers', async () => {
    let r = await g.get('/api/a', { 'x-api-key': CONF_KEY });
    assert.equal(r.status, 200);
    assert.match(r.headers['ratelimit-policy'], /"key";q=1000;w=1/);
    assert.match(r.headers['ratelimit-policy'], /"quota";q=1000000;w=86400/);
    assert.match(r.headers.ratelimit, /"key";r=\d+;t=\d+/);
    assert.match(r.headers.ratelimit, /"quota";r=\d+;t=\d+/);
    r = await g.get(`/api/b?api_key=${CONF_KEY}`);
    assert.equal(r.status, 200);
    r = await g.get('/static/x.txt', { 'x-api-key': CONF_KEY });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'static body\n');
  });

  test('the admin API needs its token: 401 without it or with a wrong one', async () => {
    assertJsonError(await g.admin('/keys', 'GET', undefined, null), 401);
    assertJsonError(await g.admin('/keys', 'POST', { plan: 'small' }, 'wrong-token-0123456789xxx'), 401);
  });

  test('POST /keys makes a key that works at once; disable, enable and delete take effect at once', async () => {
    let r = await g.admin('/keys', 'POST', { name: 'mobile', plan: 'small' });
    assert.equal(r.status, 201, r.body.toString());
    const k = json(r);
    assert.match(k.key, /^[A-Za-z0-9]{40}$/);
    assert.match(k.id, /^k[0-9a-f]{16}$/);
    assert.equal(k.name, 'mobile');
    assert.equal(k.plan, 'small');
    assert.equal(k.enabled, true);
    assert.equal(k.source, 'api');
    assert.equal((await g.get('/api/m', { 'x-api-key': k.key })).status, 200);

    r = await g.admin('/keys', 'GET');
    assert.equal(r.status, 200);
    const list = json(r).keys;
    assert.deepEqual(
      list.map((x) => x.id).filter((id) => ['conf-key', 'off-key', k.id].includes(id)),
      ['conf-key', 'off-key', k.id],
    );
    assert.ok(list.every((x) => x.key === undefined), 'secrets are never listed');

    r = await g.admin(`/keys/${k.id}/disable`, 'POST');
    assert.equal(r.status, 200);
    assert.equal(json(r).enabled, false);
    assertJsonError(await g.get('/api/m', { 'x-api-key': k.key }), 403);
    r = await g.admin(`/keys/${k.id}/enable`, 'POST');
    assert.equal(json(r).enabled, true);
    assert.equal((await g.get('/api/m', { 'x-api-key': k.key })).status, 200);
    r = await g.admin(`/keys/${k.id}`, 'GET');
    assert.equal(json(r).id, k.id);
    r = await g.admin(`/keys/${k.id}`, 'DELETE');
    assert.equal(r.status, 200);
    assert.deepEqual(json(r), { deleted: k.id });
    assertJsonError(await g.get('/api/m', { 'x-api-key': k.key }), 403);
    assertJsonError(await g.admin(`/keys/${k.id}`, 'GET'), 404);
  });

  test('admin errors: unknown plan, bad body, conf keys are read-only, unknown ids, wrong methods', async () => {
    assertJsonError(await g.admin('/keys', 'POST', { plan: 'gold' }), 400);
    assertJsonError(await g.admin('/keys', 'POST', { name: 'a b' }), 400);
    assertJsonError(await g.admin('/keys', 'POST', { color: 'red' }), 400);
    const r = await h1({
      port: g.adminPort,
      path: '/keys',
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: '{not json',
    });
    assertJsonError(r, 400);
    assertJsonError(await g.admin('/keys/conf-key/disable', 'POST'), 409);
    assertJsonError(await g.admin('/keys/conf-key', 'DELETE'), 409);
    assertJsonError(await g.admin('/keys/nope/disable', 'POST'), 404);
    assertJsonError(await g.admin('/keys/conf-key/disable', 'GET'), 405);
    assertJsonError(await g.admin('/keys', 'PUT'), 405);
    assert.equal((await g.get('/api/c', { 'x-api-key': CONF_KEY })).status, 200);
  });

  test('a plan override limits one method of one route: POST /api/ at 1/s, GET unaffected', async () => {
    const k = json(await g.admin('/keys', 'POST', { plan: 'methods' }));
    const post = () => h1({ port: g.port, path: '/api/o', method: 'POST', headers: { 'x-api-key': k.key }, body: 'x' });
    assert.equal((await post()).status, 200);
    const r = await post();
    assertJsonError(r, 429);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    for (let i = 0; i < 5; i++) assert.equal((await g.get('/api/o', { 'x-api-key': k.key })).status, 200);
  });

  test('a cache hit still counts against the caller\'s rate', async () => {
    const k = json(await g.admin('/keys', 'POST', { plan: 'slow' }));
    const url = `/cached/hit-${Date.now()}`;
    const seen = () => g.origin.requests.filter((x) => x.url.endsWith(url.slice('/cached'.length))).length;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await g.get(url, { 'x-api-key': k.key })).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal(seen(), 1, 'the second answer was a hit');
  });
});

describe('throttles', () => {
  let g;
  before(async () => {
    g = await setup();
  });
  after(async () => {
    await g.edge.stopClean();
  });

  test('route throttle (every caller together): a burst of 5 then 429 with Retry-After and RateLimit', async () => {
    const rs = [];
    for (let i = 0; i < 8; i++) rs.push(await g.get('/open/t'));
    const ok = rs.filter((r) => r.status === 200).length;
    assert.ok(ok >= 5 && ok <= 6, `admitted ${ok}`); // 5 at once, maybe one refilled token (5/s) while we ask
    const refused = rs.find((r) => r.status === 429);
    assertJsonError(refused, 429);
    assert.equal(json(refused).message, 'Too Many Requests');
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(refused.headers['ratelimit-policy'], /"route";q=5;w=1/);
    assert.match(refused.headers.ratelimit, /"route";r=0;t=1/);
  });

  test('client-address throttle: 3 at once, then 429 until a token is back (1/m)', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await g.get('/perip/a')).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const r = await g.get('/perip/a');
    assert.ok(Number(r.headers['retry-after']) > 1 && Number(r.headers['retry-after']) <= 60, r.headers['retry-after']);
  });

  // The exactness test: 200 connections over 2 worker threads hammer one key limited to 100/s burst 50 for
  // 3 s; the admitted count must be the token bucket's allowance, 50 + 100 x elapsed, within 1%.
  test('200 concurrent connections on one key at 100/s burst 50 for 3 s: admitted = 50 + 100 x elapsed (+-1%)', async (t) => {
    const k = json(await g.admin('/keys', 'POST', { plan: 'hammer' }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    const counts = { 200: 0, 429: 0, other: 0 };
    let first = null;
    let last = 0;
    let deadline = 0;
    const one = (headers) =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: g.port, path: '/static/x.txt', agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', reject);
      });
    // open the 200 connections first (without a key: 403, the key's bucket is untouched), so that the first requests
    // of the measured run do not wait for a TCP handshake the last ones do not have
    const warm = await Promise.all(Array.from({ length: 200 }, () => one({})));
    assert.ok(warm.every((s) => s === 403));
    const worker = async () => {
      while (performance.now() < deadline) {
        last = performance.now();
        const status = await one({ 'x-api-key': k.key });
        if (status === 200 || status === 429) counts[status]++;
        else counts.other++;
      }
    };
    deadline = performance.now() + 3000;
    const workers = Array.from({ length: 200 }, worker);
    // node writes the 200 first requests only once this synchronous loop is over: the run starts now
    first = performance.now();
    await Promise.all(workers);
    agent.destroy();
    const elapsed = (last - first) / 1000;
    const expected = 50 + 100 * elapsed;
    t.diagnostic(`admitted ${counts[200]}, allowance ${expected.toFixed(1)} over ${elapsed.toFixed(3)} s; refused ${counts[429]}`);
    assert.equal(counts.other, 0);
    assert.ok(counts[429] > 10 * counts[200], `the key was hammered: ${JSON.stringify(counts)}`);
    assert.ok(
      Math.abs(counts[200] - expected) <= Math.max(0.01 * expected, 1),
      `admitted ${counts[200]}, expected ${expected.toFixed(1)} (elapsed ${elapsed.toFixed(3)} s, ${JSON.stringify(counts)})`,
    );
    // both worker threads served it (connections land on either)
    const threads = fs.readdirSync(`/proc/${g.edge.proc.pid}/task`).map((t) => fs.readFileSync(`/proc/${g.edge.proc.pid}/task/${t}/comm`, 'utf8').trim());
    assert.ok(threads.includes('edge-worker-0') && threads.includes('edge-worker-1'));
  });
});

describe('quotas', () => {
  test('quota exhausted: 429 "Limit Exceeded" until the UTC day ends, then counting starts again', async () => {
    // the gateway's clock starts 6 s before midnight (EDGEPROXY_TEST_CLOCK, tests only)
    const g = await setup({ quota: '3/day', env: { EDGEPROXY_TEST_CLOCK: '2030-01-01T23:59:54Z' } });
    try {
      const key = { 'x-api-key': CONF_KEY };
      for (let i = 0; i < 3; i++) assert.equal((await g.get('/api/q', key)).status, 200);
      const r = await g.get('/api/q', key);
      assertJsonError(r, 429);
      assert.match(json(r).message, /^Limit Exceeded: the key's quota for today is used up/);
      const retry = Number(r.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 6, `Retry-After ${retry}`);
      assert.match(r.headers.ratelimit, /"quota";r=0;t=\d+/);
      let u = json(await g.admin('/keys/conf-key/usage'));
      assert.equal(u.quota.used, 3);
      assert.equal(u.quota.remaining, 0);
      assert.equal(u.quota.period, 'day');
      assert.equal(u.quota.period_end, '2030-01-02T00:00:00Z');
      assert.deepEqual(u.today, { date: '2030-01-01', used: 3 });
      // past midnight: admitted again
      await poll(async () => (await g.get('/api/q', key)).status === 200, 12000);
      u = json(await g.admin('/keys/conf-key/usage'));
      assert.equal(u.today.date, '2030-01-02');
      assert.equal(u.quota.used, 1);
      assert.equal(u.quota.period_start, '2030-01-02T00:00:00Z');
    } finally {
      await g.edge.stopClean();
    }
  });

  test('a restart keeps the quota used so far and the keys made through the API', async () => {
    const env = { EDGEPROXY_TEST_CLOCK: '2030-06-15T12:00:00Z' };
    const dir = tempDir('ep-gw-restart-');
    const adminPort = await closedPort();
    let g = await setup({ dir, adminPort, quota: '5/day', env });
    const made = json(await g.admin('/keys', 'POST', { plan: 'small', name: 'kept' }));
    for (let i = 0; i < 2; i++) assert.equal((await g.get('/api/r', { 'x-api-key': made.key })).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await g.get('/api/r', { 'x-api-key': CONF_KEY })).status, 200);
    await g.edge.stopClean();

    g = await setup({ dir, adminPort, origin: g.origin, quota: '5/day', env });
    try {
      const u = json(await g.admin(`/keys/${made.id}/usage`));
      assert.equal(u.quota.used, 2);
      assert.equal(json(await g.admin('/keys/conf-key/usage')).quota.used, 3);
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await g.get('/api/r', { 'x-api-key': made.key })).status);
      assert.deepEqual(statuses, [200, 200, 200]);
      assertJsonError(await g.get('/api/r', { 'x-api-key': made.key }), 429);
      assert.equal(json(await g.admin(`/keys/${made.id}`)).name, 'kept');
    } finally {
      await g.edge.stopClean();
    }
  });
});

describe('edgeproxy keys (CLI) and the logs', () => {
  test('keys create / list / usage / disable / delete through the admin API; no key ever reaches a log', async () => {
    const g = await setup();
    const secrets = [CONF_KEY];
    try {
      let r = await runCli(['keys', 'create', '-c', g.edge.conf, '--plan', 'small', '--name', 'cli']);
      assert.equal(r.code, 0, r.stderr);
      const k = JSON.parse(r.stdout);
      secrets.push(k.key);
      assert.equal(k.name, 'cli');
      assert.equal(k.plan, 'small');
      assert.equal((await g.get('/api/cli', { 'x-api-key': k.key })).status, 200);
      assert.equal((await g.get(`/api/cli?x=1&api_key=${k.key}&y=2`)).status, 200);
      r = await runCli(['keys', 'list', '-c', g.edge.conf]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).keys.some((x) => x.id === k.id));
      r = await runCli(['keys', 'usage', k.id, '-c', g.edge.conf]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).today.used, 2);
      r = await runCli(['keys', 'disable', k.id, '-c', g.edge.conf]);
      assert.equal(r.code, 0, r.stderr);
      assertJsonError(await g.get('/api/cli', { 'x-api-key': k.key }), 403);
      r = await runCli(['keys', 'delete', 'conf-key', '-c', g.edge.conf]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /409/);
      r = await runCli(['keys', 'delete', k.id, '-c', g.edge.conf]);
      assert.equal(r.code, 0, r.stderr);
      r = await runCli(['keys', 'frobnicate', '-c', g.edge.conf]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /Usage: edgeproxy keys/);
      assert.equal((await g.get('/api/log', { 'x-api-key': CONF_KEY })).status, 200);
    } finally {
      await g.edge.stopClean();
    }
    const access = fs.readFileSync(path.join(g.dir, 'access.jsonl'), 'utf8');
    const lines = access.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.key === 'conf-key' && l.path === '/api/log'), 'the access log names the key by its id');
    assert.ok(lines.some((l) => l.path === '/api/cli?x=1&api_key=REDACTED&y=2'), 'a key in the query is redacted');
    for (const s of secrets) {
      assert.ok(!access.includes(s), 'a key in the access log');
      assert.ok(!g.edge.logs().includes(s), 'a key in the error log');
    }
  });
});
