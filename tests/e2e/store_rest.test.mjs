// The item store's REST origin (origin: { store: rest }): GET/PUT/PATCH/DELETE of plain JSON items under
// /rest/{table}/{key}[/{sortkey}], listing with prefix/limit/cursor, ETags and conditional requests, JSON errors, over
// HTTP/1.1 (node's fetch) and HTTP/2, against tables made, and items read and written, with the AWS SDK through the
// DynamoDB route of the same edgeproxy.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateTableCommand, DeleteTableCommand, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { assertJsonError, h2, json, killAll, raw, sleep, startEdge, tempDir } from './lib.mjs';
import { ddbClient } from './dynamo.mjs';

after(killAll);

const CONF = `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
  - { address: 127.0.0.1, port: 0, tls: {} }
hosts:
  "*":
    routes:
      - path: /
        origin: { store: dynamodb }
      - path: /rest
        origin: { store: rest }
      - path: /limited/
        origin: { store: rest, tables: [users] }
        max_body_size: 1KiB
`;

const ETAG_RE = /^"[0-9a-f]{16}"$/;
const BIG = '12345678901234567890123456789012345678'; // 38 digits: more than a double keeps

const TABLES = [
  ['users', [['id', 'S']]],
  ['scores', [['id', 'N']]],
  ['posts', [['user', 'S'], ['ts', 'S']]],
  ['events', [['user', 'S'], ['n', 'N']]],
  ['blobs', [['k', 'B']]],
];

