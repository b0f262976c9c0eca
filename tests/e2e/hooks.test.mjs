// Lua hooks (hooks: { request, response, on_error }) and edge.fetch / edge.purge / edge.respond, against real origins:
// request rewriting, answering early, the cache key, picking another (internal) route's origin, subrequests from every
// phase (request hook, function, response hook) over http and https, response rewriting, failures, and a client that
// leaves while a hook waits.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, closedPort, h1, h2, json, killAll, makeCerts, poll, runCli, sleep, startEdge, startOrigin, tempDir } from './lib.mjs';

after(killAll);

const FILES = {
  'rewrite.lua': `
function on_request(req)
  local h = req.headers
  if req.path == "/rw/deny" then
    return edge.respond(403, { ["content-type"] = "application/json", ["x-why"] = { "a", "b" } }, '{"denied":true}')
  end
  if req.path == "/rw/info" then
    return edge.respond(200, { ["content-type"] = "application/json" }, edge.json.encode({
      method = req.method, path = req.path, query = req.query, args = req.args, host = req.host, scheme = req.scheme,
      route = req.route, client_ip = req.client_ip, request_id = req.request_id, cookie = h.cookie, vars = edge.vars.color,
      body = req.body }))
  end
  if req.path == "/rw/old" then req.path = "/rw/new" end
  if req.args.drop then req.query = nil end
  if req.args.q then req.query = "q=" .. req.args.q .. "&added=1" end
  h["x-hooked"] = "yes"
  h["x-remove-me"] = nil
  req.headers = h
end
`,
  'tenant.lua': `
function on_request(req)
  req.cache_key = req.headers["x-tenant"] or "none"
end
`,
  'pick.lua': `
function on_request(req)
  if req.headers["x-canary"] == "1" then req.origin = "/canary-backend/" end
end
`,
  'fetcher.lua': `
function on_request(req)
  local target = req.headers["x-target"]
  local res, err = edge.fetch(target, { method = req.args.method or "GET", headers = { ["x-sub"] = "1" },
                                        body = req.args.body, timeout = tonumber(req.args.timeout) })
  if not res then return edge.respond(502, { ["x-err"] = err }, "fetch failed: " .. err) end
  local res2 = edge.fetch(target)
  return edge.respond(200, { ["x-status"] = tostring(res.status), ["x-second"] = tostring(res2 and res2.status) }, res.body)
end
`,
  'fnfetch.lua': `
function handler(event)
  local res, err = edge.fetch(event.headers["x-target"])
  if not res then return { statusCode = 502, body = err } end
  -- the event's fields made on first read, read only after the wait: made before it, from the request
  local q = event.multiValueQueryStringParameters
  return { statusCode = 200, headers = { ["x-sub-status"] = tostring(res.status),
                                         ["x-after-rid"] = event.requestContext.requestId,
                                         ["x-after-ip"] = event.requestContext.identity.sourceIp,
                                         ["x-after-target"] = event.multiValueHeaders["x-target"][1],
                                         ["x-after-q"] = q and table.concat(q.q, ",") or "none" },
           body = "fn saw " .. res.body }
end
`,
  'hello.lua': `
function handler(event)
  return { statusCode = 200, headers = { ["content-type"] = "text/plain", ["x-fn"] = "1" }, body = "hello from the function" }
end
`,
  'resp.lua': `
function on_response(req, res)
  local h = res.headers
  h["x-powered-by"] = nil
  h["x-resp"] = req.path
  res.headers = h
  if req.args.status then res.status = tonumber(req.args.status) end
  if req.args.replace then res.body = "replaced body" end
  if res.body then res.body = string.upper(res.body) end
  if req.args.fetch then
    local sub = edge.fetch(req.headers["x-target"])
    h["x-sub"] = sub and tostring(sub.status) or "failed"
    res.headers = h
  end
end
`,
  'broken.lua': `
function on_request(req)
  if req.args.boom then error("request hook exploded") end
end
function on_response(req, res)
  if req.args.rboom then error("response hook exploded") end
end
`,
  'purger.lua': `
function on_request(req)
  if req.args.purge then
    local n, err = edge.purge({ url = req.host .. "/cached/" .. req.args.purge })
    return edge.respond(200, {}, "purged " .. tostring(n) .. " " .. tostring(err))
  end
end
`,
};

