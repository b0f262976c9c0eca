// The item store benchmark's loader and checker (benchmarks/store.sh), plain DynamoDB JSON requests over node's fetch
// (no SDK), the same against edgeproxy and dynalite.
//
//   node load.mjs load URL ITEMS PARTS PAYLOAD        creates the tables `items` (id S) and `parts` (pk S, sk N), waits
//                                                     for them to be ACTIVE and writes ITEMS items k000000.. into
//                                                     `items` and PARTS partitions p00000.. of 10 items (sk 1..10) into
//                                                     `parts`, with BatchWriteItem in chunks of 25 (8 in flight)
//   node load.mjs verify URL_A URL_B ITEMS PARTS PAYLOAD  both servers must answer the same GetItem (3 keys), Query (one
//                                                     partition, Limit 10), UpdateItem ADD (ALL_NEW) and PutItem
//   node load.mjs rest DDB_URL REST_URL ITEMS          GET REST_URL/items/KEY must be GetItem's item as plain JSON
//
// Every item is about 200 bytes as DynamoDB counts them (names + values): id, name, n, count and a payload string of
// PAYLOAD characters; the wrk scripts (ops.lua) write items of the same shape. Exits non-zero, saying why, on anything
// unexpected.
import assert from 'node:assert/strict';

// A syntactically valid SigV4 Authorization (dynalite wants one; neither server checks the signature by default).
export const AUTH =
  'AWS4-HMAC-SHA256 Credential=AKIDBENCHEXAMPLE/20250101/us-east-1/dynamodb/aws4_request, ' +
  'SignedHeaders=content-type;host;x-amz-date;x-amz-target, ' +
  'Signature=0000000000000000000000000000000000000000000000000000000000000000';
export const AMZ_DATE = '20250101T000000Z';

const key = (i) => `k${String(i).padStart(6, '0')}`;
const part = (p) => `p${String(p).padStart(5, '0')}`;
const payload = (len, i) => (`payload-${i}-`.padEnd(len, 'x')).slice(0, len);

async function ddb(url, op, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${op}`,
      'x-amz-date': AMZ_DATE,
      authorization: AUTH,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status !== 200 || json === undefined)
    throw new Error(`${url} ${op}: ${res.status} ${text.slice(0, 500)}`);
  return json;
}

function item(i, len) {
  return {
    id: { S: key(i) },
    name: { S: `item ${i}` },
    n: { N: String(i) },
    count: { N: '0' },
    payload: { S: payload(len, i) },
  };
}

function partItem(p, sk, len) {
  return { pk: { S: part(p) }, sk: { N: String(sk) }, name: { S: `part ${p} ${sk}` }, payload: { S: payload(len, p) } };
}

async function createTable(url, name, keys) {
  try {
    await ddb(url, 'DeleteTable', { TableName: name });
    for (;;) { // dynalite keeps a table DELETING for a while
      await ddb(url, 'DescribeTable', { TableName: name });
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    if (!/ResourceNotFoundException/.test(e.message)) throw e;
  }
  await ddb(url, 'CreateTable', {
    TableName: name,
    KeySchema: keys.map(([n], i) => ({ AttributeName: n, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
    AttributeDefinitions: keys.map(([n, t]) => ({ AttributeName: n, AttributeType: t })),
    BillingMode: 'PAY_PER_REQUEST',
  });
  for (let i = 0; i < 300; i++) { // dynalite: CREATING for createTableMs
    const d = await ddb(url, 'DescribeTable', { TableName: name });
    if (d.Table.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url}: table ${name} not ACTIVE after 30 s`);
}

async function batchWrite(url, table, items) {
  let req = { [table]: items.map((Item) => ({ PutRequest: { Item } })) };
  for (let tries = 0; Object.keys(req).length !== 0; tries++) {
    if (tries === 10) throw new Error(`${url}: BatchWriteItem left items unprocessed 10 times`);
    const r = await ddb(url, 'BatchWriteItem', { RequestItems: req });
    req = r.UnprocessedItems || {};
  }
}