describe('the REST origin (store: rest)', () => {
  let edge;
  let port;
  let tlsPort;
  let ddb;
  let doc;

  // One request over HTTP/1.1 with node's fetch; the answer as lib.mjs's clients give it ({status, headers, body}).
  async function rest(method, path, { body, headers = {}, on = port } = {}) {
    const res = await fetch(`http://127.0.0.1:${on}${path}`, {
      method,
      headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
  }

  before(async () => {
    edge = await startEdge(CONF, { dir: tempDir('ep-rest-') });
    [port, tlsPort] = edge.ports;
    ddb = ddbClient(port);
    doc = DynamoDBDocumentClient.from(ddb);
    for (const [name, keys] of TABLES) {
      await ddb.send(new CreateTableCommand({
        TableName: name,
        KeySchema: keys.map(([n], i) => ({ AttributeName: n, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
        AttributeDefinitions: keys.map(([n, t]) => ({ AttributeName: n, AttributeType: t })),
        BillingMode: 'PAY_PER_REQUEST',
      }));
    }
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('PUT creates (201) then replaces (200), each with a new ETag; GET and HEAD answer the item with it', async () => {
    let res = await rest('PUT', '/rest/users/u1', { body: { name: 'Ada', age: 36 } });
    assert.equal(res.status, 201);
    assert.match(res.headers.etag, ETAG_RE);
    assert.equal(res.body.length, 0);
    const first = res.headers.etag;
    res = await rest('GET', '/rest/users/u1');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.equal(res.headers.etag, first);
    assert.deepEqual(json(res), { id: 'u1', name: 'Ada', age: 36 });
    res = await rest('PUT', '/rest/users/u1', { body: { name: 'Ada', age: 37 } });
    assert.equal(res.status, 200);
    assert.match(res.headers.etag, ETAG_RE);
    assert.notEqual(res.headers.etag, first, 'a new version has a new ETag');
    const second = res.headers.etag;
    res = await rest('GET', '/rest/users/u1');
    assert.deepEqual(json(res), { id: 'u1', name: 'Ada', age: 37 }, 'PUT replaces the whole item');
    assert.equal(res.headers.etag, second);
    res = await rest('HEAD', '/rest/users/u1');
    assert.equal(res.status, 200);
    assert.equal(res.headers.etag, second);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength('{"id":"u1","name":"Ada","age":37}'));
    assert.equal(res.body.length, 0);
  });

  test('every type round-trips as plain JSON; a 38-digit number keeps its exact text', async () => {
    const text = `{"s":"h\\u00e9llo \\"q\\" \\\\ \\n","big":${BIG},"neg":-0.000000000000000000000000000000000001,` +
      `"exp":1.5e3,"t":true,"f":false,"nul":null,"list":[1,"two",[3,{"four":4}],null,false],` +
      `"map":{"a":{"b":{"c":[${BIG},{"d":"deep"}]}}},"empty":{},"none":[]}`;
    let res = await rest('PUT', '/rest/users/types', { body: text });
    assert.equal(res.status, 201);
    res = await rest('GET', '/rest/users/types');
    assert.equal(res.status, 200);
    const body = res.body.toString();
    assert.ok(body.includes(`"big":${BIG}`), `the number's text is exact: ${body}`);
    assert.ok(body.includes(`"c":[${BIG},`), `nested too: ${body}`);
    assert.ok(body.includes('"neg":-0.000000000000000000000000000000000001'), body); // the store's normalized text
    const got = JSON.parse(body);
    assert.equal(got.s, 'h\u00e9llo "q" \\ \n');
    assert.equal(got.exp, 1500);
    assert.equal(got.t, true);
    assert.equal(got.f, false);
    assert.equal(got.nul, null);
    assert.deepEqual(got.list, [1, 'two', [3, { four: 4 }], null, false]);
    assert.equal(got.map.a.b.c[1].d, 'deep');
    assert.deepEqual(got.empty, {});
    assert.deepEqual(got.none, []);
    // as DynamoDB types, through the SDK
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'types' } } }));
    assert.deepEqual(g.Item.big, { N: BIG });
    assert.deepEqual(g.Item.s, { S: 'h\u00e9llo "q" \\ \n' });
    assert.deepEqual(g.Item.t, { BOOL: true });
    assert.deepEqual(g.Item.nul, { NULL: true });
    assert.deepEqual(g.Item.list.L[2], { L: [{ N: '3' }, { M: { four: { N: '4' } } }] });
    assert.deepEqual(g.Item.map.M.a.M.b.M.c.L[0], { N: BIG });
    // DynamoDB's 32 levels of nesting, read back whole; 33 are the store's 400
    const nest = (n) => `{"a":${'{"a":'.repeat(n - 1)}[${BIG}]${'}'.repeat(n)}`;
    assert.equal((await rest('PUT', '/rest/users/deep', { body: nest(31) })).status, 201);
    res = await rest('GET', '/rest/users/deep');
    assert.equal(res.body.toString(), `{"id":"deep",${nest(31).slice(1)}`);
    const e = assertJsonError(await rest('PUT', '/rest/users/deeper', { body: nest(33) }), 400);
    assert.match(e.message, /[Nn]est/);
  });

  test('sets and binary written through the SDK read as arrays and base64, as lib-dynamodb unmarshalls them', async () => {
    await ddb.send(new PutItemCommand({
      TableName: 'users',
      Item: {
        id: { S: 'sets' }, ss: { SS: ['a', 'b'] }, ns: { NS: ['1', BIG] }, bs: { BS: [Buffer.from([1, 2]), Buffer.from([255])] },
        bin: { B: Buffer.from('hello') },
      },
    }));
    const res = await rest('GET', '/rest/users/sets');
    assert.equal(res.status, 200);
    const got = json(res);
    assert.deepEqual(new Set(got.ss), new Set(['a', 'b']));
    assert.ok(res.body.toString().includes(BIG) && !res.body.toString().includes(`"${BIG}"`), 'NS members are numbers');
    assert.equal(got.ns.length, 2);
    assert.ok(got.ns.includes(1));
    assert.deepEqual(new Set(got.bs), new Set([Buffer.from([1, 2]).toString('base64'), Buffer.from([255]).toString('base64')]));
    assert.equal(got.bin, Buffer.from('hello').toString('base64'));
  });

  test('data written over REST is visible through the SDK, and the SDK\'s over REST', async () => {
    let res = await rest('PUT', '/rest/users/shared', { body: { n: 5, tags: ['x', 'y'], nested: { ok: true } } });
    assert.equal(res.status, 201);
    const g = await doc.send(new GetCommand({ TableName: 'users', Key: { id: 'shared' } }));
    assert.deepEqual(g.Item, { id: 'shared', n: 5, tags: ['x', 'y'], nested: { ok: true } });
    await doc.send(new PutCommand({ TableName: 'users', Item: { id: 'from-sdk', list: [1, { a: 'b' }], flag: false } }));
    res = await rest('GET', '/rest/users/from-sdk');
    assert.equal(res.status, 200);
    assert.deepEqual(json(res), { id: 'from-sdk', list: [1, { a: 'b' }], flag: false });
    const etag = res.headers.etag;
    await doc.send(new PutCommand({ TableName: 'users', Item: { id: 'from-sdk', list: [], flag: true } }));
    res = await rest('GET', '/rest/users/from-sdk');
    assert.notEqual(res.headers.etag, etag, 'an SDK write changes the ETag');
  });

  test('keys: sort keys, N keys, B keys, percent-encoded keys; a key in the body must be the URL\'s', async () => {
    let res = await rest('PUT', '/rest/events/alice/42', { body: { what: 'login' } });
    assert.equal(res.status, 201);
    res = await rest('GET', '/rest/events/alice/42');
    assert.deepEqual(json(res), { user: 'alice', n: 42, what: 'login' });
    let g = await doc.send(new GetCommand({ TableName: 'events', Key: { user: 'alice', n: 42 } }));
    assert.equal(g.Item.what, 'login');
    assert.equal((await rest('GET', '/rest/events/alice/43')).status, 404);
    assertJsonError(await rest('GET', '/rest/events/alice/forty'), 400);
    assertJsonError(await rest('GET', '/rest/events/alice'), 400, 'a missing sort key');
    assertJsonError(await rest('GET', '/rest/users/a/b'), 400, 'a sort key the table does not have');

    res = await rest('PUT', '/rest/scores/-1.50', { body: { v: 1 } });
    assert.equal(res.status, 201);
    g = await ddb.send(new GetItemCommand({ TableName: 'scores', Key: { id: { N: '-1.5' } } }));
    assert.equal(g.Item.v.N, '1');
    assert.equal((await rest('GET', '/rest/scores/-1.5')).status, 200, 'the same number, normalized');
    const bad = assertJsonError(await rest('GET', '/rest/scores/abc'), 400);
    assert.match(bad.message, /number/);

    // "a/b c+é?#%" in the path: every reserved character percent-encoded
    const key = 'a/b c+é?#%';
    res = await rest('PUT', `/rest/users/${encodeURIComponent(key)}`, { body: { v: 'enc' } });
    assert.equal(res.status, 201);
    g = await doc.send(new GetCommand({ TableName: 'users', Key: { id: key } }));
    assert.equal(g.Item.v, 'enc');
    res = await rest('GET', `/rest/users/${encodeURIComponent(key)}`);
    assert.deepEqual(json(res), { id: key, v: 'enc' });

    // B: base64url in the path
    const bin = Buffer.from([0xfb, 0xff, 0x01]);
    res = await rest('PUT', `/rest/blobs/${bin.toString('base64url')}`, { body: { v: 1 } });
    assert.equal(res.status, 201);
    g = await ddb.send(new GetItemCommand({ TableName: 'blobs', Key: { k: { B: bin } } }));
    assert.equal(g.Item.v.N, '1');
    assert.equal(json(await rest('GET', `/rest/blobs/${bin.toString('base64url')}`)).k, bin.toString('base64'));
    assertJsonError(await rest('GET', '/rest/blobs/a'), 400, 'not base64url');

    // the key in the body: the same value is fine, another is refused
    assert.equal((await rest('PUT', '/rest/users/same', { body: { id: 'same', v: 1 } })).status, 201);
    assert.equal((await rest('PUT', '/rest/events/bob/7', { body: { user: 'bob', n: 7 } })).status, 201);
    const e = assertJsonError(await rest('PUT', '/rest/users/same', { body: { id: 'other' } }), 400);
    assert.match(e.message, /key/);
    assertJsonError(await rest('PUT', '/rest/events/bob/7', { body: { n: 8 } }), 400);
    assertJsonError(await rest('PATCH', '/rest/users/same', { body: { id: 'other' } }), 400);
  });

  test('PATCH sets and removes attributes (null), keeps the rest, and answers the new item; 404 when missing', async () => {
    await rest('PUT', '/rest/users/p1', { body: { a: 1, b: 'two', c: [3] } });
    let res = await rest('PATCH', '/rest/users/p1', { body: `{"b": null, "d": {"e": ${BIG}}, "a": 2}` });
    assert.equal(res.status, 200);
    assert.match(res.headers.etag, ETAG_RE);
    assert.ok(res.body.toString().includes(`"e":${BIG}`));
    assert.deepEqual(JSON.parse(res.body.toString().replace(BIG, '0')), { id: 'p1', a: 2, c: [3], d: { e: 0 } });
    const patched = res.headers.etag;
    res = await rest('GET', '/rest/users/p1');
    assert.equal(res.headers.etag, patched, 'the PATCH answer\'s ETag is the item\'s');
    assert.equal(json(res).b, undefined);
    res = await rest('PATCH', '/rest/users/nobody', { body: { a: 1 } });
    assertJsonError(res, 404, 'PATCH does not create');
    assert.equal((await rest('GET', '/rest/users/nobody')).status, 404);
    assertJsonError(await rest('PATCH', '/rest/users/p1', { body: '[1]' }), 400);
  });

  test('DELETE: 204, then 404', async () => {
    await rest('PUT', '/rest/users/d1', { body: { a: 1 } });
    let res = await rest('DELETE', '/rest/users/d1');
    assert.equal(res.status, 204);
    assert.equal(res.body.length, 0);
    assert.equal((await rest('GET', '/rest/users/d1')).status, 404);
    res = await rest('DELETE', '/rest/users/d1');
    assertJsonError(res, 404);
  });

  test('listing a partition (Query): sort-key prefix, limit and cursor over several pages', async () => {
    const want = [];
    for (let i = 0; i < 11; ++i) {
      const ts = `2024-01-${String(i + 10).padStart(2, '0')}`;
      want.push(ts);
      assert.equal((await rest('PUT', `/rest/posts/bob/${ts}`, { body: { i } })).status, 201);
    }
    await rest('PUT', '/rest/posts/bob/2023-12-31', { body: { i: -1 } });
    await rest('PUT', '/rest/posts/carol/2024-01-15', { body: { i: 99 } });
    const got = [];
    let cursor = null;
    let pages = 0;
    do {
      const q = `key=bob&prefix=2024-01&limit=4${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await rest('GET', `/rest/posts?${q}`);
      assert.equal(res.status, 200);
      const page = json(res);
      assert.ok(page.items.length <= 4);
      for (const it of page.items) {
        assert.equal(it.user, 'bob');
        got.push(it.ts);
      }
      if (page.cursor !== null) assert.match(page.cursor, /^[A-Za-z0-9_-]+$/, 'URL-safe');
      cursor = page.cursor;
      ++pages;
    } while (cursor !== null && pages < 10);
    assert.deepEqual(got, want, 'in sort-key order, every item once, only the prefix');
    assert.equal(pages, 3);
    // without a prefix: the whole partition; without a limit: 100
    const all = json(await rest('GET', '/rest/posts?key=bob'));
    assert.equal(all.items.length, 12);
    assert.equal(all.cursor, null);
    assert.deepEqual(json(await rest('GET', '/rest/posts?key=nobody')), { items: [], cursor: null });
  });

  test('listing a table (Scan) over several pages, and with a partition-key prefix', async () => {
    for (let i = 0; i < 7; ++i) await rest('PUT', `/rest/scores/${100 + i}`, { body: { i } });
    const seen = new Set();
    let cursor = null;
    let pages = 0;
    do {
      const res = await rest('GET', `/rest/scores?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      const page = json(res);
      assert.ok(page.items.length <= 3);
      for (const it of page.items) {
        assert.ok(!seen.has(it.id), 'no item twice');
        seen.add(it.id);
      }
      cursor = page.cursor;
      ++pages;
    } while (cursor !== null && pages < 20);
    for (let i = 0; i < 7; ++i) assert.ok(seen.has(100 + i));
    assert.ok(pages >= 3);
    // users whose id begins with "p" (a filter: pages may hold fewer than limit)
    const ids = [];
    cursor = null;
    do {
      const page = json(await rest('GET', `/rest/users?prefix=p&limit=2${cursor ? `&cursor=${cursor}` : ''}`));
      ids.push(...page.items.map((x) => x.id));
      cursor = page.cursor;
    } while (cursor !== null);
    assert.deepEqual(ids, ['p1']);
    assertJsonError(await rest('GET', '/rest/scores?limit=0'), 400);
    assertJsonError(await rest('GET', '/rest/scores?limit=1001'), 400);
    assertJsonError(await rest('GET', '/rest/scores?limit=ten'), 400);
    assertJsonError(await rest('GET', '/rest/scores?cursor=not-a-cursor'), 400);
    assertJsonError(await rest('GET', `/rest/scores?cursor=${Buffer.from('{"id":').toString('base64url')}`), 400);
    assertJsonError(await rest('GET', '/rest/users?key=u1&prefix=x'), 400, 'prefix with key= on a table without sort key');
  });

  test('If-None-Match: * creates only: of two concurrent creates exactly one gets 201, the other 412', async () => {
    for (let round = 0; round < 5; ++round) {
      const results = await Promise.all([0, 1].map((i) => rest('PUT', `/rest/users/race${round}`, {
        body: { by: i }, headers: { 'if-none-match': '*' },
      })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 412], `round ${round}`);
      assertJsonError(results.find((r) => r.status === 412), 412);
    }
    assertJsonError(await rest('PUT', '/rest/users/u1', { body: { x: 1 }, headers: { 'if-none-match': '*' } }), 412);
    assertJsonError(await rest('PUT', '/rest/users/u1', { body: { x: 1 }, headers: { 'if-none-match': '"0123456789abcdef"' } }),
      400, 'If-None-Match on a write takes * only');
  });

  test('If-Match on PUT, PATCH and DELETE: the current ETag passes, a stale one gets 412', async () => {
    let res = await rest('PUT', '/rest/users/m1', { body: { v: 1 } });
    const v1 = res.headers.etag;
    res = await rest('PUT', '/rest/users/m1', { body: { v: 2 }, headers: { 'if-match': v1 } });
    assert.equal(res.status, 200);
    const v2 = res.headers.etag;
    assert.notEqual(v2, v1);
    assertJsonError(await rest('PUT', '/rest/users/m1', { body: { v: 3 }, headers: { 'if-match': v1 } }), 412, 'stale PUT');
    assertJsonError(await rest('PUT', '/rest/users/m1', { body: { v: 3 }, headers: { 'if-match': `W/${v2}` } }), 412,
      'a weak ETag never matches a write');
    assert.equal(json(await rest('GET', '/rest/users/m1')).v, 2, 'a failed precondition changes nothing');
    res = await rest('PATCH', '/rest/users/m1', { body: { w: 1 }, headers: { 'if-match': `"0000000000000000", ${v2}` } });
    assert.equal(res.status, 200, 'one of the listed ETags matches');
    const v3 = res.headers.etag;
    assertJsonError(await rest('PUT', '/rest/users/m1', { body: {}, headers: { 'if-match': `"0000000000000000", ${v2}` } }),
      412, 'several ETags, none current');
    assertJsonError(await rest('PATCH', '/rest/users/m1', { body: { w: 2 }, headers: { 'if-match': v2 } }), 412, 'stale PATCH');
    assertJsonError(await rest('DELETE', '/rest/users/m1', { headers: { 'if-match': v2 } }), 412, 'stale DELETE');
    assert.equal((await rest('GET', '/rest/users/m1')).status, 200);
    assert.equal((await rest('PUT', '/rest/users/m1', { body: { v: 4 }, headers: { 'if-match': '*' } })).status, 200);
    assertJsonError(await rest('PUT', '/rest/users/m-none', { body: { v: 1 }, headers: { 'if-match': '*' } }), 412,
      'If-Match: * replaces only');
    assert.equal((await rest('GET', '/rest/users/m-none')).status, 404);
    const v4 = (await rest('GET', '/rest/users/m1')).headers.etag;
    assert.notEqual(v4, v3);
    assert.equal((await rest('DELETE', '/rest/users/m1', { headers: { 'if-match': v4 } })).status, 204);
    assertJsonError(await rest('DELETE', '/rest/users/m1', { headers: { 'if-match': v4 } }), 412, 'gone: no version matches');
  });

  test('conditional GET: If-None-Match gives 304 with the ETag; a stale one the item; If-Match that fails 412', async () => {
    const { headers } = await rest('PUT', '/rest/users/c1', { body: { v: 1 } });
    let res = await rest('GET', '/rest/users/c1', { headers: { 'if-none-match': headers.etag } });
    assert.equal(res.status, 304);
    assert.equal(res.headers.etag, headers.etag);
    assert.equal(res.body.length, 0);
    res = await rest('GET', '/rest/users/c1', { headers: { 'if-none-match': `"ffffffffffffffff", W/${headers.etag}` } });
    assert.equal(res.status, 304, 'weak comparison');
    res = await rest('GET', '/rest/users/c1', { headers: { 'if-none-match': '*' } });
    assert.equal(res.status, 304);
    await rest('PUT', '/rest/users/c1', { body: { v: 2 } });
    res = await rest('GET', '/rest/users/c1', { headers: { 'if-none-match': headers.etag } });
    assert.equal(res.status, 200);
    assert.equal(json(res).v, 2);
    assertJsonError(await rest('GET', '/rest/users/c1', { headers: { 'if-match': headers.etag } }), 412);
    assert.equal((await rest('GET', '/rest/users/c1', { headers: { 'if-match': res.headers.etag } })).status, 200);
    assertJsonError(await rest('GET', '/rest/users/c1', { headers: { 'if-match': 'nonsense' } }), 400);
  });

  test('errors: each status with its JSON body', async () => {
    let e = assertJsonError(await rest('PUT', '/rest/users/e1', { body: '{"a": 1,}' }), 400, 'invalid JSON');
    assert.match(e.message, /JSON/);
    assertJsonError(await rest('PUT', '/rest/users/e1', { body: '"just a string"' }), 400, 'not an object');
    assertJsonError(await rest('PUT', '/rest/users/e1', { body: '{"a": 01}' }), 400, 'not JSON numbers');
    assertJsonError(await rest('PUT', '/rest/users/e1'), 400, 'no body');
    e = assertJsonError(await rest('PUT', '/rest/users/e1', { body: `{"n": 1${BIG}}` }), 400, '39 digits');
    assert.match(e.message, /38|significant|digits/i, 'the store\'s message');
    e = assertJsonError(await rest('GET', '/rest/nosuchtable/x'), 404);
    assert.match(e.message, /no table nosuchtable/);
    assertJsonError(await rest('GET', '/rest/nosuchtable'), 404);
    assertJsonError(await rest('GET', '/rest/users/nobody-here'), 404);
    assertJsonError(await rest('GET', '/rest'), 404, 'no table in the path');
    assertJsonError(await rest('GET', '/rest/users/a/b/c'), 404, 'too many segments');
    let res = await rest('POST', '/rest/users/x', { body: {} });
    assertJsonError(res, 405);
    assert.equal(res.headers.allow, 'GET, HEAD, PUT, PATCH, DELETE');
    res = await rest('PUT', '/rest/users', { body: {} });
    assertJsonError(res, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
    // the allowlist: another table does not exist there
    assert.equal((await rest('GET', '/limited/users/u1')).status, 200);
    e = assertJsonError(await rest('GET', '/limited/posts?key=bob'), 404);
    assert.match(e.message, /no table posts/);
    assertJsonError(await rest('PUT', '/limited/users/big', { body: { v: 'x'.repeat(2000) } }), 413, 'the route\'s body limit');
    assert.equal((await rest('PUT', '/rest/users/big', { body: { v: 'x'.repeat(2000) } })).status, 201);
    // dot segments are refused (the raw path: fetch would resolve them)
    res = await raw(port, 'GET /rest/users/../users/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body.toString()).message, /segment/);
  });

  test('HTTP/2: the same API', async () => {
    const opts = { port: tlsPort };
    let res = await h2({ ...opts, method: 'PUT', path: '/rest/events/h2/1', body: `{"big":${BIG}}`,
      headers: { 'content-type': 'application/json', 'if-none-match': '*' } });
    assert.equal(res.status, 201);
    assert.match(res.headers.etag, ETAG_RE);
    const etag = res.headers.etag;
    res = await h2({ ...opts, path: '/rest/events/h2/1' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `{"user":"h2","n":1,"big":${BIG}}`);
    res = await h2({ ...opts, path: '/rest/events/h2/1', headers: { 'if-none-match': etag } });
    assert.equal(res.status, 304);
    res = await h2({ ...opts, method: 'PATCH', path: '/rest/events/h2/1', body: '{"x":true}', headers: { 'if-match': etag } });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body.toString()).x, true);
    res = await h2({ ...opts, method: 'PUT', path: '/rest/events/h2/1', body: '{}', headers: { 'if-match': etag } });
    assertJsonError(res, 412);
    res = await h2({ ...opts, path: '/rest/events?key=h2' });
    assert.equal(json(res).items.length, 1);
    res = await h2({ ...opts, method: 'DELETE', path: '/rest/events/h2/1' });
    assert.equal(res.status, 204);
    assertJsonError(await h2({ ...opts, path: '/rest/events/h2/1' }), 404);
  });

  test('a table made again with another key type while the worker remembers the old one: refused, never mistyped', async () => {
    // one worker thread, so that the PUT after the change meets the description the first PUTs left there
    assert.match(CONF, /threads: 2/);
    const one = await startEdge(CONF.replace('threads: 2', 'threads: 1'), { dir: tempDir('ep-rest1-') });
    const c = ddbClient(one.ports[0]);
    const put = async (key, v) => {
      const res = await rest('PUT', `/rest/swap/${key}`, { body: { v }, on: one.ports[0] });
      return { status: res.status, body: res.body.toString() };
    };
    const make = (type) => c.send(new CreateTableCommand({
      TableName: 'swap', BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: type }],
    }));
    try {
      await make('S');
      const remembered = Date.now(); // before the PUT: the worker remembers the description from some time during it
      assert.equal((await put('k0', 1)).status, 201);
      await c.send(new DeleteTableCommand({ TableName: 'swap' }));
      await make('N');
      const res = await put('7', 2);
      if (Date.now() - remembered < 900) {
        // the old description (id S) types the key as a string: the store refuses it for the new schema
        assert.equal(res.status, 400, res.body);
        assert.match(JSON.parse(res.body).message, /key/i);
      } else {
        assert.equal(res.status, 201, res.body); // a slow machine: the description was asked again
      }
      await sleep(1100); // past the second the worker remembers a description
      assert.equal((await put('7', 3)).status, res.status === 201 ? 200 : 201);
      const got = await c.send(new GetItemCommand({ TableName: 'swap', Key: { id: { N: '7' } } }));
      assert.equal(got.Item.v.N, '3');
      const all = await c.send(new ScanCommand({ TableName: 'swap' }));
      assert.deepEqual(all.Items.map((it) => it.id), [{ N: '7' }]);
    } finally {
      c.destroy();
      await one.stopClean();
    }
  });
});
