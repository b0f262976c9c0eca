// The cache (RFC 9111) against a scripted origin that counts its hits: storage and freshness, coalescing across
// threads, revalidation, conditionals, HEAD, Range, Vary, stale serving, invalidation, restart, big objects.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, cachingConf, closedPort, h1, h2, h2connect, killAll, makeCerts, runCli, sleep, startEdge, tempDir } from './lib.mjs';

after(killAll);

// The origin: behaviour from the query string.
//   cc=...            Cache-Control value          cdn=... CDN-Cache-Control value    sc=... Surrogate-Control
//   etag=v            ETag "v"; answers 304 to a matching If-None-Match
//   lm=1              Last-Modified (fixed date); 304 to If-Modified-Since at or after it
//   delay=ms          wait before answering         status=n  status code           size=n  body of n pattern bytes
//   vary=h            Vary: h, body echoes that request header                           cookie=1  Set-Cookie
//   ver=x             x-version header and body tag  tags=a b   Surrogate-Key
//   many=n            n extra headers with 50-byte names
// Every request is recorded: origin.log [{method, url, headers}], origin.count(url).
function startScriptedOrigin() {
  const log = [];
  let down = false;
  let forced = 0; // a status every answer gets, when set
  const server = http.createServer((req, res) => {
    log.push({ method: req.method, url: req.url, headers: req.headers });
    req.resume();
    const u = new URL(req.url, 'http://o');
    const q = (k) => u.searchParams.get(k);
    setTimeout(() => {
      const h = { 'content-type': 'text/plain', 'x-origin-hits': String(log.filter((e) => e.url === req.url).length) };
      if (q('cc')) h['cache-control'] = q('cc');
      if (q('cdn')) h['cdn-cache-control'] = q('cdn');
      if (q('sc')) h['surrogate-control'] = q('sc');
      if (q('etag')) h.etag = `"${q('etag')}"`;
      if (q('lm')) h['last-modified'] = 'Mon, 01 Jan 2024 00:00:00 GMT';
      if (q('vary')) h.vary = q('vary');
      if (q('cookie')) h['set-cookie'] = 'a=b';
      if (q('ver')) h['x-version'] = q('ver');
      if (q('tags')) h['surrogate-key'] = q('tags');
      if (q('loc')) h.location = q('loc');
      for (let i = 0; i < Number(q('many') || 0); i++) h[`x-many-${i}-${'n'.repeat(40)}`] = `value ${i}`;
      if (q('etag') && req.headers['if-none-match'] === h.etag) {
        res.writeHead(304, h);
        res.end();
        return;
      }
      if (q('lm') && req.headers['if-modified-since'] && !q('etag')) {
        res.writeHead(304, h);
        res.end();
        return;
      }
      let body;
      if (q('size')) {
        const n = Number(q('size'));
        body = Buffer.alloc(n);
        for (let i = 0; i < n; i++) body[i] = (i * 7 + 3) & 255;
      } else {
        body = Buffer.from(`${req.url} #${log.length} ${q('vary') ? req.headers[q('vary').toLowerCase()] : ''} ${q('ver') || ''}`);
      }
      h['content-length'] = body.length;
      res.writeHead(forced || Number(q('status') || 200), h);
      if (req.method === 'HEAD') res.end();
      else res.end(body);
    }, Number(q('delay') || 0));
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    if (down) return s.destroy();
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        port: server.address().port,
        log,
        count: (url) => log.filter((e) => e.url === url).length,
        forceStatus: (code) => (forced = code),
        setDown: (d) => {
          down = d;
          if (d) for (const s of sockets) s.destroy(); // pooled connections too
        },
        close: () =>
          new Promise((r) => {
            server.close(r);
            server.closeAllConnections(); // keep-alive ones too: close() alone waits for them
          }),
        server,
      }),
    ),
  );
}

