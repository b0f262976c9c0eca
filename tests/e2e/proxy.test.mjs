// Proxying to HTTP origins: upstream headers, header rewrites, hop-by-hop headers, keep-alive, large bodies both ways,
// status pass-through, HEAD, and concurrency over worker threads.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  assertJsonError,
  h1,
  h2,
  h2connect,
  json,
  killAll,
  makeCerts,
  patternSha256,
  raw,
  request,
  sha256,
  startEdge,
  startOrigin,
} from './lib.mjs';

after(killAll);

const MiB = 1024 * 1024;

describe('proxy', () => {
  let origin;
  let edge;
  let port;
  let tport;

  before(async () => {
    origin = await startOrigin();
    const c = makeCerts().certs.localhost;
    const o = origin.url;
    edge = await startEdge(`threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${o}" }
        timeout: 25s
        max_body_size: 64MiB
      - path: /hdr/
        origin: { url: "${o}" }
        headers:
          request:
            add: { x-edge: edgeproxy, x-replaced: new }
            remove: [x-remove-me, x-replaced]
          response:
            add: { x-served-by: edgeproxy }
            remove: [x-powered-by]
      - path: /keephost/
        origin: { url: "${o}", preserve_host: true }
`);
    [port, tport] = edge.ports;
    assert.deepEqual(edge.schemes, ['http', 'https']);
  });

  after(async () => {
    if (edge) await edge.stopClean();
    if (origin) await origin.close();
  });

  describe('upstream request headers', () => {
    test('x-forwarded-for is set, or appended to the client one', async () => {
      let j = json(await h1({ port, path: '/xff' }));
      assert.equal(j.headers['x-forwarded-for'], '127.0.0.1');
      j = json(await h1({ port, path: '/xff', headers: { 'x-forwarded-for': '10.1.2.3' } }));
      assert.equal(j.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1');
      j = json(await h2({ port: tport, path: '/xff', headers: { 'x-forwarded-for': '10.9.9.9' } }));
      assert.equal(j.headers['x-forwarded-for'], '10.9.9.9, 127.0.0.1');
    });

    test('x-forwarded-proto follows the listener', async () => {
      assert.equal(json(await h1({ port, path: '/p' })).headers['x-forwarded-proto'], 'http');
      assert.equal(json(await h1({ port: tport, tls: true, path: '/p' })).headers['x-forwarded-proto'], 'https');
      assert.equal(json(await h2({ port: tport, path: '/p' })).headers['x-forwarded-proto'], 'https');
      // a client value does not survive on the plain listener
      const j = json(await h1({ port, path: '/p', headers: { 'x-forwarded-proto': 'https' } }));
      assert.equal(j.headers['x-forwarded-proto'], 'http');
    });

    test('via names edgeproxy', async () => {
      assert.match(json(await h1({ port, path: '/via' })).headers.via || '', /edgeproxy/);
      assert.match(json(await h2({ port: tport, path: '/via' })).headers.via || '', /edgeproxy/);
    });

    test("host is the origin's by default; preserve_host keeps the client's", async () => {
      const j = json(await h1({ port, path: '/host', headers: { host: 'client.test' } }));
      assert.equal(j.headers.host, `127.0.0.1:${origin.port}`);
      const k = json(await h1({ port, path: '/keephost/x', headers: { host: 'client.test' } }));
      assert.equal(k.headers.host, 'client.test');
      const k2 = json(await h2({ port: tport, path: '/keephost/x', authority: 'client2.test' }));
      assert.equal(k2.headers.host, 'client2.test');
    });

    test('method, path, query and body pass through', async () => {
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        const body = method === 'GET' || method === 'OPTIONS' ? undefined : `body of ${method}`;
        const r = await h1({ port, path: `/m/${method}?a=1&b=%2F`, method, body });
        assert.equal(r.status, 200);
        const j = json(r);
        assert.equal(j.method, method);
        assert.equal(j.url, `/m/${method}?a=1&b=%2F`);
        assert.equal(j.bodyLength, body ? Buffer.byteLength(body) : 0);
        if (body) assert.equal(j.bodySha256, sha256(body));
      }
    });

    test('route request headers: remove, then add', async () => {
      const r = await h1({
        port,
        path: '/hdr/x',
        headers: { 'x-remove-me': 'gone', 'x-replaced': 'old', 'x-kept': 'kept' },
      });
      assert.equal(r.status, 200);
      const hs = json(r).headers;
      assert.equal(hs['x-edge'], 'edgeproxy');
      assert.equal(hs['x-remove-me'], undefined);
      assert.equal(hs['x-replaced'], 'new');
      assert.equal(hs['x-kept'], 'kept');
      // routes without header commands leave them alone
      const plain = json(await h1({ port, path: '/x', headers: { 'x-remove-me': 'stays' } })).headers;
      assert.equal(plain['x-remove-me'], 'stays');
      assert.equal(plain['x-edge'], undefined);
    });

    test('route response headers: remove, then add', async () => {
      for (const proto of ['h1', 'h2']) {
        const r = await request(proto, { port: proto === 'h2' ? tport : port, path: '/hdr/x' });
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-served-by'], 'edgeproxy', proto);
        assert.equal(r.headers['x-powered-by'], undefined, proto);
        assert.equal(r.headers['x-origin'], 'yes', proto);
      }
      const plain = await h1({ port, path: '/x' });
      assert.equal(plain.headers['x-powered-by'], 'origin-test');
      assert.equal(plain.headers['x-served-by'], undefined);
    });

    test('hop-by-hop request headers are not forwarded', async () => {
      const r = await raw(
        port,
        'POST /hop HTTP/1.1\r\nHost: t\r\nConnection: close, x-hop-token\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
          'Upgrade: foo/1\r\nProxy-Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
      assert.equal(r.status, 200, r.raw.toString());
      const j = JSON.parse(r.body.toString());
      for (const h of ['keep-alive', 'te', 'upgrade', 'proxy-connection', 'transfer-encoding']) {
        assert.equal(j.headers[h], undefined, `${h}: ${j.headers[h]} reached the origin`);
      }
      assert.doesNotMatch(j.headers.connection || '', /x-hop-token|close/i);
      assert.equal(j.bodyLength, 5);
      assert.equal(j.bodySha256, sha256('hello'));
    });

    test("hop-by-hop headers of the origin's response are not forwarded", async () => {
      // node's origin answers with "connection: keep-alive" and "keep-alive: timeout=30"
      const r = await raw(port, 'GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(r.headers['keep-alive'], undefined);
      assert.doesNotMatch(r.headers.connection || '', /keep-alive/i);
    });
  });

  describe('keep-alive', () => {
    test('two sequential HTTP/1.1 requests share one client connection', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const a = await h1({ port, path: '/ka/1', agent });
        const b = await h1({ port, path: '/ka/2', agent });
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);
        assert.equal(b.reusedSocket, true);
        assert.equal(a.localPort, b.localPort);
        // and the origin sees pooled connections too
        assert.equal(json(a).remotePort, json(b).remotePort, 'upstream connection not reused');
      } finally {
        agent.destroy();
      }
    });

    test('several requests over one HTTP/2 connection', async () => {
      const session = await h2connect(tport);
      try {
        for (let i = 0; i < 5; i++) {
          const r = await h2({ session, path: `/h2ka/${i}` });
          assert.equal(r.status, 200);
          assert.equal(json(r).url, `/h2ka/${i}`);
        }
      } finally {
        session.close();
      }
    });
  });

  describe('bodies', () => {
    const N = 50 * MiB;
    for (const kind of ['big', 'chunked', 'close']) {
      for (const proto of ['h1', 'h2']) {
        test(`50 MiB ${kind} response over ${proto}`, { timeout: 120000 }, async () => {
          const r = await request(proto, { port: proto === 'h2' ? tport : port, path: `/dl/${kind}/${N}`, timeout: 90000 });
          assert.equal(r.status, 200);
          assert.equal(r.body.length, N);
          assert.equal(sha256(r.body), patternSha256(N));
          if (kind === 'big') assert.equal(Number(r.headers['content-length']), N);
        });
      }
    }

    for (const proto of ['h1', 'h2']) {
      test(`50 MiB request body over ${proto}`, { timeout: 120000 }, async () => {
        const headers = proto === 'h2' ? {} : { 'content-length': N };
        const r = await request(proto, {
          port: proto === 'h2' ? tport : port,
          path: '/upload',
          method: 'POST',
          headers,
          body: { pattern: N },
          timeout: 90000,
        });
        assert.equal(r.status, 200, r.body.toString().slice(0, 300));
        const j = json(r);
        assert.equal(j.bodyLength, N);
        assert.equal(j.bodySha256, patternSha256(N));
      });
    }

    test('origin error statuses and bodies pass through unchanged', async () => {
      for (const proto of ['h1', 'h2']) {
        const p = proto === 'h2' ? tport : port;
        for (const [status, body] of [
          [503, 'down'],
          [500, 'oops'],
          [502, 'origin says bad gateway'],
          [404, 'nf'],
          [418, 'teapot'],
        ]) {
          const r = await request(proto, { port: p, path: `/status/${status}?body=${encodeURIComponent(body)}` });
          assert.equal(r.status, status, `${proto} ${status}`);
          assert.equal(r.body.toString(), body, `${proto} ${status}`);
          assert.match(String(r.headers['content-type']), /^text\/plain/);
          assert.ok(r.headers['x-request-id'], 'x-request-id on a passed-through error');
        }
      }
    });

    test('HEAD returns the head without a body', async () => {
      const r = await raw(port, 'HEAD /big/1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], '1000');
      assert.equal(r.rest.length, 0, `body bytes after a HEAD response: ${r.rest.length}`);
      const r2 = await h2({ port: tport, path: '/big/1000', method: 'HEAD' });
      assert.equal(r2.status, 200);
      assert.equal(r2.body.length, 0);
      assert.equal(origin.requests.filter((q) => q.method === 'HEAD' && q.url === '/big/1000').length, 2);
    });
  });

  describe('worker threads', () => {
    test('200 concurrent HTTP/1.1 requests all succeed', { timeout: 60000 }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
      try {
        const rs = await Promise.all(
          Array.from({ length: 200 }, (_, i) => h1({ port, path: `/c/${i}`, agent, timeout: 30000 })),
        );
        rs.forEach((r, i) => {
          assert.equal(r.status, 200);
          assert.equal(json(r).url, `/c/${i}`);
        });
      } finally {
        agent.destroy();
      }
    });

    test('200 concurrent requests on 4 HTTP/2 connections all succeed', { timeout: 60000 }, async () => {
      const sessions = await Promise.all([0, 1, 2, 3].map(() => h2connect(tport)));
      try {
        const rs = await Promise.all(
          Array.from({ length: 200 }, (_, i) => h2({ session: sessions[i % 4], path: `/c2/${i}`, timeout: 30000 })),
        );
        rs.forEach((r, i) => {
          assert.equal(r.status, 200);
          assert.equal(json(r).url, `/c2/${i}`);
        });
      } finally {
        for (const s of sessions) s.close();
      }
    });
  });
});

