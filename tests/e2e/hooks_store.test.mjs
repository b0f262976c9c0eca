// edge.store: the item store from Lua functions and hooks, against the real binary. Single-item operations, Query,
// Scan and transactions from a function; a request hook that answers from the store; failures as (nil, err); an ADD
// counter under 100 concurrent requests; items written from Lua read by the AWS SDK and the other way round; and a
// client that leaves while its run's write is in flight (the write is kept, the run is not resumed, nothing crashes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import http2 from 'node:http2';
import { CreateTableCommand, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { REPO, h1, h2connect, killAll, poll, sleep, startEdge, tempDir } from './lib.mjs';
import { ddbClient } from './dynamo.mjs';

after(killAll);

// desc(v): a canonical text of a Lua value, with the Lua type of each number and the kind of each set or binary value.
const DESC = `
local function desc(v)
  if v == edge.null then return 'null' end
  local t = type(v)
  if t == 'number' then return math.type(v) == 'integer' and ('int:' .. v) or ('float:' .. string.format('%.17g', v)) end
  if t == 'string' then return 's:' .. v end
  if t ~= 'table' then return tostring(v) end
  local mt, parts = getmetatable(v), {}
  if mt == 'edge.store.binary' then return 'bin:' .. edge.base64.encode(v.value) end
  if mt == 'edge.store.set' then
    for i, e in ipairs(v) do parts[i] = desc(e) end
    table.sort(parts)
    return 'set{' .. table.concat(parts, ',') .. '}'
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. desc(v[k]) end
  return '{' .. table.concat(parts, ',') .. '}'
end
`;

const FILES = {
  'fn.lua': `${DESC}
local S = edge.store
local actions = {}

function actions.crud()
  local out = {}
  assert(S.put('items', {pk = 'p', sk = 1, name = 'one', tags = S.set{'a', 'b'}, n = 10}))
  assert(S.put('items', {pk = 'p', sk = 2, name = 'two'}))
  assert(S.put('items', {pk = 'p', sk = 3, name = 'three'}))
  out.got = desc(S.get('items', {pk = 'p', sk = 1}))
  out.missing = select('#', S.get('items', {pk = 'p', sk = 99})) == 1 and S.get('items', {pk = 'p', sk = 99}) == nil
  out.updated = desc(S.update('items', {pk = 'p', sk = 1}, {update = 'SET #n = :v ADD n :inc', names = {['#n'] = 'name'},
                                                          values = {[':v'] = 'uno', [':inc'] = 5}, return_values = 'ALL_NEW'}))
  out.deleted = desc(S.delete('items', {pk = 'p', sk = 3}, {return_values = 'ALL_OLD'}))
  out.gone = S.get('items', {pk = 'p', sk = 3}) == nil
  local page = S.query('items', {key_condition = 'pk = :p AND sk >= :s', values = {[':p'] = 'p', [':s'] = 1}, forward = false})
  out.query = {count = page.count, sks = {}}
  for i, it in ipairs(page.items) do out.query.sks[i] = it.sk end
  local p1 = S.query('items', {key_condition = 'pk = :p', values = {[':p'] = 'p'}, limit = 1})
  out.last_key = desc(p1.last_key)
  local p2 = S.query('items', {key_condition = 'pk = :p', values = {[':p'] = 'p'}, start_key = p1.last_key})
  out.next_sk = p2.items[1].sk
  out.tx = S.transact({
    {put = {table = 'items', item = {pk = 'q', sk = 1}}},
    {update = {table = 'items', key = {pk = 'p', sk = 2}, update = 'SET done = :t', values = {[':t'] = true}}},
    {check = {table = 'items', key = {pk = 'p', sk = 1}, condition = 'attribute_exists(pk)'}},
  })
  out.after_tx = S.get('items', {pk = 'p', sk = 2}).done
  local ok, err = S.transact({
    {put = {table = 'items', item = {pk = 'q', sk = 1}, condition = 'attribute_not_exists(pk)'}},
    {delete = {table = 'items', key = {pk = 'p', sk = 2}}},
  })
  out.tx_fail = {ok = tostring(ok), code = err.code, reasons = {err.reasons[1].code, err.reasons[2].code}}
  out.kept = S.get('items', {pk = 'p', sk = 2}) ~= nil
  local all = S.scan('items', {filter = 'attribute_exists(#n)', names = {['#n'] = 'name'}})
  out.scan = {count = all.count, scanned = all.scanned_count}
  return out
end

function actions.cond()
  assert(S.put('items', {pk = 'c', sk = 1}))
  local ok, err = S.put('items', {pk = 'c', sk = 1, x = 1}, {condition = 'attribute_not_exists(pk)',
                                                             return_values_on_condition_check_failure = 'ALL_OLD'})
  local missing, err2 = S.get('no_such_table', {pk = 'x'})
  return {ok = tostring(ok), code = err.code, message = err.message, status = err.status, old = desc(err.item),
          missing = tostring(missing), code2 = err2.code}
end

function actions.many()
  local found = 0
  for i = 1, 5000 do
    if S.get('items', {pk = 'p', sk = 1 + i % 2}) then found = found + 1 end
  end
  return {found = found}
end

function actions.types()
  assert(S.put('items', {pk = 'lua', sk = 0, s = 'h\\195\\169', i = 42, big = math.maxinteger, f = 1.5, t = true,
                         n = edge.null, b = S.binary('\\0\\1\\2'), ss = S.set{'x', 'y'}, ns = S.set{1, 2.5},
                         bs = S.set{S.binary('\\255')}, l = {1, 'a', {true}}, m = {k = {v = 'w'}},
                         el = S.list(), em = {}}))
  return {written = true}
end

-- an item read and written back keeps its empty list a list (and its empty map a map)
function actions.rewrite()
  local it = S.get('items', {pk = 'lua', sk = 0})
  it.sk = 1
  assert(S.put('items', it))
  return {written = getmetatable(it.el)}
end

function actions.describe(event)
  return {desc = desc(S.get('items', {pk = event.queryStringParameters.pk, sk = 0}))}
end

function handler(event)
  local out = actions[event.pathParameters.action](event)
  return {statusCode = 200, headers = {['content-type'] = 'application/json'}, body = edge.json.encode(out)}
end
`,
  'counter.lua': `
function handler(event)
  local r, err = edge.store.update('counters', {id = 'hits'}, {update = 'ADD n :one', values = {[':one'] = 1},
                                                             return_values = 'UPDATED_NEW'})
  if not r then return {statusCode = 500, body = err.code .. ': ' .. err.message} end
  return {statusCode = 200, body = tostring(r.n)}
end
`,
  'writer.lua': `
function handler(event)
  local run = event.queryStringParameters.run
  for i = 1, 100000 do
    edge.log('write ' .. run .. ' ' .. i)
    assert(edge.store.put('log', {pk = run, seq = i}))
  end
  edge.log('finished ' .. run)
  return {body = 'done'}
end
`,
  // the example request hook, as shipped
  'redirects.lua': fs.readFileSync(path.join(REPO, 'examples', 'hooks', 'redirects.lua'), 'utf8'),
  'fallback.lua': `
function handler(event) return {statusCode = 200, body = 'fallback ' .. event.path} end
`,
};

function conf() {
  return `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: {} }
lua: { dir: lua, cpu_limit: 2s }
hosts:
  "*":
    routes:
      - path: /
        origin: { store: dynamodb }
      - path: /fn/{action}
        origin: { function: lua/fn.lua }
      - path: /counter
        origin: { function: lua/counter.lua }
      - path: /writer
        origin: { function: lua/writer.lua }
      - path: /go/
        origin: { function: lua/fallback.lua }
        hooks: { request: lua/redirects.lua }
`;
}

const TABLES = [
  { name: 'items', keys: [['pk', 'S', 'HASH'], ['sk', 'N', 'RANGE']] },
  { name: 'counters', keys: [['id', 'S', 'HASH']] },
  { name: 'redirects', keys: [['path', 'S', 'HASH']] },
  { name: 'log', keys: [['pk', 'S', 'HASH'], ['seq', 'N', 'RANGE']] },
];

describe('edge.store (Lua and the item store)', () => {
  let edge;
  let port;
  let tlsPort;
  let ddb;
  let doc;
  before(async () => {
    const dir = tempDir('ep-lstore-');
    fs.mkdirSync(path.join(dir, 'lua'));
    for (const [name, text] of Object.entries(FILES)) fs.writeFileSync(path.join(dir, 'lua', name), text);
    edge = await startEdge(conf(), { dir });
    [port, tlsPort] = edge.ports;
    ddb = ddbClient(port);
    doc = DynamoDBDocumentClient.from(ddb);
    for (const t of TABLES) {
      await ddb.send(new CreateTableCommand({
        TableName: t.name,
        KeySchema: t.keys.map(([n, , k]) => ({ AttributeName: n, KeyType: k })),
        AttributeDefinitions: t.keys.map(([n, ty]) => ({ AttributeName: n, AttributeType: ty })),
        BillingMode: 'PAY_PER_REQUEST',
      }));
    }
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  const call = async (action, query = '') => {
    const res = await h1({ port, path: `/fn/${action}${query}` });
    assert.equal(res.status, 200, res.body.toString());
    return JSON.parse(res.body.toString());
  };

  test('a function puts, gets, updates, deletes, queries, scans and transacts', async () => {
    const out = await call('crud');
    assert.equal(out.got, '{n=int:10,name=s:one,pk=s:p,sk=int:1,tags=set{s:a,s:b}}');
    assert.equal(out.missing, true, 'a missing item is a single nil');
    assert.equal(out.updated, '{n=int:15,name=s:uno,pk=s:p,sk=int:1,tags=set{s:a,s:b}}');
    assert.equal(out.deleted, '{name=s:three,pk=s:p,sk=int:3}');
    assert.equal(out.gone, true);
    assert.deepEqual(out.query, { count: 2, sks: [2, 1] });
    assert.equal(out.last_key, '{pk=s:p,sk=int:1}');
    assert.equal(out.next_sk, 2);
    assert.equal(out.tx, true);
    assert.equal(out.after_tx, true);
    assert.deepEqual(out.tx_fail, { ok: 'nil', code: 'TransactionCanceledException', reasons: ['ConditionalCheckFailed', 'None'] });
    assert.equal(out.kept, true, 'a cancelled transaction writes nothing');
    assert.deepEqual(out.scan, { count: 2, scanned: 3 });
    // what the function wrote is what the DynamoDB API sees
    const g = await doc.send(new GetCommand({ TableName: 'items', Key: { pk: 'p', sk: 2 } }));
    assert.deepEqual(g.Item, { pk: 'p', sk: 2, name: 'two', done: true });
  });

  test('5000 reads in one run: each is answered at once, and the run goes on in a loop, not a recursion', async () => {
    assert.deepEqual(await call('many'), { found: 5000 });
  });

  test('a failed condition is (nil, err) with DynamoDB\'s code; so is a missing table', async () => {
    const out = await call('cond');
    assert.equal(out.ok, 'nil');
    assert.equal(out.code, 'ConditionalCheckFailedException');
    assert.equal(out.message, 'The conditional request failed');
    assert.equal(out.status, 400);
    assert.equal(out.old, '{pk=s:c,sk=int:1}', 'return_values_on_condition_check_failure gives the item');
    assert.equal(out.missing, 'nil');
    assert.equal(out.code2, 'ResourceNotFoundException');
  });

  test('a request hook (examples/hooks/redirects.lua) answers from the store or lets the request go on', async () => {
    await doc.send(new PutCommand({ TableName: 'redirects', Item: { path: '/go/old', status: 301, location: '/go/new' } }));
    let res = await h1({ port, path: '/go/old' });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, '/go/new');
    assert.equal(res.headers['cache-control'], 'max-age=300');
    res = await h1({ port, path: '/go/other' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'fallback /go/other');
  });

  test('an ADD counter under 100 concurrent requests ends at exactly 100, each request seeing its own value', async () => {
    const res = await Promise.all(Array.from({ length: 100 }, () => h1({ port, path: '/counter' })));
    for (const r of res) assert.equal(r.status, 200, r.body.toString());
    const seen = res.map((r) => Number(r.body.toString())).sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i + 1));
    const g = await doc.send(new GetCommand({ TableName: 'counters', Key: { id: 'hits' } }));
    assert.equal(g.Item.n, 100);
  });

  test('what Lua writes, the SDK reads with its DynamoDB types', async () => {
    assert.deepEqual(await call('types'), { written: true });
    const { Item: it } = await ddb.send(new GetItemCommand({ TableName: 'items', Key: { pk: { S: 'lua' }, sk: { N: '0' } } }));
    assert.deepEqual(it.s, { S: 'hé' });
    assert.deepEqual(it.i, { N: '42' });
    assert.deepEqual(it.big, { N: '9223372036854775807' });
    assert.deepEqual(it.f, { N: '1.5' });
    assert.deepEqual(it.t, { BOOL: true });
    assert.deepEqual(it.n, { NULL: true });
    assert.deepEqual(Buffer.from(it.b.B), Buffer.from([0, 1, 2]));
    assert.deepEqual(it.ss.SS.sort(), ['x', 'y']);
    assert.deepEqual(it.ns.NS.sort(), ['1', '2.5']);
    assert.deepEqual(it.bs.BS.map((b) => Buffer.from(b)), [Buffer.from([255])]);
    assert.deepEqual(it.l, { L: [{ N: '1' }, { S: 'a' }, { L: [{ BOOL: true }] }] });
    assert.deepEqual(it.m, { M: { k: { M: { v: { S: 'w' } } } } });
    assert.deepEqual(it.el, { L: [] });
    assert.deepEqual(it.em, { M: {} });
    assert.deepEqual(await call('rewrite'), { written: 'edge.store.list' });
    const { Item: again } = await ddb.send(new GetItemCommand({ TableName: 'items', Key: { pk: { S: 'lua' }, sk: { N: '1' } } }));
    assert.deepEqual(again.el, { L: [] });
    assert.deepEqual(again.em, { M: {} });
    assert.deepEqual(again.l, it.l);
    // and Lua reads back what it wrote
    assert.equal((await call('describe', '?pk=lua')).desc,
      '{b=bin:AAEC,big=int:9223372036854775807,bs=set{bin:/w==},el={},em={},f=float:1.5,i=int:42,l={1=int:1,2=s:a,3={1=true}},' +
      'm={k={v=s:w}},n=null,ns=set{float:2.5,int:1},pk=s:lua,s=s:hé,sk=int:0,ss=set{s:x,s:y},t=true}');
  });

  test('what the SDK writes, Lua reads as plain values (DocumentClient marshalling)', async () => {
    await doc.send(new PutCommand({
      TableName: 'items',
      Item: {
        pk: 'sdk', sk: 0, s: 'text', n: 7, f: 2.25, neg: -3, bool: false, nul: null, list: [1, 'a', [2]], map: { k: 'v' },
        set: new Set(['x', 'y']), nset: new Set([1, 2]), bin: new Uint8Array([104, 105]),
      },
    }));
    assert.equal((await call('describe', '?pk=sdk')).desc,
      '{bin=bin:aGk=,bool=false,f=float:2.25,list={1=int:1,2=s:a,3={1=int:2}},map={k=s:v},n=int:7,neg=int:-3,' +
      'nset=set{int:1,int:2},nul=null,pk=s:sdk,s=s:text,set=set{s:x,s:y},sk=int:0}');
  });

  test('a client that leaves while its write is in flight: the write is kept, the run stops, the worker carries on', async () => {
    const logs = () => edge.logs();
    const lastWrite = (run) => {
      const m = [...logs().matchAll(new RegExp(`write ${run} (\\d+)`, 'g'))];
      return m.length ? Number(m[m.length - 1][1]) : 0;
    };
    const items = async (run) => {
      const q = await ddb.send(new QueryCommand({
        TableName: 'log', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: run } }, ConsistentRead: true,
      }));
      return q.Items.map((i) => Number(i.seq.N));
    };
    // HTTP/2: resetting the stream ends the request at once (an HTTP/1.1 connection is not read while its request runs)
    const run = 'h2-reset';
    const session = await h2connect(tlsPort);
    const stream = session.request({ ':method': 'GET', ':path': `/writer?run=${run}` });
    stream.on('error', () => {});
    await poll(() => lastWrite(run) >= 5, 10000);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
    // the run is cancelled while one of its puts waits for the store: no write is logged after a moment
    let last = -1;
    await poll(async () => {
      const now = lastWrite(run);
      const stable = now === last;
      last = now;
      if (!stable) await sleep(300);
      return stable;
    }, 15000);
    assert.doesNotMatch(logs(), new RegExp(`finished ${run}`));
    // every write it asked for, the one in flight at the reset included, is there (reads do not wait for a commit that
    // may still be under way: poll); nothing after it
    const want = Array.from({ length: last }, (_, i) => i + 1);
    await poll(async () => JSON.stringify(await items(run)) === JSON.stringify(want), 10000);
    assert.deepEqual(await items(run), want);
    await sleep(200);
    assert.equal(lastWrite(run), last, 'the cancelled run never resumes');
    // the worker and its VM carry on
    const res = await h1({ port, path: '/counter' });
    assert.equal(res.status, 200);
  });
});