// The key has the scheme and the authority: the h2 requests name the same authority as the h1 ones (127.0.0.1:port).
// The fill that answered a miss stays joinable for a moment (its object is on its way into the store): a request that
// follows a miss at once may be served from it, which Cache-Status reports as collapsed. Tests that want a plain hit
// let the store commit first.
const settle = () => sleep(150);

function cacheStatus(r) {
  return String(r.headers['cache-status'] || '');
}

describe('cache', () => {
  let origin;
  let edge;
  let port;
  let tport;
  let dataDir;
  let plainPort; // fixed across the restart: the port is part of the cache key
  let tlsPort;
  let adminPort;
  const TOKEN = 'test-admin-token-0123456789';
  const admin = (path, method = 'POST', token = TOKEN) =>
    h1({ port: adminPort, path, method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const conf = () => {
    const c = makeCerts().certs.localhost;
    return `threads: 2
data_dir: ${dataDir}
cache: { max_size: 128MiB, max_object_size: 24MiB }
admin: { port: ${adminPort}, token: ${TOKEN} }
listen:
  - { address: 127.0.0.1, port: ${plainPort} }
  - { address: 127.0.0.1, port: ${tlsPort}, tls: { cert: ${c.cert}, key: ${c.key} } }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        timeout: 5s
        cache:
          key: { headers: [x-key-part] }
      - path: /dflt/
        origin: { url: "${origin.url}" }
        cache: { default_ttl: 60s, stale_if_error: 1h }
      - path: /nocache/
        origin: { url: "${origin.url}" }
`;
  };

  before(async () => {
    origin = await startScriptedOrigin();
    dataDir = tempDir('ep-cache-');
    plainPort = await closedPort();
    tlsPort = await closedPort();
    adminPort = await closedPort();
    edge = await startEdge(conf());
    [port, tport] = edge.ports;
  });

  after(async () => {
    await edge?.stopClean();
    await origin?.close();
  });

  test('a miss is stored, the next request is a hit with Age and Cache-Status', async () => {
    const url = '/basic?cc=max-age=60';
    const a = await h1({ port: tport, tls: true, path: url });
    assert.equal(a.status, 200);
    assert.match(cacheStatus(a), /^edgeproxy; fwd=uri-miss; fwd-status=200; stored/);
    assert.equal(a.headers.age, undefined);
    await settle();
    const b = await h1({ port: tport, tls: true, path: url });
    assert.equal(b.status, 200);
    assert.equal(b.body.toString(), a.body.toString());
    assert.match(cacheStatus(b), /^edgeproxy; hit; ttl=(60|59)$/);
    assert.match(String(b.headers.age), /^[01]$/);
    const c = await h2({ port: tport, path: url, authority: `127.0.0.1:${tport}` });
    assert.equal(c.status, 200);
    assert.equal(c.body.toString(), a.body.toString());
    assert.match(cacheStatus(c), /hit/);
    assert.equal(origin.count(url), 1);
    // the scheme and the authority (with its port) are part of the key: the plain listener has its own object
    const d = await h1({ port, path: url });
    assert.match(cacheStatus(d), /fwd=uri-miss/);
    assert.equal(origin.count(url), 2);
  });

  test('an answer with many long header fields is stored and served with all of them', async () => {
    const url = '/many?cc=max-age=60&many=40'; // 40 fields, 2 KB of names: more than the fill keeps on its stack
    const a = await h1({ port: tport, tls: true, path: url });
    assert.equal(a.status, 200);
    assert.match(cacheStatus(a), /stored/);
    await settle();
    const b = await h1({ port: tport, tls: true, path: url });
    assert.match(cacheStatus(b), /^edgeproxy; hit/);
    for (let i = 0; i < 40; i++) assert.equal(b.headers[`x-many-${i}-${'n'.repeat(40)}`], `value ${i}`);
    assert.equal(b.body.toString(), a.body.toString());
    assert.equal(origin.count(url), 1);
  });

  test('routes without cache have no Cache-Status; POST on a caching route says bypass', async () => {
    const r = await h1({ port, path: '/nocache/x?cc=max-age=60' });
    assert.equal(r.headers['cache-status'], undefined);
    const p = await h1({ port, path: '/post?cc=max-age=60', method: 'POST', body: 'x' });
    assert.match(cacheStatus(p), /fwd=bypass/);
  });

  test('100 concurrent misses over h1 and h2 on both threads make one origin request, 100 identical bodies', async () => {
    const url = '/coalesce?cc=max-age=60&delay=400&size=300000';
    const sessions = await Promise.all([0, 1, 2, 3].map(() => h2connect(tport)));
    try {
      const reqs = Array.from({ length: 100 }, (_, i) =>
        i % 2 ? h1({ port: tport, tls: true, path: url }) : h2({ session: sessions[i % 4], path: url, authority: `127.0.0.1:${tport}` }),
      );
      const rs = await Promise.all(reqs);
      const digests = new Set(rs.map((r) => crypto.createHash('sha256').update(r.body).digest('hex')));
      rs.forEach((r) => assert.equal(r.status, 200));
      assert.equal(digests.size, 1);
      assert.equal(rs[0].body.length, 300000);
      assert.equal(origin.count(url), 1);
      // one request made the fill; the others waited for it (collapsed) or came once it was complete (hit)
      const makers = rs.filter((r) => /fwd=uri-miss/.test(cacheStatus(r)) && !/collapsed/.test(cacheStatus(r)));
      assert.equal(makers.length, 1, rs.map(cacheStatus).join('\n'));
    } finally {
      for (const s of sessions) s.close();
    }
  });

  test('uncacheable answers release the waiters: concurrent requests are not serialised', async () => {
    for (const [what, q] of [
      ['no-store', 'cc=no-store'],
      ['private', 'cc=private,max-age=60'],
      ['set-cookie', 'cc=max-age=60&cookie=1'],
    ]) {
      const url = `/uncacheable-${what}?${q}&delay=300`;
      const start = Date.now();
      const rs = await Promise.all(Array.from({ length: 6 }, () => h1({ port, path: url })));
      const ms = Date.now() - start;
      rs.forEach((r) => assert.equal(r.status, 200));
      assert.equal(origin.count(url), 6, what);
      assert.ok(ms < 1500, `${what}: ${ms} ms for 6 concurrent requests of 300 ms`);
      assert.match(cacheStatus(rs[0]), new RegExp(`detail=${what}`));
      assert.equal((await h1({ port, path: url })).status, 200);
      assert.equal(origin.count(url), 7, `${what} was stored`);
    }
  });

  test('revalidation: a stale object goes to the origin with If-None-Match; a 304 refreshes its headers', async () => {
    const url = '/reval?cc=max-age=2&etag=v1&ver=one'; // HTTP ages have 1 s steps: 2 s stays fresh after a 304
    const a = await h1({ port, path: url });
    assert.equal(a.status, 200);
    await sleep(3100);
    const b = await h1({ port, path: url });
    assert.equal(b.status, 200);
    assert.equal(b.body.toString(), a.body.toString(), 'body not the stored one');
    await settle();
    assert.match(cacheStatus(b), /fwd=stale; fwd-status=304/);
    const last = origin.log.filter((e) => e.url === url).at(-1);
    assert.equal(last.headers['if-none-match'], '"v1"');
    assert.equal(Number(b.headers['x-origin-hits']), 2, 'the 304 headers did not update the stored ones');
    const c = await h1({ port, path: url });
    assert.match(cacheStatus(c), /hit/);
    assert.equal(Number(c.headers['x-origin-hits']), 2);
    assert.equal(origin.count(url), 2);
  });

  test("client conditionals are answered 304 from the cache; the origin never sees the client's", async () => {
    const url = '/cond?cc=max-age=60&etag=abc&lm=1';
    await h1({ port, path: url });
    const a = await h1({ port, path: url, headers: { 'if-none-match': 'W/"abc", "zzz"' } });
    assert.equal(a.status, 304);
    assert.equal(a.body.length, 0);
    assert.equal(a.headers.etag, '"abc"');
    const b = await h1({ port, path: url, headers: { 'if-none-match': '"other"' } });
    assert.equal(b.status, 200);
    // without If-None-Match, If-Modified-Since decides against the stored Last-Modified (Mon, 01 Jan 2024)
    const c = await h1({ port, path: url, headers: { 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' } });
    assert.equal(c.status, 304);
    const d = await h1({ port, path: url, headers: { 'if-modified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' } });
    assert.equal(d.status, 200);
    assert.equal(origin.count(url), 1);
  });

  test('HEAD is answered from the stored GET; the origin only sees GETs', async () => {
    const url = '/head?cc=max-age=60';
    const h = await h1({ port, path: url, method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    await settle();
    const g = await h1({ port, path: url });
    assert.equal(g.status, 200);
    assert.ok(g.body.length > 0);
    assert.match(cacheStatus(g), /hit/);
    assert.equal(Number(h.headers['content-length']), g.body.length);
    assert.deepEqual(
      origin.log.filter((e) => e.url === url).map((e) => e.method),
      ['GET'],
    );
  });

  test('Range on a stored object: 206 with the bytes, 416 when unsatisfiable', async () => {
    const url = '/range?cc=max-age=60&size=1000';
    const first = await h1({ port, path: `${url}&delay=200`, headers: { range: 'bytes=0-1' } }); // a miss: 206 as well
    assert.equal(first.status, 206);
    assert.equal(first.body.length, 2);
    const full = await h1({ port, path: url });
    await settle();
    const r = await h1({ port, path: url, headers: { range: 'bytes=10-19' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], 'bytes 10-19/1000');
    assert.deepEqual(r.body, full.body.subarray(10, 20));
    const s = await h1({ port, path: url, headers: { range: 'bytes=-5' } });
    assert.equal(s.status, 206);
    assert.deepEqual(s.body, full.body.subarray(995));
    const u = await h1({ port, path: url, headers: { range: 'bytes=5000-' } });
    assert.equal(u.status, 416);
    assert.equal(u.headers['content-range'], 'bytes */1000');
    assert.equal(origin.count(url), 1);
  });

  test('Vary: one stored variant per value of the varied header', async () => {
    const url = '/vary?cc=max-age=60&vary=Accept-Language';
    const en = await h1({ port, path: url, headers: { 'accept-language': 'en' } });
    const fr = await h1({ port, path: url, headers: { 'accept-language': 'fr' } });
    await settle();
    assert.match(en.body.toString(), / en /);
    assert.match(fr.body.toString(), / fr /);
    const en2 = await h1({ port, path: url, headers: { 'accept-language': 'en' } });
    const fr2 = await h1({ port, path: url, headers: { 'accept-language': 'fr' } });
    assert.equal(en2.body.toString(), en.body.toString());
    assert.equal(fr2.body.toString(), fr.body.toString());
    assert.match(cacheStatus(en2), /hit/);
    assert.match(cacheStatus(fr2), /hit/);
    assert.equal(origin.count(url), 2);
    const de = await h1({ port, path: url, headers: { 'accept-language': 'de' } });
    assert.match(cacheStatus(de), /fwd=vary-miss/);
  });

  test('key headers from the route (x-key-part) make distinct objects', async () => {
    const url = '/keyhdr?cc=max-age=60';
    await h1({ port, path: url, headers: { 'x-key-part': 'a' } });
    await h1({ port, path: url, headers: { 'x-key-part': 'b' } });
    await h1({ port, path: url, headers: { 'x-key-part': 'a' } });
    assert.equal(origin.count(url), 2);
  });

  test('stale-if-error: a 5xx or an unreachable origin gets the stale object', async () => {
    const url = '/sie?cc=max-age=1,stale-if-error=60';
    const a = await h1({ port, path: url });
    await sleep(2100);
    origin.setDown(true);
    try {
      const b = await h1({ port, path: url });
      assert.equal(b.status, 200);
      assert.equal(b.body.toString(), a.body.toString());
      assert.match(cacheStatus(b), /fwd=stale/);
      assert.match(cacheStatus(b), /stale-if-error/);
      // no stored object: the error is ours
      assertJsonError(await h1({ port, path: '/sie-none?cc=max-age=60' }), 502);
    } finally {
      origin.setDown(false);
    }
    // a route default (stale_if_error: 1h) and a 503 from the origin, whose body is not mixed in
    const d = '/dflt/sie?cc=max-age=1';
    const f = await h1({ port, path: d });
    await sleep(2100);
    origin.forceStatus(503);
    try {
      const e = await h1({ port, path: d });
      assert.equal(e.status, 200);
      assert.equal(e.body.toString(), f.body.toString());
      assert.match(cacheStatus(e), /fwd=stale; fwd-status=503/);
      const g = await h1({ port, path: '/dflt/sie-miss?cc=max-age=1' }); // nothing stored: the 503 passes through
      assert.equal(g.status, 503);
    } finally {
      origin.forceStatus(0);
    }
  });

  test('stale-while-revalidate: the stale object at once, one background refresh', async () => {
    const url = '/swr?cc=max-age=2,stale-while-revalidate=60';
    await h1({ port, path: url });
    await sleep(3100);
    const b = await h1({ port, path: url });
    assert.match(cacheStatus(b), /hit; ttl=-\d+; detail=stale-while-revalidate/);
    await sleep(300);
    assert.equal(origin.count(url), 2, 'no background refresh');
    const c = await h1({ port, path: url });
    assert.match(cacheStatus(c), /hit; ttl=\d/);
    assert.equal(origin.count(url), 2);
  });

  test('a successful POST, PUT or DELETE invalidates the URL', async () => {
    const url = '/inval?cc=max-age=60';
    await h1({ port, path: url });
    await settle();
    assert.match(cacheStatus(await h1({ port, path: url })), /hit/);
    const p = await h1({ port, path: url, method: 'POST', body: 'x' });
    assert.equal(p.status, 200);
    await sleep(100);
    const after = await h1({ port, path: url });
    assert.match(cacheStatus(after), /fwd=uri-miss/);
    assert.equal(origin.count(url), 3); // GET, POST, GET
    // and the Location of the answer, on the same host
    const other = '/inval-loc?cc=max-age=60';
    await h1({ port, path: other });
    await settle();
    assert.match(cacheStatus(await h1({ port, path: other })), /hit/);
    await h1({ port, path: `/inval-post?loc=${encodeURIComponent(other)}`, method: 'PUT', body: 'y' });
    await sleep(100);
    assert.match(cacheStatus(await h1({ port, path: other })), /fwd=uri-miss/);
  });

  test('a client that leaves does not stop the fill: the next request is a hit', async () => {
    const url = '/leave?cc=max-age=60&delay=300&size=2000000';
    await assert.rejects(h1({ port, path: url, timeout: 100 }));
    await sleep(800);
    const r = await h1({ port, path: url });
    assert.equal(r.body.length, 2000000);
    assert.match(cacheStatus(r), /hit/);
    assert.equal(origin.count(url), 1);
  });

  test('request directives: no-cache revalidates, only-if-cached on a miss is a 504', async () => {
    const url = '/reqcc?cc=max-age=60';
    await h1({ port, path: url });
    const r = await h1({ port, path: url, headers: { 'cache-control': 'no-cache' } });
    assert.match(cacheStatus(r), /fwd=request/);
    assert.equal(origin.count(url), 2);
    const o = await h1({ port, path: '/never-seen?cc=max-age=60', headers: { 'cache-control': 'only-if-cached' } });
    assertJsonError(o, 504);
    assert.equal(origin.count('/never-seen?cc=max-age=60'), 0);
  });

  test('CDN-Cache-Control and Surrogate-Control take precedence and never reach the client', async () => {
    const url = '/cdn?cc=no-store&cdn=max-age=60';
    const a = await h1({ port, path: url });
    assert.equal(a.headers['cdn-cache-control'], undefined);
    assert.equal(a.headers['cache-control'], 'no-store');
    await settle();
    const b = await h1({ port, path: url });
    assert.match(cacheStatus(b), /hit/);
    const s = '/surrogate?cc=max-age=60&sc=no-store;edgeproxy&tags=t1%20t2';
    const c = await h1({ port, path: s });
    assert.equal(c.headers['surrogate-control'], undefined);
    assert.equal(c.headers['surrogate-key'], undefined);
    await h1({ port, path: s });
    assert.equal(origin.count(s), 2);
  });

  test('a 20 MiB object streams on the miss and is served whole on the hit', { timeout: 60000 }, async () => {
    const url = `/big?cc=max-age=60&size=${20 * 1024 * 1024}`;
    const a = await h1({ port: tport, tls: true, path: url });
    await settle();
    const b = await h2({ port: tport, path: url, authority: `127.0.0.1:${tport}` });
    assert.equal(a.body.length, 20 * 1024 * 1024);
    assert.equal(crypto.createHash('sha256').update(a.body).digest('hex'), crypto.createHash('sha256').update(b.body).digest('hex'));
    assert.match(cacheStatus(a), /fwd=uri-miss/);
    assert.match(cacheStatus(b), /hit/);
    assert.equal(origin.count(url), 1);
  });

  test('an object over max_object_size passes through uncached', { timeout: 60000 }, async () => {
    const url = `/huge?cc=max-age=60&size=${25 * 1024 * 1024}`;
    const a = await h1({ port, path: url });
    assert.equal(a.body.length, 25 * 1024 * 1024);
    assert.match(cacheStatus(a), /detail=too-big/);
    await h1({ port, path: url });
    assert.equal(origin.count(url), 2);
  });

  describe('purge through the admin API and edgeproxy purge', () => {
    const stored = async (url) => {
      await h1({ port, path: url });
      await settle();
      assert.match(cacheStatus(await h1({ port, path: url })), /hit/, `${url} not stored`);
    };
    const isMiss = async (url) => /fwd=/.test(cacheStatus(await h1({ port, path: url })));
    const host = () => `127.0.0.1:${plainPort}`;

    test('the token is required; stats answer', async () => {
      assertJsonError(await admin('/cache/purge?all=1', 'POST', null), 401);
      assertJsonError(await admin('/cache/purge?all=1', 'POST', 'wrong-token-0123456789xx'), 401);
      assertJsonError(await admin('/cache/purge?url=a&tag=b'), 400);
      assertJsonError(await admin('/cache/purge?all=1', 'GET'), 405);
      assertJsonError(await admin('/nothing', 'GET'), 404);
      const st = await admin('/cache/stats', 'GET');
      assert.equal(st.status, 200);
      assert.ok(JSON.parse(st.body.toString()).objects > 0);
    });

    test('by URL (every variant), by prefix, by tag, by host', async () => {
      await stored('/pu/a?cc=max-age=60');
      await stored('/pu/b?cc=max-age=60');
      await stored('/px/c?cc=max-age=60&tags=red%20blue');
      await stored('/px/d?cc=max-age=60&tags=blue');
      let r = await admin(`/cache/purge?url=${encodeURIComponent(`http://${host()}/pu/a?cc=max-age=60`)}`);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(JSON.parse(r.body.toString()).purged, 1);
      assert.equal(await isMiss('/pu/a?cc=max-age=60'), true);
      assert.equal(await isMiss('/pu/b?cc=max-age=60'), false);
      r = await admin(`/cache/purge?prefix=${encodeURIComponent(`${host()}/pu/`)}`);
      assert.ok(JSON.parse(r.body.toString()).purged >= 1);
      assert.equal(await isMiss('/pu/b?cc=max-age=60'), true);
      r = await admin('/cache/purge?tag=red');
      assert.equal(JSON.parse(r.body.toString()).purged, 1);
      assert.equal(await isMiss('/px/c?cc=max-age=60&tags=red%20blue'), true);
      assert.equal(await isMiss('/px/d?cc=max-age=60&tags=blue'), false);
      await stored('/px/e?cc=max-age=60');
      r = await admin(`/cache/purge?host=${host()}`);
      assert.ok(JSON.parse(r.body.toString()).purged >= 2);
      assert.equal(await isMiss('/px/e?cc=max-age=60'), true);
    });

    test('soft purge marks stale: revalidated on use, still good for stale-if-error', async () => {
      const url = '/soft?cc=max-age=600,stale-if-error=600&etag=s1';
      await stored(url);
      const r = await admin(`/cache/purge?url=${encodeURIComponent(`${host()}${url}`)}&soft=1`);
      assert.deepEqual(JSON.parse(r.body.toString()), { purged: 1, soft: true });
      origin.setDown(true);
      try {
        const b = await h1({ port, path: url });
        assert.equal(b.status, 200);
        assert.match(cacheStatus(b), /fwd=stale.*stale-if-error/);
      } finally {
        origin.setDown(false);
      }
      const c = await h1({ port, path: url });
      assert.match(cacheStatus(c), /fwd=stale; fwd-status=304/);
    });

    test('edgeproxy purge -c FILE --all / --url through the admin API', async () => {
      await stored('/cli?cc=max-age=60');
      const u = await runCli(['purge', '-c', edge.conf, '--url', `http://${host()}/cli?cc=max-age=60`]);
      assert.equal(u.code, 0, u.stderr);
      assert.equal(JSON.parse(u.stdout).purged, 1);
      assert.equal(await isMiss('/cli?cc=max-age=60'), true);
      await stored('/cli2?cc=max-age=60');
      const a = await runCli(['purge', '-c', edge.conf, '--all']);
      assert.equal(a.code, 0, a.stderr);
      assert.ok(JSON.parse(a.stdout).purged >= 1);
      assert.equal(await isMiss('/cli2?cc=max-age=60'), true);
      const bad = await runCli(['purge', '-c', edge.conf]);
      assert.equal(bad.code, 2);
    });
  });

  // one edgeproxy caching everything, with its own data_dir
  const ownDirConf = (dir) => cachingConf(origin.url, { top: `data_dir: ${dir}\n`, cache: '{}' });

  test('a second edgeproxy on the same cache directory is refused while the first runs', async () => {
    const yaml = ownDirConf(tempDir('ep-twice-'));
    const first = await startEdge(yaml);
    try {
      await assert.rejects(startEdge(yaml), /cache store .*cache: in use by another process \(one edgeproxy per cache directory\)/);
    } finally {
      await first.stopClean();
    }
    const again = await startEdge(yaml); // the lock went with the first
    await again.stopClean();
  });

  test('a corrupt store is set aside: edgeproxy starts with an empty cache and says so', async () => {
    const dir = tempDir('ep-corrupt-');
    fs.mkdirSync(path.join(dir, 'cache'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'cache', 'data.mdb'), Buffer.alloc(65536, 0x5a));
    const e = await startEdge(ownDirConf(dir));
    try {
      assert.match(e.logs(), /cache store .*: cannot open \(.*\): moved data\.mdb to data\.mdb\.corrupt, starting empty/);
      assert.ok(fs.existsSync(path.join(dir, 'cache', 'data.mdb.corrupt')));
      const url = '/after-corrupt?cc=max-age=60';
      assert.match(cacheStatus(await h1({ port: e.ports[0], path: url })), /fwd=uri-miss; fwd-status=200; stored/);
      await settle();
      assert.match(cacheStatus(await h1({ port: e.ports[0], path: url })), /hit/);
    } finally {
      await e.stopClean();
    }
  });

  test('a restart keeps serving hits', async () => {
    const url = '/persist?cc=max-age=300';
    await h1({ port, path: url });
    await edge.stopClean();
    edge = await startEdge(conf());
    [port, tport] = edge.ports;
    const r = await h1({ port, path: url });
    assert.match(cacheStatus(r), /hit/);
    assert.equal(origin.count(url), 1);
  });
});