function writeFiles(dir) {
  fs.mkdirSync(path.join(dir, 'hooks'), { recursive: true });
  for (const [name, text] of Object.entries(FILES)) fs.writeFileSync(path.join(dir, 'hooks', name), text);
}

function conf(origin, canary, ca) {
  return `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: {} }
lua: { dir: hooks, cpu_limit: 100ms, variables: { color: blue }, fetch: { timeout: 2s, max_body_size: 64KiB, ca: ${ca} } }
hosts:
  "*":
    routes:
      - path: /rw/
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/rewrite.lua }
      - path: /tenant/
        origin: { url: "${origin.url}" }
        cache: { default_ttl: 60s }
        hooks: { request: hooks/tenant.lua }
      - path: /pick/
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/pick.lua }
      - path: /canary-backend/
        origin: { url: "${canary.url}" }
        internal: true
      - path: /fetch
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/fetcher.lua }
      - path: /fnfetch
        origin: { function: hooks/fnfetch.lua }
      - path: /resp/
        origin: { url: "${origin.url}" }
        hooks: { response: hooks/resp.lua }
      - path: /fnresp
        origin: { function: hooks/hello.lua }
        hooks: { response: hooks/resp.lua }
      - path: /broken/
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/broken.lua, response: hooks/broken.lua }
      - path: /fnbroken
        origin: { function: hooks/hello.lua }
        hooks: { response: hooks/broken.lua }
      - path: /lenient/
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/broken.lua, response: hooks/broken.lua, on_error: continue }
      - path: /cached/
        origin: { url: "${origin.url}" }
        cache: { default_ttl: 60s }
      - path: /purger
        origin: { url: "${origin.url}" }
        hooks: { request: hooks/purger.lua }
`;
}

