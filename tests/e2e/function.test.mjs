// Lua functions as origins (origin: { function: FILE }): the API Gateway proxy-integration event, the answer, edge.*,
// errors and limits (502, the worker carries on), the sandbox, and a function behind the gateway (claims, key id).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertJsonError, h1, h2, json, killAll, poll, raw, runCli, startEdge, tempDir } from './lib.mjs';

after(killAll);

const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const KEY = 'function-test-key-0001';

const FILES = {
  'hello.lua': `
function handler(event, context)
  local name = event.pathParameters and event.pathParameters.name or "world"
  return { statusCode = 200, headers = { ["Content-Type"] = "text/plain" }, body = "hello " .. name }
end
`,
  'echo.lua': `
function handler(event, context)
  return {
    statusCode = 200,
    headers = { ["content-type"] = "application/json" },
    body = edge.json.encode({ event = event, context = { functionName = context.functionName,
                                                         awsRequestId = context.awsRequestId,
                                                         remaining = context.getRemainingTimeInMillis() } }),
  }
end
`,
  'lazy.lua': `
local kept -- an event kept from an earlier request (per VM: the test keeps one connection, so one thread)
function handler(event)
  local q = event.queryStringParameters or {}
  local out = {}
  if q.step == "keep" then
    kept = event -- its fields made on first read are not read here
    out.raw = rawget(event, "requestContext") == nil
    out.meta = getmetatable(event)
    out.setmt = pcall(setmetatable, event, {})
  elseif q.step == "stale" then
    out.stale_rc = kept.requestContext == nil
    out.stale_mvh = kept.multiValueHeaders == nil
    out.stale_method = kept.httpMethod
    out.now_ip = event.requestContext.identity.sourceIp
  elseif q.step == "pairs" then
    local keys = {}
    for k in pairs(event) do keys[#keys + 1] = k end
    table.sort(keys)
    out.keys = keys
  elseif q.step == "iter" then
    local f = pairs(event)
    out.bad = select(2, pcall(f, 42)) -- the iterator refuses what is not a table
  elseif q.step == "co" then
    out.co_ip = coroutine.wrap(function() return event.requestContext.identity.sourceIp end)()
  elseif q.step == "assign" then
    event.requestContext = { mine = true }
    out.mine = event.requestContext.mine
    out.mvq = event.multiValueQueryStringParameters.step
  end
  return { statusCode = 200, headers = { ["content-type"] = "application/json" }, body = edge.json.encode(out) }
end
`,
  'shapes.lua': `
function handler(event)
  local q = event.queryStringParameters or {}
  if q.kind == "b64" then
    return { statusCode = 201, isBase64Encoded = true, body = edge.base64.encode("\\0\\1\\2binary") }
  elseif q.kind == "multi" then
    return { statusCode = 200, multiValueHeaders = { ["x-multi"] = { "a", "b" } }, headers = { ["x-one"] = 1 }, body = "m" }
  elseif q.kind == "status" then
    return { statusCode = 418, body = "teapot" }
  elseif q.kind == "log" then
    edge.log("hello from lua", 42)
    return { body = "logged" }
  elseif q.kind == "crypto" then
    return { body = edge.sha256("abc") .. " " .. edge.hmac_sha256("key", "The quick brown fox jumps over the lazy dog") }
  end
  return { body = "default" }
end
`,
  'cached.lua': `
function handler(event, context)
  local q = event.queryStringParameters or {}
  if q.fail then error("cached route failure") end
  return { headers = { ["cache-control"] = q.cc or "max-age=60" },
           body = event.httpMethod .. " " .. event.path .. " by " .. context.awsRequestId }
end
`,
  'bad.lua': `
local function boom() error("kaboom") end
function handler(event)
  local q = event.queryStringParameters or {}
  if q.what == "error" then boom()
  elseif q.what == "loop" then while true do end
  elseif q.what == "memory" then local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1048576) .. i end
  elseif q.what == "global" then leaked = 1
  elseif q.what == "recursion" then local function f(n) return f(n + 1) + 1 end return { body = tostring(f(1)) }
  elseif q.what == "execute" then return { body = tostring(os.execute("touch /tmp/pwned")) }
  elseif q.what == "io" then return { body = tostring(io.open("/etc/passwd")) }
  elseif q.what == "require" then return { body = tostring(require("/etc/passwd")) }
  elseif q.what == "bytecode" then return { body = tostring(assert(load("\\27Lua\\84\\0", "x", "b"))()) }
  elseif q.what == "debug" then return { body = tostring(debug.getregistry()) }
  elseif q.what == "badstatus" then return { statusCode = 99 }
  elseif q.what == "notatable" then return "hello"
  elseif q.what == "splitting" then return { headers = { ["x-a"] = "1\\r\\nset-cookie: evil=1" }, body = "x" }
  end
  return { body = "fine " .. tostring(leaked) }
end
`,
};

