// TLS listeners: ALPN (h2, http/1.1), protocol versions, SNI certificate selection, self-signed certificates.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { closedPort, h1, h2, json, killAll, makeCerts, startEdge, startOrigin } from './lib.mjs';

after(killAll);

function run(cmd, args, timeout = 20000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Handshake only; resolves { protocol, alpn, cert } or rejects.
function handshake(port, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.once('secureConnect', () => {
      const r = { protocol: s.getProtocol(), alpn: s.alpnProtocol, cert: s.getPeerCertificate() };
      s.end();
      resolve(r);
    });
    s.once('error', reject);
  });
}

describe('tls', () => {
  let origin;
  let edge;
  let certs;
  let port; // listener with a.test (default) and b.test, chosen by SNI
  let lport; // listener with the localhost certificate

  before(async () => {
    certs = makeCerts();
    origin = await startOrigin();
    const c = certs.certs;
    edge = await startEdge(`threads: 1
listen:
  - address: 127.0.0.1
    port: 0
    tls:
      certificates:
        - { cert: ${c['a.test'].cert}, key: ${c['a.test'].key} }
        - { cert: ${c['b.test'].cert}, key: ${c['b.test'].key} }
  - address: 127.0.0.1
    port: 0
    tls: { cert: ${c.localhost.cert}, key: ${c.localhost.key} }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        timeout: 10s
`);
    [port, lport] = edge.ports;
    assert.deepEqual(edge.schemes, ['https', 'https']);
  });

  after(async () => {
    if (edge) await edge.stopClean();
    if (origin) await origin.close();
  });

  test('ALPN offers h2 and http/1.1', async () => {
    const both = await handshake(lport, { servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(both.alpn, 'h2');
    const h11 = await handshake(lport, { servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    assert.equal(h11.alpn, 'http/1.1');
  });

  test('HTTP/1.1 over TLS, certificate verified against the test CA', async () => {
    const r = await h1({ port: lport, path: '/hello', tls: true, ca: certs.caPem, servername: 'localhost' });
    assert.equal(r.status, 200);
    assert.equal(r.httpVersion, '1.1');
    const j = json(r);
    assert.equal(j.url, '/hello');
    assert.equal(j.headers['x-forwarded-proto'], 'https');
  });

  test('HTTP/2 over TLS', async () => {
    const r = await h2({ port: lport, path: '/hello2', ca: certs.caPem, servername: 'localhost' });
    assert.equal(r.status, 200);
    const j = json(r);
    assert.equal(j.url, '/hello2');
    assert.equal(j.headers['x-forwarded-proto'], 'https');
  });

  test('curl --http2 and --http1.1', async () => {
    for (const [flag, want] of [
      ['--http2', '2'],
      ['--http1.1', '1.1'],
    ]) {
      const r = await run('curl', [
        '-sS', flag, '--cacert', certs.ca, '-o', '/dev/null', '-w', '%{http_code} %{http_version}',
        `https://127.0.0.1:${lport}/curl`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `200 ${want}`);
    }
  });

  test('curl with SNI b.test verifies the b.test certificate', async () => {
    const r = await run('curl', [
      '-sS', '--http2', '--cacert', certs.ca, '--resolve', `b.test:${port}:127.0.0.1`, '-o', '/dev/null', '-w',
      '%{http_code} %{http_version}', `https://b.test:${port}/sni`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200 2');
  });

  test('nghttp negotiates h2 and gets 200', async () => {
    const r = await run('nghttp', ['-nv', `https://127.0.0.1:${lport}/nghttp`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /The negotiated protocol: h2/);
    assert.match(r.stdout, /:status: 200/);
  });

  test('TLS 1.0 and 1.1 are refused', async () => {
    // Control: this client setup can do TLS 1.1 against a server that allows it, so a failure below is edgeproxy's.
    const c = certs.certs.localhost;
    const legacy = tls.createServer({
      cert: c.certPem,
      key: c.keyPem,
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    legacy.on('secureConnection', (s) => s.end());
    legacy.on('tlsClientError', () => {});
    await new Promise((resolve) => legacy.listen(0, '127.0.0.1', resolve));
    const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', servername: 'localhost' };
    try {
      const ok = await handshake(legacy.address().port, old);
      assert.equal(ok.protocol, 'TLSv1.1');
    } finally {
      legacy.close();
    }
    await assert.rejects(handshake(lport, old));
    await assert.rejects(handshake(lport, { ...old, maxVersion: 'TLSv1' }));
  });

  test('TLS 1.2 and 1.3 are accepted', async () => {
    const v12 = await handshake(lport, { servername: 'localhost', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assert.equal(v12.protocol, 'TLSv1.2');
    const v13 = await handshake(lport, { servername: 'localhost', minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    assert.equal(v13.protocol, 'TLSv1.3');
    // and a request works over TLS 1.2 (h1 and h2)
    const r = await h1({ port: lport, path: '/v12', tls: true, ca: certs.caPem, servername: 'localhost' });
    assert.equal(r.status, 200);
  });

  test('SNI selects the certificate; the first one is the default', async () => {
    const a = await handshake(port, { servername: 'a.test' });
    assert.equal(a.cert.subjectaltname, 'DNS:a.test');
    const b = await handshake(port, { servername: 'b.test' });
    assert.equal(b.cert.subjectaltname, 'DNS:b.test');
    const other = await handshake(port, { servername: 'other.test' });
    assert.equal(other.cert.subjectaltname, 'DNS:a.test');
    const none = await handshake(port, {}); // IP literal: node sends no SNI
    assert.equal(none.cert.subjectaltname, 'DNS:a.test');
    // and both verify against the CA with their names
    await handshake(port, { servername: 'b.test', ca: certs.caPem, rejectUnauthorized: true });
    await handshake(port, { servername: 'a.test', ca: certs.caPem, rejectUnauthorized: true });
  });

  test('requests work over both SNI certificates, h1 and h2', async () => {
    for (const servername of ['a.test', 'b.test']) {
      const r1 = await h1({ port, path: '/s', tls: true, ca: certs.caPem, servername, headers: { host: servername } });
      assert.equal(r1.status, 200);
      const r2 = await h2({ port, path: '/s', ca: certs.caPem, servername });
      assert.equal(r2.status, 200);
    }
  });
});

describe('tls: self-signed certificate under data_dir', () => {
  test('tls: {} generates a certificate on first start and reuses it on the next', async () => {
    const dead = await closedPort();
    const conf = `threads: 1
data_dir: var
listen:
  - { address: 127.0.0.1, port: 0, tls: {} }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "http://127.0.0.1:${dead}" }
`;
    const e1 = await startEdge(conf);
    const dataDir = path.join(e1.dir, 'var');
    let fp1;
    try {
      assert.deepEqual(e1.schemes, ['https']);
      fp1 = (await handshake(e1.ports[0], { servername: 'localhost' })).cert.fingerprint256;
      assert.ok(fp1);
      // a PEM certificate file under data_dir holds the served certificate
      const pems = [];
      const walk = (d) => {
        for (const f of fs.readdirSync(d, { withFileTypes: true })) {
          const p = path.join(d, f.name);
          if (f.isDirectory()) walk(p);
          else if (fs.readFileSync(p, 'latin1').includes('-----BEGIN CERTIFICATE-----')) pems.push(p);
        }
      };
      walk(dataDir);
      assert.ok(pems.length > 0, `no certificate under ${dataDir}`);
      const fps = pems.map((p) => new crypto.X509Certificate(fs.readFileSync(p)).fingerprint256);
      assert.ok(fps.includes(fp1), `served ${fp1}, files have ${fps}`);
      // h2 works with the generated certificate
      const r = await h2({ port: e1.ports[0], path: '/x' });
      assert.equal(r.status, 502);
    } finally {
      await e1.stopClean();
    }
    const e2 = await startEdge(conf, { dir: e1.dir });
    try {
      const fp2 = (await handshake(e2.ports[0], { servername: 'localhost' })).cert.fingerprint256;
      assert.equal(fp2, fp1);
    } finally {
      await e2.stopClean();
    }
  });
});
