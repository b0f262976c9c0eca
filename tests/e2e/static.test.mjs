// Static origins: files with ETag / Last-Modified, conditional requests, ranges, index files, 404 JSON.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, h1, h2, killAll, makeCerts, pattern, raw, sha256, startEdge, tempDir } from './lib.mjs';

after(killAll);

describe('static origin', () => {
  let edge;
  let port;
  let tport;
  let root;
  const hello = 'hello, static world\n';
  const indexHtml = '<!doctype html><title>index</title>\n';
  const subIndex = '<p>sub index</p>\n';
  const bin = pattern(300000);

  before(async () => {
    root = tempDir('ep-static-');
    fs.writeFileSync(path.join(root, 'hello.txt'), hello);
    fs.writeFileSync(path.join(root, 'index.html'), indexHtml);
    fs.mkdirSync(path.join(root, 'sub'));
    fs.writeFileSync(path.join(root, 'sub', 'index.html'), subIndex);
    fs.writeFileSync(path.join(root, 'data.bin'), bin);
    const c = makeCerts().certs.localhost;
    edge = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }
hosts:
  "*":
    routes:
      - path: /
        origin: { static: ${root} }
`);
    [port, tport] = edge.ports;
  });

  after(async () => {
    if (edge) await edge.stopClean();
  });

  test('serves a file with ETag, Last-Modified and x-request-id', async () => {
    const r = await h1({ port, path: '/hello.txt' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), hello);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(hello));
    assert.ok(r.headers.etag, 'no ETag');
    assert.ok(r.headers['last-modified'], 'no Last-Modified');
    const mtime = fs.statSync(path.join(root, 'hello.txt')).mtime;
    assert.equal(new Date(r.headers['last-modified']).getTime(), Math.floor(mtime.getTime() / 1000) * 1000);
    assert.match(r.headers['x-request-id'] || '', /^[0-9a-f]{32}$/);
  });

  test('a binary file arrives intact over h1 and h2', async () => {
    const r1 = await h1({ port, path: '/data.bin' });
    assert.equal(r1.status, 200);
    assert.equal(sha256(r1.body), sha256(bin));
    const r2 = await h2({ port: tport, path: '/data.bin' });
    assert.equal(r2.status, 200);
    assert.equal(sha256(r2.body), sha256(bin));
  });

  test('If-None-Match with the ETag gives 304 without a body', async () => {
    const r = await h1({ port, path: '/hello.txt' });
    const etag = r.headers.etag;
    const nm = await h1({ port, path: '/hello.txt', headers: { 'if-none-match': etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.match(nm.headers['x-request-id'] || '', /^[0-9a-f]{32}$/);
    const other = await h1({ port, path: '/hello.txt', headers: { 'if-none-match': '"not-the-etag"' } });
    assert.equal(other.status, 200);
    assert.equal(other.body.toString(), hello);
    const nm2 = await h2({ port: tport, path: '/hello.txt', headers: { 'if-none-match': etag } });
    assert.equal(nm2.status, 304);
  });

  test('Range: bytes=0-3 gives 206 with Content-Range', async () => {
    const r = await h1({ port, path: '/hello.txt', headers: { range: 'bytes=0-3' } });
    assert.equal(r.status, 206);
    assert.equal(r.body.toString(), hello.slice(0, 4));
    assert.equal(r.headers['content-range'], `bytes 0-3/${Buffer.byteLength(hello)}`);
    assert.match(r.headers['x-request-id'] || '', /^[0-9a-f]{32}$/);
    const r2 = await h2({ port: tport, path: '/data.bin', headers: { range: 'bytes=1000-1999' } });
    assert.equal(r2.status, 206);
    assert.equal(sha256(r2.body), sha256(bin.subarray(1000, 2000)));
    assert.equal(r2.headers['content-range'], `bytes 1000-1999/${bin.length}`);
  });

  test('index.html is served for a directory', async () => {
    const r = await h1({ port, path: '/' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), indexHtml);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    const s = await h1({ port, path: '/sub/' });
    assert.equal(s.status, 200);
    assert.equal(s.body.toString(), subIndex);
  });

  test('a missing file gives 404 JSON', async () => {
    assertJsonError(await h1({ port, path: '/missing.txt' }), 404, 'h1');
    assertJsonError(await h2({ port: tport, path: '/missing/deeper.txt' }), 404, 'h2');
  });

  test('HEAD gives the head only', async () => {
    const r = await raw(port, 'HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(hello));
    assert.equal(r.rest.length, 0, 'body bytes after a HEAD response');
  });

  test('a relative static dir resolves against the conf file', async () => {
    const dir = tempDir('ep-static-rel-');
    fs.mkdirSync(path.join(dir, 'pub'));
    fs.writeFileSync(path.join(dir, 'pub', 'rel.txt'), 'relative\n');
    const e = await startEdge(
      `threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { static: pub }
`,
      { dir },
    );
    try {
      const r = await h1({ port: e.ports[0], path: '/rel.txt' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'relative\n');
    } finally {
      await e.stopClean();
    }
  });

  test('paths cannot escape the directory', async () => {
    const secret = path.join(path.dirname(root), `${path.basename(root)}-secret.txt`);
    fs.writeFileSync(secret, 'secret');
    try {
      const name = path.basename(secret);
      for (const p of [`/../${name}`, `/%2e%2e/${name}`, `/sub/../../${name}`]) {
        const r = await raw(port, `GET ${p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
        assert.notEqual(r.status, 200, p);
        assert.ok(!r.body.toString().includes('secret'), p);
      }
    } finally {
      fs.rmSync(secret, { force: true });
    }
  });
});