function writeFiles(dir, files) {
  fs.mkdirSync(path.join(dir, 'fn'), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'fn', name), text);
}

function conf(extra = '') {
  return `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: {} }
lua: { dir: fn, cpu_limit: 100ms, memory_limit: 32MiB, stage: beta, variables: { color: blue } }
plans:
  p: { rate: 1000/s }
keys:
  - { name: fnkey, plan: p, sha256: ${sha(KEY)} }
hosts:
  "*":
    routes:
      - path: /hello/{name}
        origin: { function: fn/hello.lua }
      - path: /echo/{a}/{rest+}
        origin: { function: fn/echo.lua }
      - path: /keyed/echo
        origin: { function: fn/echo.lua }
        auth: api_key
      - path: /shapes
        origin: { function: fn/shapes.lua }
      - path: /lazy
        origin: { function: fn/lazy.lua }
      - path: /bad
        origin: { function: fn/bad.lua }
      - path: /cached/
        origin: { function: fn/cached.lua }
        cache: {}
${extra}`;
}

describe('functions', () => {
  let edge;
  let port;
  let tlsPort;
  before(async () => {
    const dir = tempDir('ep-fn-');
    writeFiles(dir, FILES);
    edge = await startEdge(conf(), { dir });
    [port, tlsPort] = edge.ports;
  });
  after(async () => {
    await edge.stopClean();
  });

  test('the event\'s multi-value maps and requestContext are made on first read: pairs and JSON see them, a kept event does not reach a gone request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // one connection: one thread, one VM
    try {
      const keep = json(await h1({ port, path: '/lazy?step=keep', agent }));
      assert.deepEqual(keep, { raw: true, meta: false, setmt: false });
      const stale = json(await h1({ port, path: '/lazy?step=stale', agent }));
      assert.deepEqual(stale, { stale_rc: true, stale_mvh: true, stale_method: 'GET', now_ip: '127.0.0.1' });
      const pairs = json(await h1({ port, path: '/lazy?step=pairs', agent }));
      assert.deepEqual(pairs.keys, ['headers', 'httpMethod', 'isBase64Encoded', 'multiValueHeaders', 'multiValueQueryStringParameters',
        'path', 'queryStringParameters', 'requestContext', 'resource', 'stageVariables']);
      assert.deepEqual(json(await h1({ port, path: '/lazy?step=co', agent })), { co_ip: '127.0.0.1' }); // in a script's coroutine
      assert.match(json(await h1({ port, path: '/lazy?step=iter', agent })).bad, /table expected, got number/);
      const assign = json(await h1({ port, path: '/lazy?step=assign', agent }));
      assert.deepEqual(assign, { mine: true, mvq: ['assign'] });
    } finally {
      agent.destroy();
    }
  });

  test('a hello function answers with its status, headers and body (HTTP/1.1 and HTTP/2)', async () => {
    let r = await h1({ port, path: '/hello/bob' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.body.toString(), 'hello bob');
    assert.match(r.headers['x-request-id'], /^[0-9a-f]{32}$/);
    r = await h2({ port: tlsPort, path: '/hello/alice' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello alice');
  });

  test('HEAD gets the length and no body, on a kept-alive connection that then serves a GET', async () => {
    const text = 'HEAD /hello/bob HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/eve HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const out = (await raw(port, text)).raw.toString('latin1');
    const heads = out.split('HTTP/1.1 200 OK');
    assert.equal(heads.length, 3, out);
    assert.match(heads[1], /content-length: 9\r\n/i);
    assert.ok(!heads[1].includes('hello bob'), `HEAD carried a body: ${out}`);
    assert.ok(heads[2].endsWith('hello eve'), out);
  });

  test('the event has the Lambda proxy-integration fields', async () => {
    const body = JSON.stringify({ x: 1 });
    const r = await h1({
      port,
      path: '/echo/one/two/three?a=1&b=x%20y&a=2&plus=a+b',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'v', 'x-request-id': 'req-fn-1' },
      body,
    });
    assert.equal(r.status, 200, r.body.toString());
    const { event, context } = json(r);
    assert.equal(event.httpMethod, 'POST');
    assert.equal(event.path, '/echo/one/two/three');
    assert.equal(event.resource, '/echo/{a}/{rest+}');
    assert.deepEqual(event.pathParameters, { a: 'one', rest: 'two/three' });
    assert.deepEqual(event.queryStringParameters, { a: '2', b: 'x y', plus: 'a b' });
    assert.deepEqual(event.multiValueQueryStringParameters, { a: ['1', '2'], b: ['x y'], plus: ['a b'] });
    assert.equal(event.headers['x-custom'], 'v');
    assert.equal(event.headers['content-type'], 'application/json');
    assert.deepEqual(event.multiValueHeaders['x-custom'], ['v']);
    assert.deepEqual(event.stageVariables, { color: 'blue' });
    assert.equal(event.body, body);
    assert.equal(event.isBase64Encoded, false);
    assert.equal(event.requestContext.requestId, 'req-fn-1');
    assert.equal(event.requestContext.stage, 'beta');
    assert.equal(event.requestContext.identity.sourceIp, '127.0.0.1');
    assert.equal(event.requestContext.httpMethod, 'POST');
    assert.equal(event.requestContext.resourcePath, '/echo/{a}/{rest+}');
    assert.equal(context.functionName, 'echo');
    assert.equal(context.awsRequestId, 'req-fn-1');
    assert.ok(context.remaining > 0 && context.remaining <= 100, `remaining ${context.remaining}`);
  });

  test('a binary body comes base64-encoded; a GET without query has null maps', async () => {
    const bin = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    let r = await h1({ port, path: '/echo/b/c', method: 'PUT', body: bin });
    let { event } = json(r);
    assert.equal(event.isBase64Encoded, true);
    assert.equal(Buffer.from(event.body, 'base64').toString('hex'), bin.toString('hex'));
    r = await h1({ port, path: '/echo/b/c' });
    ({ event } = json(r));
    assert.equal(event.queryStringParameters, undefined);
    assert.equal(event.body, undefined);
  });

  test('behind an API key: the event names the key; without it, 403 before the function', async () => {
    assertJsonError(await h1({ port, path: '/keyed/echo' }), 403);
    const r = await h1({ port, path: '/keyed/echo', headers: { 'x-api-key': KEY } });
    assert.equal(r.status, 200);
    assert.equal(json(r).event.requestContext.authorizer.apiKeyId, 'fnkey');
    assert.match(r.headers.ratelimit, /"key";r=\d+/);
  });

  test('answers: base64 bodies, multi-value headers, any status, edge.log, edge.sha256 and hmac', async () => {
    let r = await h1({ port, path: '/shapes?kind=b64' });
    assert.equal(r.status, 201);
    assert.deepEqual([...r.body], [0, 1, 2, ...Buffer.from('binary')]);
    r = await h1({ port, path: '/shapes?kind=multi' });
    assert.equal(r.headers['x-multi'], 'a, b');
    assert.equal(r.headers['x-one'], '1');
    r = await h1({ port, path: '/shapes?kind=status' });
    assert.equal(r.status, 418);
    assert.equal(r.body.toString(), 'teapot', 'a function\'s own error status keeps its body');
    r = await h1({ port, path: '/shapes?kind=log', headers: { 'x-request-id': 'log-req-7' } });
    assert.equal(r.body.toString(), 'logged');
    await poll(() => /lua \[log-req-7\]: hello from lua 42/.test(edge.logs()), 3000);
    assert.match(edge.logs(), /lua \[log-req-7\]: hello from lua 42/);
    r = await h1({ port, path: '/shapes?kind=crypto' });
    assert.equal(
      r.body.toString(),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    );
  });

  // [what, expected log text]: each fails that request only (502 JSON), the next one is served
  const failures = [
    ['error', /bad\.lua:2: kaboom[\s\S]*stack traceback/],
    ['loop', /ran longer than 100 ms/],
    ['memory', /not enough memory/],
    ['global', /assignment to global 'leaked'/],
    ['recursion', /stack overflow|not enough memory|ran longer than/],
    ['execute', /execute/],
    ['io', /io/],
    ['require', /require/],
    ['bytecode', /binary|attempt to load/],
    ['debug', /debug/],
    ['badstatus', /statusCode/],
    ['notatable', /table/],
    ['splitting', /header/],
  ];
  for (const [what, logged] of failures) {
    test(`a function that fails (${what}) gets 502 and a log line; the next request is served`, async () => {
      const id = `fail-${what}`;
      const t0 = Date.now();
      const r = await h1({ port, path: `/bad?what=${what}`, headers: { 'x-request-id': id } });
      assertJsonError(r, 502);
      assert.equal(json(r).message, 'The function failed');
      assert.ok(Date.now() - t0 < 5000, 'the limit stopped it');
      const find = () => edge.logs().split('\n').find((l) => l.includes(`[${id}] function`));
      await poll(() => find() !== undefined, 3000); // the error log is read from a pipe: it may come after the answer
      const line = find();
      assert.ok(line, `no log line for ${id}:\n${edge.logs().slice(-2000)}`);
      assert.match(edge.logs().slice(edge.logs().indexOf(line)), logged);
      const ok = await h1({ port, path: '/bad' });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), 'fine nil', 'nothing leaked into the next request');
    });
  }
  test('os.execute did not run', () => {
    assert.equal(fs.existsSync('/tmp/pwned'), false);
  });

  test('behind the cache: a hit does not run the function; no-store is not kept; a POST invalidates', async () => {
    const get = (p, headers = {}) => h1({ port, path: p, headers });
    let a = await get('/cached/a');
    assert.equal(a.status, 200);
    assert.match(a.headers['cache-status'], /fwd=uri-miss/);
    const b = await get('/cached/a');
    assert.match(b.headers['cache-status'], /hit/);
    assert.equal(b.body.toString(), a.body.toString(), 'the same answer: the function did not run again');
    assert.ok(Number(b.headers.age) >= 0);
    // HTTP/2 hits the same object
    const c = await h2({ port: tlsPort, path: '/cached/a' });
    assert.match(c.headers['cache-status'], /fwd=uri-miss|hit/);
    // no-store: every request runs the function
    const n1 = await get('/cached/n?cc=no-store');
    const n2 = await get('/cached/n?cc=no-store');
    assert.notEqual(n1.body.toString(), n2.body.toString());
    // a POST goes to the function and invalidates the URL
    const p = await h1({ port, path: '/cached/a', method: 'POST', body: 'x' });
    assert.equal(p.status, 200);
    assert.match(p.body.toString(), /^POST \/cached\/a by /);
    // the store commits the invalidation on its writer thread: soon, not at once
    await poll(async () => /fwd=uri-miss/.test((a = await get('/cached/a')).headers['cache-status']), 3000);
    assert.match(a.headers['cache-status'], /fwd=uri-miss/);
    assert.notEqual(a.body.toString(), b.body.toString());
  });

  test('behind the cache: 50 concurrent misses over 2 threads run the function once', async () => {
    const url = `/cached/burst-${Date.now()}`;
    const rs = await Promise.all(Array.from({ length: 50 }, () => h1({ port, path: url })));
    const bodies = new Set(rs.map((r) => r.body.toString()));
    assert.equal(bodies.size, 1, [...bodies].join('\n'));
    assert.ok(rs.every((r) => r.status === 200));
  });

  test('behind the cache: a failing function gets 502 and nothing is stored', async () => {
    const id = 'cached-fail';
    const r = await h1({ port, path: '/cached/f?fail=1', headers: { 'x-request-id': id } });
    assertJsonError(r, 502);
    await poll(() => edge.logs().includes(`[${id}] function`), 3000);
    assert.match(edge.logs(), /cached route failure/);
    const again = await h1({ port, path: '/cached/f?fail=1' });
    assertJsonError(again, 502);
  });

  test('100 concurrent calls over 2 threads all answer', async () => {
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => h1({ port, path: `/hello/n${i}` })));
    rs.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `hello n${i}`);
    });
  });
});