// The origin connection pool: reuse, an origin that closes idle connections, and the one retry on a connection the
// origin dropped as the request went out.
describe('origin connections', () => {
  let server;
  let edge;
  let port;
  let conns = 0; // connections the raw origin accepted
  let served = 0; // requests it answered

  before(async () => {
    // A raw HTTP/1.1 origin: answers the first request of each connection with keep-alive, then closes the connection
    // without answering the second one (as an origin whose keep-alive timeout fired just as the request arrived).
    server = net.createServer((sock) => {
      conns++;
      let n = 0;
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        let end;
        while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
          const head = buf.slice(0, end);
          const len = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1]);
          if (buf.length < end + 4 + len) return;
          buf = buf.slice(end + 4 + len);
          if (++n === 2) {
            sock.destroy();
            return;
          }
          served++;
          const body = `conn ${conns} ${head.split(' ')[0]} ${head.split(' ')[1]}`;
          sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
        }
      });
      sock.on('error', () => {});
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    edge = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "http://127.0.0.1:${server.address().port}" }
`);
    port = edge.ports[0];
  });

  after(async () => {
    await edge?.stopClean();
    server?.close();
  });

  test('an idempotent request on a connection the origin drops is retried once on a new one', async () => {
    const c0 = conns;
    const a = await h1({ port, path: '/first' });
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), `conn ${c0 + 1} GET /first`);
    const b = await h1({ port, path: '/second' }); // goes out on the pooled connection, which the origin drops
    assert.equal(b.status, 200, b.body.toString());
    assert.equal(b.body.toString(), `conn ${c0 + 2} GET /second`);
    assert.equal(conns, c0 + 2);
  });

  test('a POST is not retried: the origin may have acted on it', async () => {
    const a = await h1({ port, path: '/warm' }); // leaves a used connection in the pool
    assert.equal(a.status, 200);
    const before = served;
    const b = await h1({ port, path: '/p2', method: 'POST', body: 'y' });
    assertJsonError(b, 502, 'POST on a dropped connection');
    assert.equal(served, before);
  });
});
