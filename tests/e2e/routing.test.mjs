// Routing: host selection (exact > wildcard > "*"), longest prefix, prefix boundaries, patterns, origin base paths.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, h1, h2, json, killAll, makeCerts, startEdge, startOrigin } from './lib.mjs';

after(killAll);

// Each route tags the upstream request with x-route: NAME, which the echo origin returns.
function route(path, name, origin, extra = '') {
  return `      - path: ${path}
        origin: { url: "${origin}" }
        timeout: 10s
        headers: { request: { add: { x-route: ${name} } } }
${extra}`;
}

describe('routing', () => {
  let origin;
  let edge;
  let port;
  let tport;
  let edge404;
  let port404;

  before(async () => {
    origin = await startOrigin();
    const o = origin.url;
    const c = makeCerts().certs.localhost;
    // "/" comes first on purpose: the longest prefix must win whatever the order.
    edge = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: { cert: ${c.cert}, key: ${c.key} } }
hosts:
  "*":
    routes:
${route('/', 'root', o)}${route('/a/', 'a', o)}${route('/a/b/', 'a-b', o)}${route('/api', 'api', o)}${route(
      '/users/{id}',
      'users-id',
      o,
    )}${route('/files/{rest+}', 'files-rest', o)}${route('/p/', 'p', `${o}/base`)}${route('/q/', 'q', `${o}/base/`)}
  "*.example.com":
    routes:
${route('/', 'wild', o)}
  exact.example.com:
    routes:
${route('/', 'exact', o)}
`);
    [port, tport] = edge.ports;
    edge404 = await startEdge(`threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
${route('/api', 'api', o)}${route('/users/{id}', 'users-id', o)}
`);
    [port404] = edge404.ports;
  });

  after(async () => {
    if (edge) await edge.stopClean();
    if (edge404) await edge404.stopClean();
    if (origin) await origin.close();
  });

  async function routeOf(p, host = 'any.test') {
    const r = await h1({ port, path: p, headers: { host } });
    assert.equal(r.status, 200, `${host} ${p}: ${r.body}`);
    const j = json(r);
    return { name: j.headers['x-route'], url: j.url };
  }

  test('exact host beats wildcard beats "*"', async () => {
    assert.equal((await routeOf('/x', 'exact.example.com')).name, 'exact');
    assert.equal((await routeOf('/x', 'foo.example.com')).name, 'wild');
    assert.equal((await routeOf('/x', 'other.test')).name, 'root');
    // the port in Host does not matter, nor does case
    assert.equal((await routeOf('/x', `exact.example.com:${port}`)).name, 'exact');
    assert.equal((await routeOf('/x', 'Exact.EXAMPLE.com')).name, 'exact');
    assert.equal((await routeOf('/x', 'bar.example.com:1234')).name, 'wild');
  });

  test('host selection over HTTP/2 uses :authority', async () => {
    for (const [authority, want] of [
      ['exact.example.com', 'exact'],
      ['foo.example.com', 'wild'],
      ['localhost', 'root'],
    ]) {
      const r = await h2({ port: tport, path: '/h2', authority });
      assert.equal(r.status, 200);
      assert.equal(json(r).headers['x-route'], want, authority);
    }
  });

  test('the longest matching prefix wins regardless of file order', async () => {
    assert.equal((await routeOf('/a/b/c')).name, 'a-b');
    assert.equal((await routeOf('/a/b/')).name, 'a-b');
    assert.equal((await routeOf('/a/x')).name, 'a');
    assert.equal((await routeOf('/a/b')).name, 'a'); // "/a/b/" does not match /a/b
    assert.equal((await routeOf('/a/bc')).name, 'a');
    assert.equal((await routeOf('/zzz')).name, 'root');
    assert.equal((await routeOf('/')).name, 'root');
  });

  test('a prefix matches at a "/" boundary only', async () => {
    assert.equal((await routeOf('/api')).name, 'api');
    assert.equal((await routeOf('/api/')).name, 'api');
    assert.equal((await routeOf('/api/x/y')).name, 'api');
    assert.equal((await routeOf('/api?x=1')).name, 'api');
    assert.equal((await routeOf('/apix')).name, 'root');
  });

  test('patterns match whole paths, one segment per {param}', async () => {
    assert.equal((await routeOf('/users/42')).name, 'users-id');
    assert.equal((await routeOf('/users/42?full=1')).name, 'users-id');
    assert.equal((await routeOf('/users/42/x')).name, 'root');
    assert.equal((await routeOf('/users/')).name, 'root');
    assert.equal((await routeOf('/users')).name, 'root');
  });

  test('{rest+} matches one or more trailing segments', async () => {
    assert.equal((await routeOf('/files/a')).name, 'files-rest');
    assert.equal((await routeOf('/files/a/b/c')).name, 'files-rest');
    assert.equal((await routeOf('/files/')).name, 'root');
  });

  test('no matching route gives 404 JSON', async () => {
    for (const p of ['/', '/apix', '/users/42/x', '/nothing/here']) {
      const r = await h1({ port: port404, path: p });
      assertJsonError(r, 404, p);
    }
    // and the routes that exist still work there
    const ok = await h1({ port: port404, path: '/users/7' });
    assert.equal(ok.status, 200);
    assert.equal(json(ok).headers['x-route'], 'users-id');
  });

  test('origin URL base path replaces the route prefix; the query is kept', async () => {
    const r = await routeOf('/p/x?q=1');
    assert.equal(r.name, 'p');
    assert.equal(r.url, '/base/x?q=1');
    assert.equal((await routeOf('/p/deep/er/path')).url, '/base/deep/er/path');
    // a trailing "/" in the origin URL makes no difference
    const q = await routeOf('/q/x?q=2');
    assert.equal(q.name, 'q');
    assert.equal(q.url, '/base/x?q=2');
  });

  test('origin URL without a path forwards the path unchanged', async () => {
    assert.equal((await routeOf('/a/b/c?z=2&y=%20')).url, '/a/b/c?z=2&y=%20');
    assert.equal((await routeOf('/users/42')).url, '/users/42');
    assert.equal((await routeOf('/')).url, '/');
  });
});