describe('reloading function files', () => {
  test('SIGHUP under load: new scripts take over with no failed request; a broken file keeps the old ones', async () => {
    const dir = tempDir('ep-fn-hup-');
    writeFiles(dir, FILES);
    const edge = await startEdge(conf(), { dir });
    const [port] = edge.ports;
    const hello = path.join(dir, 'fn', 'hello.lua');
    let stop = false;
    const statuses = [];
    const load = (async () => {
      while (!stop) {
        const rs = await Promise.all(Array.from({ length: 8 }, () => h1({ port, path: '/hello/x' })));
        for (const r of rs) statuses.push(r.status);
      }
    })();
    try {
      fs.writeFileSync(hello, 'function handler(e) return { body = "v2 " .. e.pathParameters.name } end\n');
      edge.proc.kill('SIGHUP');
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        const rs = await Promise.all([h1({ port, path: '/hello/a' }), h1({ port, path: '/hello/b' })]);
        ok = rs.every((r) => r.body.toString().startsWith('v2 '));
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(ok, 'both threads serve the new script');
      assert.match(edge.logs(), /SIGHUP: \d+ Lua files reloaded/);
      fs.writeFileSync(hello, 'function handler(e) return { body = "v3" \nend\n');
      edge.proc.kill('SIGHUP');
      for (let i = 0; i < 100 && !/keep their previous scripts/.test(edge.logs()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(edge.logs(), /edge\.yaml:15: route \/hello\/\{name\}: origin\.function: .*hello\.lua:2:.*keep their previous scripts/);
      for (let i = 0; i < 10; i++) assert.equal((await h1({ port, path: '/hello/c' })).body.toString(), 'v2 c');
    } finally {
      stop = true;
      await load;
    }
    assert.ok(statuses.length > 50, `load ran: ${statuses.length}`);
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed during the reloads');
    await edge.stopClean();
  });
});

describe('signals', () => {
  // The store writers' threads start before the server's: they must block the signals too, or a SIGHUP that comes
  // while the main thread is busy (reloading) is handed to one of them, and kills the process (found by this suite).
  test('SIGHUPs in a burst, while the first reload runs, never kill the server', async () => {
    const dir = tempDir('ep-fn-burst-');
    // a file whose top level takes a while, so that each reload keeps the main thread busy (well under the conf's 100 ms
    // cpu_limit even on the sanitizer build of a loaded machine: the load would fail otherwise)
    writeFiles(dir, { ...FILES, 'slow.lua': 'local t = {}\nfor i = 1, 100000 do t[i] = i end\nfunction handler() return { body = "slow" } end\n' });
    const edge = await startEdge(conf('      - path: /slow\n        origin: { function: fn/slow.lua }\n'), { dir });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 6; i++) edge.proc.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(edge.exitSignal, undefined, `edgeproxy died of ${edge.exitSignal}`);
      assert.equal((await h1({ port: edge.ports[0], path: '/hello/burst' })).body.toString(), 'hello burst');
    }
    await edge.stopClean();
  });
});

describe('function files at start', () => {
  test('a syntax error stops the start (and edgeproxy -t) naming the conf line and the script line', async () => {
    const dir = tempDir('ep-fn-bad-');
    writeFiles(dir, { ...FILES, 'hello.lua': 'function handler(event)\n  return { body = "x" \nend\n' });
    const file = path.join(dir, 'edge.yaml');
    fs.writeFileSync(file, conf());
    for (const args of [['-c', file], ['-t', '-c', file]]) {
      const r = await runCli(args, { timeout: 15000 });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`edge\\.yaml:15: route /hello/\\{name\\}: origin\\.function: .*hello\\.lua:3:`));
    }
  });
});