async function load(url, nItems, nParts, len) {
  await createTable(url, 'items', [['id', 'S']]);
  await createTable(url, 'parts', [['pk', 'S'], ['sk', 'N']]);
  const chunks = [];
  for (let i = 0; i < nItems; i += 25) {
    const c = [];
    for (let j = i; j < Math.min(i + 25, nItems); j++) c.push(item(j, len));
    chunks.push(['items', c]);
  }
  const all = [];
  for (let p = 0; p < nParts; p++) for (let sk = 1; sk <= 10; sk++) all.push(partItem(p, sk, len));
  for (let i = 0; i < all.length; i += 25) chunks.push(['parts', all.slice(i, i + 25)]);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const [table, c] = chunks[next++];
      await batchWrite(url, table, c);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  // spot checks: the last item of each table is there
  const g = await ddb(url, 'GetItem', { TableName: 'items', Key: { id: { S: key(nItems - 1) } } });
  assert.deepEqual(g.Item, item(nItems - 1, len), `${url}: the last item read back differs`);
  const q = await ddb(url, 'Query', {
    TableName: 'parts', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: part(nParts - 1) } },
  });
  assert.equal(q.Count, 10, `${url}: the last partition has ${q.Count} items, not 10`);
  const size = JSON.stringify(item(0, len)).length;
  console.log(`${url}: ${nItems} items (about ${size} bytes of JSON each) and ${nParts} x 10 partition items loaded`);
}

// Objects with their keys sorted, so that two answers compare whatever their servers' member order.
function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
  return v;
}

async function same(urlA, urlB, op, body, pick) {
  const [a, b] = await Promise.all([ddb(urlA, op, body), ddb(urlB, op, body)]);
  assert.deepEqual(sorted(pick(a)), sorted(pick(b)),
    `${op} ${JSON.stringify(body)}: the servers differ:\n${urlA}: ${JSON.stringify(a)}\n${urlB}: ${JSON.stringify(b)}`);
  return pick(a);
}

async function verify(urlA, urlB, nItems, nParts, len) {
  for (const i of [0, Math.floor(nItems / 2), nItems - 1]) {
    const it = await same(urlA, urlB, 'GetItem', { TableName: 'items', Key: { id: { S: key(i) } } }, (r) => r.Item);
    assert.ok(it && it.id.S === key(i), `GetItem ${key(i)}: no item`);
  }
  const p = part(Math.floor(nParts / 2));
  const items = await same(urlA, urlB, 'Query', {
    TableName: 'parts', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: p } }, Limit: 10,
  }, (r) => ({ Items: r.Items, Count: r.Count }));
  assert.equal(items.Count, 10, `Query ${p}: ${items.Count} items`);
  const upd = {
    TableName: 'items', Key: { id: { S: key(1) } }, UpdateExpression: 'ADD #c :one',
    ExpressionAttributeNames: { '#c': 'count' }, ExpressionAttributeValues: { ':one': { N: '1' } }, ReturnValues: 'ALL_NEW',
  };
  await same(urlA, urlB, 'UpdateItem', upd, (r) => r.Attributes);
  await same(urlA, urlB, 'PutItem', { TableName: 'items', Item: item(1, len) }, () => ({}));
  await same(urlA, urlB, 'GetItem', { TableName: 'items', Key: { id: { S: key(1) } } }, (r) => r.Item);
  console.log(`${urlA} and ${urlB} answer the same GetItem, Query, UpdateItem and PutItem`);
}

// A DynamoDB attribute value as plain JSON (what lib-dynamodb's unmarshall gives, numbers as numbers).
function plain(v) {
  const [t, x] = Object.entries(v)[0];
  switch (t) {
    case 'S': case 'BOOL': return x;
    case 'N': return Number(x);
    case 'NULL': return null;
    case 'L': return x.map(plain);
    case 'M': return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, plain(y)]));
    default: return x;
  }
}

async function rest(ddbUrl, restUrl, nItems) {
  for (const i of [0, Math.floor(nItems / 2), nItems - 1]) {
    const g = await ddb(ddbUrl, 'GetItem', { TableName: 'items', Key: { id: { S: key(i) } } });
    const res = await fetch(`${restUrl}/items/${key(i)}`);
    const text = await res.text();
    assert.equal(res.status, 200, `GET ${restUrl}/items/${key(i)}: ${res.status} ${text.slice(0, 300)}`);
    assert.deepEqual(sorted(JSON.parse(text)), sorted(plain({ M: g.Item })),
      `GET ${restUrl}/items/${key(i)} is not GetItem's item: ${text.slice(0, 300)}`);
  }
  console.log(`${restUrl}/items/KEY answers GetItem's items as plain JSON`);
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'load') await load(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
  else if (cmd === 'verify') await verify(args[0], args[1], Number(args[2]), Number(args[3]), Number(args[4]));
  else if (cmd === 'rest') await rest(args[0], args[1], Number(args[2]));
  else throw new Error(`usage: node load.mjs load|verify|rest ... (not ${cmd})`);
} catch (e) {
  console.error(`load.mjs ${cmd}: ${e.message}`);
  process.exit(1);
}