describe('hooks', () => {
  let edge;
  let port;
  let tlsPort;
  let origin;
  let canary;
  let tlsOrigin;
  before(async () => {
    const dir = tempDir('ep-hooks-');
    writeFiles(dir);
    origin = await startOrigin();
    canary = await startOrigin();
    tlsOrigin = await startOrigin({ tls: 'localhost' });
    edge = await startEdge(conf(origin, canary, makeCerts().ca), { dir });
    [port, tlsPort] = edge.ports;
  });
  after(async () => {
    await edge.stopClean();
    await origin.close();
    await canary.close();
    await tlsOrigin.close();
  });

  test('on_request rewrites the path, the query and the headers (HTTP/1.1 and HTTP/2)', async () => {
    for (const proto of ['h1', 'h2']) {
      const send = proto === 'h1' ? (o) => h1({ port, ...o }) : (o) => h2({ port: tlsPort, ...o });
      let res = await send({ path: '/rw/old?x=1', headers: { 'x-remove-me': 'secret', 'x-keep': 'k' } });
      assert.equal(res.status, 200, proto);
      let seen = json(res);
      assert.equal(seen.url, '/rw/new?x=1');
      assert.equal(seen.headers['x-hooked'], 'yes');
      assert.equal(seen.headers['x-keep'], 'k');
      assert.equal(seen.headers['x-remove-me'], undefined);
      res = await send({ path: '/rw/a?drop=1' });
      assert.equal(json(res).url, '/rw/a');
      res = await send({ path: '/rw/a?q=hello' });
      assert.equal(json(res).url, '/rw/a?q=hello&added=1');
    }
  });

  test('edge.respond answers at once; the origin is not asked', async () => {
    const before = origin.requests.length;
    const res = await h1({ port, path: '/rw/deny' });
    assert.equal(res.status, 403);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(res.body.toString()), { denied: true });
    assert.equal(res.headers['x-why'], 'a, b');
    assert.equal(origin.requests.length, before);
  });

  test('req gives the request: method, path, query, args, host, scheme, route, client, request id, headers, body, edge.vars', async () => {
    const res = await h1({ port, path: '/rw/info?a=1&b=x%20y', method: 'POST', body: 'payload', headers: { cookie: 'c=1', 'x-request-id': 'hook-test-1' } });
    assert.equal(res.status, 200);
    const info = json(res);
    assert.equal(info.method, 'POST');
    assert.equal(info.path, '/rw/info');
    assert.equal(info.query, 'a=1&b=x%20y');
    assert.deepEqual(info.args, { a: '1', b: 'x y' });
    assert.match(info.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(info.scheme, 'http');
    assert.equal(info.route, '/rw/');
    assert.equal(info.client_ip, '127.0.0.1');
    assert.equal(info.request_id, 'hook-test-1');
    // every octet width (the address is formatted by hand): from 127.0.10.200, a loopback address Linux lets us use
    const other = json(await h1({ port, path: '/rw/info', localAddress: '127.0.10.200' }));
    assert.equal(other.client_ip, '127.0.10.200');
    assert.equal(info.cookie, 'c=1');
    assert.equal(info.vars, 'blue');
    assert.equal(info.body, 'payload');
  });

  test('req.cache_key separates cache entries', async () => {
    const n0 = origin.requests.length;
    const get = (t) => h1({ port, path: '/tenant/page', headers: { 'x-tenant': t } });
    assert.match((await get('a')).headers['cache-status'], /fwd=uri-miss/);
    assert.match((await get('b')).headers['cache-status'], /fwd=uri-miss/);
    await poll(async () => /hit/.test((await get('a')).headers['cache-status']));
    assert.match((await get('b')).headers['cache-status'], /hit/);
    assert.equal(origin.requests.length - n0, 2);
  });

  test('req.origin sends the request to an internal route\'s origin; the internal route itself is not reachable', async () => {
    const c0 = canary.requests.length;
    let res = await h1({ port, path: '/pick/x', headers: { 'x-canary': '1' } });
    assert.equal(res.status, 200);
    assert.equal(canary.requests.length, c0 + 1);
    assert.equal(json(res).url, '/pick/x');
    res = await h1({ port, path: '/pick/y' });
    assert.equal(canary.requests.length, c0 + 1);
    assert.equal(json(res).url, '/pick/y');
    assertJsonError(await h1({ port, path: '/canary-backend/z' }), 404);
  });

  test('edge.fetch from a request hook: http and https, methods and bodies, two in a row', async () => {
    let res = await h1({ port, path: '/fetch?method=post&body=abc', headers: { 'x-target': `${origin.url}/sub/path` } });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.headers['x-status'], '200');
    assert.equal(res.headers['x-second'], '200');
    const seen = json(res);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/sub/path');
    assert.equal(seen.headers['x-sub'], '1');
    assert.equal(seen.bodyLength, 3);
    res = await h1({ port, path: '/fetch', headers: { 'x-target': `https://localhost:${tlsOrigin.port}/tls` } });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(json(res).url, '/tls');
    // libh2o 2.2.5 checks the name against DNS names only: an IP literal fails closed (README, edge.fetch)
    res = await h1({ port, path: '/fetch', headers: { 'x-target': `https://127.0.0.1:${tlsOrigin.port}/tls-ip` } });
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-err'], 'certificate name mismatch');
  });

  test('edge.fetch failures come back to the script: refused, timeout, body too large, bad certificate', async () => {
    const closed = await closedPort();
    let res = await h1({ port, path: '/fetch', headers: { 'x-target': `http://127.0.0.1:${closed}/` } });
    assert.equal(res.status, 502);
    assert.ok(res.headers['x-err']);
    const t0 = Date.now();
    res = await h1({ port, path: '/fetch?timeout=300', headers: { 'x-target': `${origin.url}/hang` } });
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-err'], 'timeout');
    assert.ok(Date.now() - t0 < 1500, 'the call\'s own timeout applies');
    res = await h1({ port, path: '/fetch', headers: { 'x-target': `${origin.url}/big/100000` } });
    assert.equal(res.status, 502);
    assert.match(res.headers['x-err'], /max_body_size/);
    const wrong = await startOrigin({ tls: 'wrong.test' });
    res = await h1({ port, path: '/fetch', headers: { 'x-target': `https://localhost:${wrong.port}/` } });
    assert.equal(res.status, 502);
    await wrong.close();
  });

  test('edge.fetch from a function and from a response hook', async () => {
    let res = await h1({ port, path: '/fnfetch?q=1&q=2', headers: { 'x-target': `${origin.url}/from-fn`, 'x-request-id': 'fnfetch-1' } });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.headers['x-sub-status'], '200');
    assert.match(res.body.toString(), /^fn saw .*"url":"\/from-fn"/);
    assert.equal(res.headers['x-after-rid'], 'fnfetch-1');
    assert.equal(res.headers['x-after-ip'], '127.0.0.1');
    assert.equal(res.headers['x-after-target'], `${origin.url}/from-fn`);
    assert.equal(res.headers['x-after-q'], '1,2');
    res = await h1({ port, path: '/resp/x?fetch=1', headers: { 'x-target': `${origin.url}/status/204` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-sub'], '204');
  });

  test('on_response changes status and headers of an origin\'s answer, and replaces or rewrites bodies', async () => {
    let res = await h1({ port, path: '/resp/a?status=202' });
    assert.equal(res.status, 202);
    assert.equal(res.headers['x-resp'], '/resp/a');
    assert.equal(res.headers['x-powered-by'], undefined);
    assert.equal(res.headers['x-origin'], 'yes');
    assert.equal(json(res).url, '/resp/a?status=202'); // the origin's body, streamed
    res = await h2({ port: tlsPort, path: '/resp/b?replace=1' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'REPLACED BODY');
    res = await h1({ port, path: '/fnresp' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'HELLO FROM THE FUNCTION');
    assert.equal(res.headers['x-fn'], '1');
    assert.equal(res.headers['x-resp'], '/fnresp');
  });

  test('a failing hook answers 500 (logged with its traceback); with on_error: continue the request goes on', async () => {
    let res = await h1({ port, path: '/broken/x?boom=1', headers: { 'x-request-id': 'hook-boom-1' } });
    assertJsonError(res, 500);
    await poll(() => /hook-boom-1.*request hook .*broken\.lua failed: .*request hook exploded/.test(edge.logs()));
    assert.match(edge.logs(), /stack traceback/);
    res = await h1({ port, path: '/broken/x?rboom=1' });
    assertJsonError(res, 500);
    assert.equal(res.headers['x-origin'], undefined, 'none of the origin\'s fields go with the error');
    res = await h1({ port, path: '/fnbroken?rboom=1' });
    assertJsonError(res, 500);
    assert.equal(res.headers['x-fn'], undefined, 'none of the function\'s fields go with the error');
    res = await h1({ port, path: '/lenient/x?boom=1' });
    assert.equal(res.status, 200);
    assert.equal(json(res).url, '/lenient/x?boom=1');
    res = await h1({ port, path: '/lenient/x?rboom=1' });
    assert.equal(res.status, 200);
    res = await h1({ port, path: '/broken/fine' });
    assert.equal(res.status, 200);
  });

  test('edge.purge from a hook purges the cache', async () => {
    const get = () => h1({ port, path: '/cached/p1' });
    await get();
    await poll(async () => /hit/.test((await get()).headers['cache-status']));
    const res = await h1({ port, path: '/purger?purge=p1' });
    assert.equal(res.status, 200);
    assert.match(res.body.toString(), /^purged [1-9]\d* nil$/);
    assert.match((await get()).headers['cache-status'], /fwd=uri-miss/);
  });

  test('a client that leaves while a hook waits: the run is cancelled and the worker carries on', async () => {
    const hung = origin.hanging.size;
    await assert.rejects(h1({ port, path: '/fetch?timeout=5000', headers: { 'x-target': `${origin.url}/hang` }, timeout: 200 }));
    await poll(() => origin.hanging.size > hung);
    for (let i = 0; i < 4; ++i) assert.equal((await h1({ port, path: '/rw/after' })).status, 200);
  });
});

describe('hooks: configuration checks', () => {
  test('SIGHUP reloads hook files; a broken one keeps the old hook running', async () => {
    const dir = tempDir('ep-hooks-hup-');
    fs.mkdirSync(path.join(dir, 'hooks'));
    const file = path.join(dir, 'hooks', 'v.lua');
    const version = (v) => `function on_request(req) return edge.respond(200, { ["x-v"] = "${v}" }, "v${v}") end\n`;
    fs.writeFileSync(file, version(1));
    const edge = await startEdge(`
listen:
  - { address: 127.0.0.1, port: 0 }
lua: { dir: hooks }
hosts:
  "*":
    routes:
      - path: /
        origin: { static: . }
        hooks: { request: hooks/v.lua }
`, { dir });
    const [port] = edge.ports;
    assert.equal((await h1({ port, path: '/' })).headers['x-v'], '1');
    fs.writeFileSync(file, version(2));
    edge.proc.kill('SIGHUP');
    await poll(async () => (await h1({ port, path: '/' })).headers['x-v'] === '2', 5000);
    fs.writeFileSync(file, 'function on_request(req) syntax error here\n');
    edge.proc.kill('SIGHUP');
    await poll(() => /SIGHUP: .*v\.lua.*keep their previous scripts/.test(edge.logs()), 5000);
    for (let i = 0; i < 5; ++i) assert.equal((await h1({ port, path: '/' })).headers['x-v'], '2');
    await edge.stopClean();
  });

  test('a hooks file without its function stops the start and -t, naming the conf line', async () => {
    const dir = tempDir('ep-hooks-bad-');
    fs.mkdirSync(path.join(dir, 'hooks'));
    fs.writeFileSync(path.join(dir, 'hooks', 'empty.lua'), 'local x = 1\n');
    const yaml = `
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { static: . }
        hooks: { request: hooks/empty.lua }
`;
    const file = path.join(dir, 'edge.yaml');
    fs.writeFileSync(file, yaml);
    const r = await runCli(['-t', '-c', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /edge\.yaml:9: route \/: hooks\.request: .*empty\.lua defines no function on_request/);
  });
});

describe('hooks: the response hook on a caching route (before the cache stores the answer)', () => {
  let edge;
  let port;
  let origin;
  const FILE = `
function on_response(req, res)
  local h = res.headers
  h["x-hooked"] = "yes"
  h["x-powered-by"] = nil
  res.headers = h
  if req.path == "/cres/nocache" then res.cacheable = false end
  if req.path == "/cres/short" then res.max_ttl = 1 end
  if req.path == "/cres/ttl0" then res.ttl = 0 end
  if req.path == "/cres/replace" then res.body = "replaced and stored" end
  if req.path == "/cres/fetch" then
    local sub = edge.fetch(req.headers["x-target"])
    h["x-sub"] = sub and tostring(sub.status) or "failed"
    res.headers = h
  end
  if req.path == "/cres/boom" then error("fill hook exploded") end
end
`;
  before(async () => {
    const dir = tempDir('ep-hooks-cache-');
    fs.mkdirSync(path.join(dir, 'hooks'));
    fs.writeFileSync(path.join(dir, 'hooks', 'cres.lua'), FILE);
    fs.writeFileSync(path.join(dir, 'hooks', 'fnc.lua'), 'function handler() return { body = "fn body" } end\n');
    origin = await startOrigin();
    edge = await startEdge(`
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: {} }
lua: { dir: hooks }
hosts:
  "*":
    routes:
      - path: /cres/
        origin: { url: "${origin.url}" }
        cache: { default_ttl: 60s }
        hooks: { response: hooks/cres.lua }
      - path: /fnc
        origin: { function: hooks/fnc.lua }
        cache: { default_ttl: 60s }
        hooks: { response: hooks/cres.lua }
`, { dir });
    [port] = edge.ports;
  });
  after(async () => {
    await edge.stopClean();
    await origin.close();
  });

  const hits = (p) => origin.requests.filter((r) => r.url.startsWith(p)).length;

  test('the hooked answer is what is stored: a hit carries the hook\'s headers without running it again', async () => {
    let res = await h1({ port, path: '/cres/a' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-hooked'], 'yes');
    assert.equal(res.headers['x-powered-by'], undefined);
    await poll(async () => /hit/.test((await h1({ port, path: '/cres/a' })).headers['cache-status']));
    res = await h1({ port, path: '/cres/a' });
    assert.equal(res.headers['x-hooked'], 'yes');
    assert.equal(res.headers['x-powered-by'], undefined);
    assert.equal(hits('/cres/a'), 1);
  });

  test('res.cacheable = false keeps an answer out of the cache; res.max_ttl caps its freshness; res.ttl = 0 stores it stale', async () => {
    for (let i = 0; i < 3; ++i) {
      const res = await h1({ port, path: '/cres/nocache' });
      assert.match(res.headers['cache-status'], /detail=lua/);
    }
    assert.equal(hits('/cres/nocache'), 3);
    await h1({ port, path: '/cres/short' });
    let hit;
    await poll(async () => /hit/.test((hit = await h1({ port, path: '/cres/short' })).headers['cache-status']));
    const ttl = Number(/ttl=(-?\d+)/.exec(hit.headers['cache-status'])[1]);
    assert.ok(ttl <= 1, `ttl=${ttl} despite the 60 s default: max_ttl caps it`);
    await sleep(2100);
    assert.doesNotMatch((await h1({ port, path: '/cres/short' })).headers['cache-status'], /hit/);
    await h1({ port, path: '/cres/ttl0' });
    await sleep(300);
    assert.doesNotMatch((await h1({ port, path: '/cres/ttl0' })).headers['cache-status'], /hit/);
  });

  test('a replaced body is stored; the origin is asked once', async () => {
    const res = await h1({ port, path: '/cres/replace' });
    assert.equal(res.body.toString(), 'replaced and stored');
    await poll(async () => /hit/.test((await h1({ port, path: '/cres/replace' })).headers['cache-status']));
    const hit = await h1({ port, path: '/cres/replace' });
    assert.equal(hit.body.toString(), 'replaced and stored');
    assert.equal(hit.headers['content-length'], String('replaced and stored'.length));
    assert.equal(hits('/cres/replace'), 1);
  });

  test('a hook that waits (edge.fetch) in a fill: 20 concurrent misses, one origin request, every answer hooked', async () => {
    const headers = { 'x-target': `${origin.url}/status/201` };
    const all = await Promise.all(Array.from({ length: 20 }, () => h1({ port, path: '/cres/fetch', headers })));
    for (const res of all) {
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-sub'], '201');
    }
    assert.equal(hits('/cres/fetch'), 1);
  });

  test('a function\'s answer on a caching route goes through the hook before it is stored', async () => {
    const res = await h1({ port, path: '/fnc' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-hooked'], 'yes');
    assert.equal(res.body.toString(), 'fn body');
    await poll(async () => /hit/.test((await h1({ port, path: '/fnc' })).headers['cache-status']));
  });

  test('a failing hook in a fill answers 500 (JSON error) and nothing is stored', async () => {
    const res = await h1({ port, path: '/cres/boom' });
    assertJsonError(res, 500); // as on routes without cache
    await poll(() => /response hook .*cres\.lua failed: .*fill hook exploded/.test(edge.logs()));
    await h1({ port, path: '/cres/boom' });
    assert.equal(hits('/cres/boom'), 2);
  });
});
