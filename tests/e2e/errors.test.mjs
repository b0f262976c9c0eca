// Errors and request ids: JSON error bodies, x-request-id, 400/404/405/413/502/504.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  REQUEST_ID_RE,
  assertJsonError,
  closedPort,
  h1,
  h2,
  json,
  killAll,
  makeCerts,
  parseRaw,
  pattern,
  patternSha256,
  raw,
  request,
  startEdge,
  startOrigin,
  tempDir,
} from './lib.mjs';

after(killAll);

// curl -i; resolves { status, headers, body } of the last response.
function curl(args) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl: ${stderr}`));
      resolve(parseRaw(stdout));
    });
  });
}

describe('errors', () => {
  let origin;
  let goodTls; // HTTPS origin, certificate for 127.0.0.1 (TLS 1.3, node's default)
  let wrongTls; // HTTPS origin, certificate for wrong.test (TLS 1.3)
  let wrongTls12; // same, TLS 1.2 only
  let edge;
  let port;
  let tport;

  before(async () => {
    const certs = makeCerts();
    origin = await startOrigin();
    goodTls = await startOrigin({ tls: 'localhost' });
    wrongTls = await startOrigin({ tls: 'wrong.test' });
    wrongTls12 = await startOrigin({ tls: 'wrong.test', tlsOptions: { maxVersion: 'TLSv1.2' } });
    const dead = await closedPort();
    const c = certs.certs.localhost;
    const o = origin.url;
    edge = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }
hosts:
  "*":
    routes:
      - path: /echo/
        origin: { url: "${o}" }
        timeout: 10s
      - path: /methods/
        methods: [GET, POST]
        origin: { url: "${o}" }
      - path: /delete-only/
        methods: [DELETE]
        origin: { url: "${o}" }
      - path: /small/
        origin: { url: "${o}" }
        max_body_size: 1000
      - path: /default/
        origin: { url: "${o}" }
        timeout: 20s
      - path: /refused/
        origin: { url: "http://127.0.0.1:${dead}" }
      - path: /goodtls/
        origin: { url: "${goodTls.url}", ca: ${certs.ca} }
        timeout: 10s
      - path: /tlshost/
        origin: { url: "${goodTls.url}", ca: ${certs.ca}, preserve_host: true }
        timeout: 10s
      - path: /tlst500/
        origin: { url: "${goodTls.url}", ca: ${certs.ca} }
        timeout: 500ms
      - path: /noca/
        origin: { url: "${goodTls.url}" }
        timeout: 10s
      - path: /wrongname/
        origin: { url: "${wrongTls.url}", ca: ${certs.ca} }
        timeout: 10s
      - path: /wrongname12/
        origin: { url: "${wrongTls12.url}", ca: ${certs.ca} }
        timeout: 10s
      - path: /t500/
        origin: { url: "${o}" }
        timeout: 500ms
`);
    [port, tport] = edge.ports;
  });

  after(async () => {
    if (edge) await edge.stopClean();
    for (const o of [origin, goodTls, wrongTls, wrongTls12]) if (o) await o.close();
  });

  describe('request ids', () => {
    test('every response carries a generated 32-hex x-request-id that the origin also receives', async () => {
      for (const proto of ['h1', 'h2']) {
        const p = proto === 'h2' ? tport : port;
        const a = await request(proto, { port: p, path: '/echo/id' });
        const b = await request(proto, { port: p, path: '/echo/id' });
        assert.equal(a.status, 200);
        assert.match(a.headers['x-request-id'] || '', REQUEST_ID_RE);
        assert.match(b.headers['x-request-id'] || '', REQUEST_ID_RE);
        assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
        assert.equal(json(a).headers['x-request-id'], a.headers['x-request-id']);
        assert.equal(json(b).headers['x-request-id'], b.headers['x-request-id']);
      }
    });

    test('a well-formed client x-request-id is kept, end to end', async () => {
      for (const id of ['abc-123_X.y', 'a', 'x'.repeat(128), 'ABCDEF0123456789']) {
        const r = await h1({ port, path: '/echo/keep', headers: { 'x-request-id': id } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-request-id'], id);
        assert.equal(json(r).headers['x-request-id'], id);
        const e = await h1({ port, path: '/nowhere', headers: { 'x-request-id': id } });
        assert.equal(assertJsonError(e, 404).request_id, id);
      }
      const r2 = await h2({ port: tport, path: '/echo/keep', headers: { 'x-request-id': 'h2-id.1' } });
      assert.equal(r2.headers['x-request-id'], 'h2-id.1');
      assert.equal(json(r2).headers['x-request-id'], 'h2-id.1');
    });

    test('a malformed client x-request-id is replaced by a generated one', async () => {
      for (const id of ['', 'has space', 'a/b', 'x'.repeat(129), 'semi;colon', 'quote"d', 'a+b']) {
        const r = await raw(
          port,
          `GET /echo/bad HTTP/1.1\r\nHost: t\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`,
        );
        assert.equal(r.status, 200, `id ${id}`);
        assert.match(r.headers['x-request-id'] || '', REQUEST_ID_RE, `id ${id}`);
        assert.equal(JSON.parse(r.body.toString()).headers['x-request-id'], r.headers['x-request-id']);
      }
      const e = await h1({ port, path: '/nowhere', headers: { 'x-request-id': 'bad id' } });
      const j = assertJsonError(e, 404);
      assert.match(j.request_id, REQUEST_ID_RE);
    });
  });

  describe('400 bad request', () => {
    test('HTTP/1.1 request without Host', async () => {
      const r = await raw(port, 'GET /echo/x HTTP/1.1\r\nConnection: close\r\n\r\n');
      assertJsonError(r, 400, 'no Host');
      assert.equal(origin.requests.filter((q) => q.url === '/echo/x').length, 0, 'reached the origin');
    });

    test('invalid percent-escape in the path, h1 and h2', async () => {
      for (const p of ['/echo/a%zz', '/echo/a%2', '/echo/%g0']) {
        assertJsonError(await h1({ port, path: p }), 400, `h1 ${p}`);
        assertJsonError(await h2({ port: tport, path: p }), 400, `h2 ${p}`);
      }
      assert.equal(origin.requests.filter((q) => q.url.includes('%z')).length, 0, 'reached the origin');
    });

    test('a valid percent-escape is fine', async () => {
      const r = await h1({ port, path: '/echo/a%20b' });
      assert.equal(r.status, 200);
    });
  });

  test('404 when no route matches, h1 and h2', async () => {
    assertJsonError(await h1({ port, path: '/nothing' }), 404);
    assertJsonError(await h1({ port, path: '/echo' }), 404); // "/echo/" does not match /echo
    assertJsonError(await h2({ port: tport, path: '/nothing' }), 404);
    assertJsonError(await h1({ port, path: '/nothing', method: 'POST', body: 'x' }), 404);
  });

  describe('405 method not allowed', () => {
    const allowSet = (r) =>
      new Set(
        String(r.headers.allow || '')
          .split(',')
          .map((s) => s.trim().toUpperCase())
          .filter(Boolean),
      );

    test('a method outside the route methods gets 405 with Allow', async () => {
      for (const method of ['DELETE', 'PUT', 'PATCH', 'OPTIONS']) {
        const r = await h1({ port, path: '/methods/x', method });
        assertJsonError(r, 405, method);
        assert.deepEqual(allowSet(r), new Set(['GET', 'HEAD', 'POST']), `Allow: ${r.headers.allow}`);
      }
      const r2 = await h2({ port: tport, path: '/methods/x', method: 'PUT' });
      assertJsonError(r2, 405, 'h2 PUT');
      assert.deepEqual(allowSet(r2), new Set(['GET', 'HEAD', 'POST']));
      const r3 = await h1({ port, path: '/delete-only/x', method: 'GET' });
      assertJsonError(r3, 405, 'GET on DELETE-only');
      assert.deepEqual(allowSet(r3), new Set(['DELETE']));
    });

    test('listed methods pass; GET implies HEAD', async () => {
      const g = await h1({ port, path: '/methods/x' });
      assert.equal(g.status, 200);
      assert.equal(json(g).method, 'GET');
      const p = await h1({ port, path: '/methods/x', method: 'POST', body: 'abc' });
      assert.equal(p.status, 200);
      assert.equal(json(p).method, 'POST');
      assert.equal(json(p).bodyLength, 3);
      const h = await h1({ port, path: '/methods/x', method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.body.length, 0);
      const d = await h1({ port, path: '/delete-only/x', method: 'DELETE' });
      assert.equal(d.status, 200);
      assert.equal(json(d).method, 'DELETE');
    });
  });

  describe('413 request body too large', () => {
    test('route max_body_size is the exact limit (content-length)', async () => {
      const ok = await h1({ port, path: '/small/x', method: 'POST', body: pattern(1000) });
      assert.equal(ok.status, 200);
      assert.equal(json(ok).bodyLength, 1000);
      const big = await h1({ port, path: '/small/x', method: 'POST', body: pattern(1001) });
      assertJsonError(big, 413, '1001 bytes');
    });

    test('route max_body_size with a chunked h1 body and an h2 body', async () => {
      const chunked = await h1({
        port,
        path: '/small/x',
        method: 'POST',
        headers: { 'transfer-encoding': 'chunked' },
        body: { pattern: 5000 },
      });
      assertJsonError(chunked, 413, 'chunked 5000');
      const r2 = await h2({ port: tport, path: '/small/x', method: 'POST', body: pattern(5000) });
      assertJsonError(r2, 413, 'h2 5000');
      const ok2 = await h2({ port: tport, path: '/small/x', method: 'POST', body: pattern(1000) });
      assert.equal(ok2.status, 200);
    });

    test('default limit is 10 MiB: exactly 10 MiB passes, 11 MiB gets 413', async () => {
      const n = 10 * 1024 * 1024;
      const ok = await h1({ port, path: '/default/x', method: 'POST', body: { pattern: n }, headers: { 'content-length': n } });
      assert.equal(ok.status, 200);
      assert.equal(json(ok).bodySha256, patternSha256(n));
      const m = 11 * 1024 * 1024;
      const seen = origin.requests.filter((q) => q.url === '/default/x').length;
      const file = path.join(tempDir(), '11m.bin');
      fs.writeFileSync(file, pattern(m));
      const c = await curl(['-H', 'Expect:', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/default/x`]);
      assertJsonError(c, 413, 'curl 11 MiB');
      const chunked = await curl(['-H', 'Expect:', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/default/x`]);
      assertJsonError(chunked, 413, 'curl 11 MiB chunked');
      assert.equal(origin.requests.filter((q) => q.url === '/default/x').length, seen, 'reached the origin');
    });

    test('over the hard cap (twice the largest route limit) h1 gets 413 at once, with a lingering close', async () => {
      const m = 21 * 1024 * 1024; // the largest route limit in this conf is the 10 MiB default: the cap is 20 MiB
      // the head alone announces it: the answer comes before any body byte
      const big = await raw(port, `POST /default/x HTTP/1.1\r\nHost: t\r\nContent-Length: ${m}\r\n\r\n`);
      assertJsonError(big, 413, '21 MiB announced');
      // a client that keeps sending still reads the 413 (no RST), plainly and over TLS, with and without content-length
      const file = path.join(tempDir(), '25m.bin');
      fs.writeFileSync(file, pattern(25 * 1024 * 1024));
      for (const [what, extra] of [
        ['content-length', []],
        ['chunked', ['-H', 'Transfer-Encoding: chunked']],
      ]) {
        const c = await curl(['-H', 'Expect:', ...extra, '--data-binary', `@${file}`, `http://127.0.0.1:${port}/default/x`]);
        assertJsonError(c, 413, `curl 25 MiB ${what}`);
        const t = await curl(['--http1.1', '-k', '-H', 'Expect:', ...extra, '--data-binary', `@${file}`, `https://127.0.0.1:${tport}/default/x`]);
        assertJsonError(t, 413, `curl 25 MiB ${what} over TLS`);
      }
      // the server still serves afterwards
      assert.equal((await h1({ port, path: '/echo/after' })).status, 200);
    });

    test('default limit over HTTP/2: 10 MiB passes, 11 MiB gets 413 (with and without content-length)', async () => {
      const n = 10 * 1024 * 1024;
      const ok = await h2({ port: tport, path: '/default/x', method: 'POST', body: { pattern: n } });
      assert.equal(ok.status, 200);
      assert.equal(json(ok).bodySha256, patternSha256(n));
      const m = 11 * 1024 * 1024;
      for (const headers of [{}, { 'content-length': String(m) }]) {
        const what = `h2 11 MiB ${headers['content-length'] ? 'with' : 'without'} content-length`;
        let r;
        try {
          r = await h2({ port: tport, path: '/default/x', method: 'POST', headers, body: { pattern: m } });
        } catch (e) {
          assert.fail(`${what}: no response (${e.message})`);
        }
        assertJsonError(r, 413, what);
      }
    });

    test('over the hard cap HTTP/2 gets RST_STREAM(REFUSED_STREAM) (libh2o 2.2.5 buffers h2 bodies first), connection lives', async () => {
      const m = 21 * 1024 * 1024;
      await assert.rejects(
        h2({ port: tport, path: '/default/x', method: 'POST', body: { pattern: m } }),
        /REFUSED_STREAM/,
      );
      assert.equal((await h2({ port: tport, path: '/echo/after-h2' })).status, 200);
    });
  });

  describe('502 bad gateway', () => {
    test('origin refuses the connection', async () => {
      assertJsonError(await h1({ port, path: '/refused/x' }), 502, 'h1');
      assertJsonError(await h2({ port: tport, path: '/refused/x' }), 502, 'h2');
    });

    test('HTTPS origin with a valid certificate works (control)', async () => {
      const r = await h1({ port, path: '/goodtls/x' });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(json(r).url, '/goodtls/x');
    });

    test('HTTPS origin with preserve_host: TLS is still used and the client Host is sent', async () => {
      const r = await h1({ port, path: '/tlshost/x', headers: { host: 'client.test' } });
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(json(r).headers.host, 'client.test');
      assert.equal(json(r).url, '/tlshost/x');
    });

    test('HTTPS origin whose certificate names another host (TLS 1.3)', async () => {
      const before = wrongTls.requests.length;
      assertJsonError(await h1({ port, path: '/wrongname/x' }), 502, 'TLS 1.3 wrong name');
      assertJsonError(await h2({ port: tport, path: '/wrongname/x' }), 502, 'TLS 1.3 wrong name, h2');
      assert.equal(wrongTls.requests.length, before, 'the request was sent to an origin with the wrong name');
    });

    test('HTTPS origin whose certificate names another host (TLS 1.2)', async () => {
      assertJsonError(await h1({ port, path: '/wrongname12/x' }), 502, 'TLS 1.2 wrong name');
      assert.equal(wrongTls12.requests.length, 0);
    });

    test('HTTPS origin signed by an unknown CA (no ca configured)', async () => {
      const before = goodTls.requests.length;
      assertJsonError(await h1({ port, path: '/noca/x' }), 502, 'unknown CA');
      assert.equal(goodTls.requests.length, before);
    });
  });

  describe('504 gateway timeout', () => {
    test('hanging origin: 504 at the route timeout (500ms)', async () => {
      for (const proto of ['h1', 'h2']) {
        const r = await request(proto, { port: proto === 'h2' ? tport : port, path: '/t500/hang' });
        assertJsonError(r, 504, proto);
        assert.ok(r.elapsed >= 450, `${proto}: 504 after ${r.elapsed} ms, before the 500 ms timeout`);
        assert.ok(r.elapsed < 2000, `${proto}: 504 after ${r.elapsed} ms`);
      }
    });

    test('hanging HTTPS origin: 504 at the route timeout', async () => {
      const r = await h1({ port, path: '/tlst500/hang' });
      assertJsonError(r, 504);
      assert.ok(r.elapsed >= 450 && r.elapsed < 2000, `504 after ${r.elapsed} ms`);
      const ok = await h1({ port, path: '/tlst500/slow/50' });
      assert.equal(ok.status, 200);
    });

    test('slow origin (5 s) gets 504; a fast enough one 200', async () => {
      const r = await h1({ port, path: '/t500/slow/5000' });
      assertJsonError(r, 504);
      assert.ok(r.elapsed < 2000, `504 after ${r.elapsed} ms`);
      const ok = await h1({ port, path: '/t500/slow/100' });
      assert.equal(ok.status, 200);
    });

    test('the timeout is a deadline for the whole head, not an idle timeout', async () => {
      // The origin sends one header byte every 100 ms and never finishes the head.
      const r = await h1({ port, path: '/t500/headdrip' });
      assertJsonError(r, 504);
      assert.ok(r.elapsed >= 450 && r.elapsed < 1500, `504 after ${r.elapsed} ms`);
    });

    test('the deadline ends at the response head: a slow body still completes', async () => {
      // head at once, then 20000 bytes over ~2 s (longer than the 500 ms route timeout)
      const r = await h1({ port, path: '/t500/drip' });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 20000);
    });
  });
});
