// Secondary indexes, UpdateTable and TTL through the DynamoDB JSON protocol (origin: { store: dynamodb }), driven by
// the real AWS SDK for JavaScript v3: global and local index queries with the SDK's paginators (many items sharing an
// index key), a global index added to a filled table by UpdateTable, and TTL (expired items invisible at once).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  paginateQuery,
  paginateScan,
} from '@aws-sdk/client-dynamodb';
import { killAll, poll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient, rejectsValidation } from './dynamo.mjs';

after(killAll);

// Every page of a paginated Query (or Scan): the items, in order, and the number of pages.
async function pages(ddb, pageSize, input, scan = false) {
  const items = [];
  let n = 0;
  const paginate = scan ? paginateScan : paginateQuery;
  for await (const page of paginate({ client: ddb, pageSize }, input)) {
    n++;
    assert.ok(page.Items.length <= pageSize);
    items.push(...page.Items);
  }
  return { items, pages: n };
}

describe('DynamoDB secondary indexes, UpdateTable and TTL (AWS SDK v3)', () => {
  let edge;
  let ddb;
  before(async () => {
    edge = await startEdge(STORE_CONF, { dir: tempDir('ep-ddbi-') });
    ddb = ddbClient(edge.ports[0]);
    await ddb.send(new CreateTableCommand({
      TableName: 'orders',
      KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }, { AttributeName: 'id', KeyType: 'RANGE' }],
      AttributeDefinitions: [
        { AttributeName: 'customer', AttributeType: 'S' },
        { AttributeName: 'id', AttributeType: 'N' },
        { AttributeName: 'state', AttributeType: 'S' },
        { AttributeName: 'placed', AttributeType: 'N' },
        { AttributeName: 'total', AttributeType: 'N' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: [
        { IndexName: 'byState', KeySchema: [{ AttributeName: 'state', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
        {
          IndexName: 'byStatePlaced',
          KeySchema: [{ AttributeName: 'state', KeyType: 'HASH' }, { AttributeName: 'placed', KeyType: 'RANGE' }],
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['total'] },
        },
      ],
      LocalSecondaryIndexes: [{
        IndexName: 'byTotal',
        KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }, { AttributeName: 'total', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'ALL' },
      }],
    }));
    // 90 orders of 3 customers: 80 'open' in 8 distinct 'placed' values (10 items share each), 10 'shipped'
    const requests = [];
    for (let i = 0; i < 90; ++i) {
      requests.push({
        PutRequest: {
          Item: {
            customer: { S: `c${i % 3}` }, id: { N: String(i) }, state: { S: i % 9 === 0 ? 'shipped' : 'open' },
            placed: { N: String(1000 + (i % 8)) }, total: { N: String((i * 7) % 50) }, note: { S: `order ${i}` },
          },
        },
      });
    }
    for (let i = 0; i < requests.length; i += 25) {
      await ddb.send(new BatchWriteItemCommand({ RequestItems: { orders: requests.slice(i, i + 25) } }));
    }
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('a global index shared by many items: every item once across pages, both ways', async () => {
    const full = await ddb.send(new QueryCommand({
      TableName: 'orders', IndexName: 'byState', KeyConditionExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'open' } },
    }));
    assert.equal(full.Count, 80);
    // KEYS_ONLY: the table's keys and the index's
    assert.deepEqual(Object.keys(full.Items[0]).sort(), ['customer', 'id', 'state']);
    const key = (it) => `${it.customer.S}/${it.id.N}`;
    const want = full.Items.map(key);
    assert.equal(new Set(want).size, 80);
    for (const forward of [true, false]) {
      for (const pageSize of [1, 7, 80]) {
        const got = await pages(ddb, pageSize, {
          TableName: 'orders', IndexName: 'byState', KeyConditionExpression: '#s = :s', ScanIndexForward: forward,
          ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'open' } },
        });
        assert.deepEqual(got.items.map(key), forward ? want : [...want].reverse(), `pageSize ${pageSize} forward ${forward}`);
        assert.ok(got.pages >= Math.ceil(80 / pageSize));
      }
    }
    // the LastEvaluatedKey holds the table's key and the index's
    const one = await ddb.send(new QueryCommand({
      TableName: 'orders', IndexName: 'byStatePlaced', KeyConditionExpression: '#s = :s', Limit: 3,
      ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'open' } },
    }));
    assert.deepEqual(Object.keys(one.LastEvaluatedKey).sort(), ['customer', 'id', 'placed', 'state']);
  });

  test('a global index with a sort key: conditions, order, INCLUDE projection, paging over equal sort keys', async () => {
    const q = (cond, values, extra = {}) => ({
      TableName: 'orders', IndexName: 'byStatePlaced', KeyConditionExpression: `#s = :s AND ${cond}`,
      ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'open' }, ...values }, ...extra,
    });
    const r = await ddb.send(new QueryCommand(q('placed BETWEEN :a AND :b', { ':a': { N: '1002' }, ':b': { N: '1003' } })));
    assert.ok(r.Count > 0);
    assert.ok(r.Items.every((it) => ['1002', '1003'].includes(it.placed.N)));
    assert.deepEqual(Object.keys(r.Items[0]).sort(), ['customer', 'id', 'placed', 'state', 'total']);
    const placed = r.Items.map((it) => Number(it.placed.N));
    assert.deepEqual(placed, [...placed].sort((a, b) => a - b));
    const all = await ddb.send(new QueryCommand(q('placed <= :a', { ':a': { N: '1003' } })));
    const back = await pages(ddb, 3, q('placed <= :a', { ':a': { N: '1003' } }, { ScanIndexForward: false }));
    assert.deepEqual(back.items.map((it) => it.id.N), all.Items.map((it) => it.id.N).reverse());
    const eq = await pages(ddb, 4, q('placed = :a', { ':a': { N: '1005' } }, { ScanIndexForward: false }));
    assert.equal(eq.items.length, new Set(eq.items.map((it) => `${it.customer.S}/${it.id.N}`)).size);
    assert.ok(eq.items.length >= 9);
    await rejectsValidation(ddb.send(new QueryCommand(q('placed = :a', { ':a': { N: '1005' } }, { Select: 'ALL_ATTRIBUTES' }))),
      /Select type ALL_ATTRIBUTES is not supported for global secondary index byStatePlaced/);
    await rejectsValidation(ddb.send(new QueryCommand(q('placed = :a', { ':a': { N: '1005' } }, { ConsistentRead: true }))),
      /Consistent reads are not supported on global secondary indexes/);
    await rejectsValidation(ddb.send(new QueryCommand({ ...q('placed = :a', { ':a': { N: '1005' } }), IndexName: 'nope' })),
      /The table does not have the specified index: nope/);
  });

  test('a local index: ordered by its sort key within the partition, ALL projection, consistent reads', async () => {
    const got = await pages(ddb, 4, {
      TableName: 'orders', IndexName: 'byTotal', KeyConditionExpression: 'customer = :c AND #t >= :t',
      ExpressionAttributeNames: { '#t': 'total' }, ExpressionAttributeValues: { ':c': { S: 'c1' }, ':t': { N: '10' } },
      ConsistentRead: true,
    });
    const totals = got.items.map((it) => Number(it.total.N));
    assert.ok(totals.length > 10);
    assert.ok(totals.every((t) => t >= 10));
    assert.deepEqual(totals, [...totals].sort((a, b) => a - b));
    assert.ok(got.items.every((it) => it.customer.S === 'c1' && it.note !== undefined));
    assert.equal(new Set(got.items.map((it) => it.id.N)).size, totals.length);
  });

  test('the writes keep the indexes right', async () => {
    await ddb.send(new UpdateItemCommand({
      TableName: 'orders', Key: { customer: { S: 'c0' }, id: { N: '0' } }, UpdateExpression: 'SET #s = :s',
      ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'lost' } },
    }));
    const lost = await ddb.send(new QueryCommand({
      TableName: 'orders', IndexName: 'byState', KeyConditionExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': 'state' }, ExpressionAttributeValues: { ':s': { S: 'lost' } },
    }));
    assert.deepEqual(lost.Items, [{ customer: { S: 'c0' }, id: { N: '0' }, state: { S: 'lost' } }]);
    await rejectsValidation(ddb.send(new PutItemCommand({
      TableName: 'orders', Item: { customer: { S: 'c9' }, id: { N: '1' }, state: { N: '1' } },
    })), /Type mismatch for Index Key state Expected: S Actual: N IndexName: byState/);
    const none = await ddb.send(new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'c9' }, id: { N: '1' } } }));
    assert.equal(none.Item, undefined);
  });

  test('UpdateTable adds a global index, filled from the items, then queryable; and deletes it', async () => {
    await ddb.send(new CreateTableCommand({
      TableName: 'people',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    for (let i = 0; i < 40; ++i) {
      const item = { id: { S: `p${i}` }, age: { N: String(20 + (i % 5)) } };
      if (i % 4 !== 0) item.city = { S: i % 2 ? 'Oslo' : 'Rome' };
      if (i === 4) item.city = { N: '7' }; // of another type: left out of the index
      await ddb.send(new PutItemCommand({ TableName: 'people', Item: item }));
    }
    const up = await ddb.send(new UpdateTableCommand({
      TableName: 'people',
      AttributeDefinitions: [{ AttributeName: 'city', AttributeType: 'S' }, { AttributeName: 'age', AttributeType: 'N' }],
      GlobalSecondaryIndexUpdates: [{
        Create: {
          IndexName: 'byCity',
          KeySchema: [{ AttributeName: 'city', KeyType: 'HASH' }, { AttributeName: 'age', KeyType: 'RANGE' }],
          Projection: { ProjectionType: 'ALL' },
        },
      }],
    }));
    assert.equal(up.TableDescription.GlobalSecondaryIndexes[0].IndexName, 'byCity');
    const d = await ddb.send(new DescribeTableCommand({ TableName: 'people' }));
    assert.equal(d.Table.GlobalSecondaryIndexes[0].IndexStatus, 'ACTIVE');
    assert.deepEqual(d.Table.AttributeDefinitions.map((a) => a.AttributeName).sort(), ['age', 'city', 'id']);
    const oslo = await pages(ddb, 6, {
      TableName: 'people', IndexName: 'byCity', KeyConditionExpression: 'city = :c AND age > :a',
      ExpressionAttributeValues: { ':c': { S: 'Oslo' }, ':a': { N: '21' } },
    });
    const wantOslo = [];
    for (let i = 0; i < 40; ++i) if (i % 4 !== 0 && i % 2 && 20 + (i % 5) > 21) wantOslo.push(`p${i}`);
    assert.deepEqual(oslo.items.map((it) => it.id.S).sort(), wantOslo.sort());
    const ages = oslo.items.map((it) => Number(it.age.N));
    assert.deepEqual(ages, [...ages].sort((a, b) => a - b));
    const scan = await pages(ddb, 7, { TableName: 'people', IndexName: 'byCity' }, true);
    assert.equal(scan.items.length, 30);
    // maintained from now on
    await ddb.send(new PutItemCommand({ TableName: 'people', Item: { id: { S: 'new' }, city: { S: 'Oslo' }, age: { N: '99' } } }));
    const newest = await ddb.send(new QueryCommand({
      TableName: 'people', IndexName: 'byCity', KeyConditionExpression: 'city = :c', ScanIndexForward: false, Limit: 1,
      ExpressionAttributeValues: { ':c': { S: 'Oslo' } },
    }));
    assert.equal(newest.Items[0].id.S, 'new');
    // DescribeTable counts the index's items: 30 filled + 1 new (the table has 41)
    const counted = await ddb.send(new DescribeTableCommand({ TableName: 'people' }));
    assert.equal(counted.Table.ItemCount, 41);
    assert.equal(counted.Table.GlobalSecondaryIndexes[0].ItemCount, 31);
    // deleted: gone from the description, not queryable
    await ddb.send(new UpdateTableCommand({ TableName: 'people', GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: 'byCity' } }] }));
    const d2 = await ddb.send(new DescribeTableCommand({ TableName: 'people' }));
    assert.equal(d2.Table.GlobalSecondaryIndexes, undefined);
    assert.deepEqual(d2.Table.AttributeDefinitions.map((a) => a.AttributeName), ['id']);
    await rejectsValidation(ddb.send(new ScanCommand({ TableName: 'people', IndexName: 'byCity' })),
      /The table does not have the specified index: byCity/);
  });

  test('TTL: enabled, expired items are invisible at once, DescribeTimeToLive; disabled only on its own attribute', async () => {
    await ddb.send(new CreateTableCommand({
      TableName: 'sessions',
      KeySchema: [{ AttributeName: 'sid', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'sid', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    const before = await ddb.send(new DescribeTimeToLiveCommand({ TableName: 'sessions' }));
    assert.equal(before.TimeToLiveDescription.TimeToLiveStatus, 'DISABLED');
    const now = Math.floor(Date.now() / 1000);
    await ddb.send(new PutItemCommand({ TableName: 'sessions', Item: { sid: { S: 'old' }, expires: { N: String(now - 60) } } }));
    await ddb.send(new PutItemCommand({ TableName: 'sessions', Item: { sid: { S: 'live' }, expires: { N: String(now + 3600) } } }));
    await ddb.send(new PutItemCommand({ TableName: 'sessions', Item: { sid: { S: 'forever' } } }));
    assert.ok((await ddb.send(new GetItemCommand({ TableName: 'sessions', Key: { sid: { S: 'old' } } }))).Item);
    const on = await ddb.send(new UpdateTimeToLiveCommand({
      TableName: 'sessions', TimeToLiveSpecification: { AttributeName: 'expires', Enabled: true },
    }));
    assert.deepEqual(on.TimeToLiveSpecification, { AttributeName: 'expires', Enabled: true });
    const desc = await ddb.send(new DescribeTimeToLiveCommand({ TableName: 'sessions' }));
    assert.deepEqual(desc.TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'expires' });
    assert.equal((await ddb.send(new GetItemCommand({ TableName: 'sessions', Key: { sid: { S: 'old' } } }))).Item, undefined);
    const scan = await ddb.send(new ScanCommand({ TableName: 'sessions' }));
    assert.deepEqual(scan.Items.map((it) => it.sid.S).sort(), ['forever', 'live']);
    await rejectsValidation(ddb.send(new UpdateTimeToLiveCommand({
      TableName: 'sessions', TimeToLiveSpecification: { AttributeName: 'expires', Enabled: true },
    })), /TimeToLive is already enabled/);
    // an item written already expired is invisible at once; a condition does not see it
    await ddb.send(new PutItemCommand({ TableName: 'sessions', Item: { sid: { S: 'gone' }, expires: { N: String(now - 1) } } }));
    assert.equal((await ddb.send(new GetItemCommand({ TableName: 'sessions', Key: { sid: { S: 'gone' } } }))).Item, undefined);
    await ddb.send(new PutItemCommand({
      TableName: 'sessions', Item: { sid: { S: 'gone' }, fresh: { BOOL: true } }, ConditionExpression: 'attribute_not_exists(sid)',
    }));
    assert.equal((await ddb.send(new GetItemCommand({ TableName: 'sessions', Key: { sid: { S: 'gone' } } }))).Item.fresh.BOOL, true);
    // the reaper deletes the expired item: ItemCount drops
    const count = await poll(async () => {
      const t = await ddb.send(new DescribeTableCommand({ TableName: 'sessions' }));
      return t.Table.ItemCount === 3 ? t.Table.ItemCount : 0;
    }, 5000);
    assert.equal(count, 3);
    // disabling: only the attribute TTL is on; then items are kept whatever their expiry says
    await rejectsValidation(ddb.send(new UpdateTimeToLiveCommand({
      TableName: 'sessions', TimeToLiveSpecification: { AttributeName: 'other', Enabled: false },
    })), /TimeToLive is active on a different AttributeName: current AttributeName is expires/);
    const off = await ddb.send(new UpdateTimeToLiveCommand({
      TableName: 'sessions', TimeToLiveSpecification: { AttributeName: 'expires', Enabled: false },
    }));
    assert.deepEqual(off.TimeToLiveSpecification, { AttributeName: 'expires', Enabled: false });
    assert.deepEqual((await ddb.send(new DescribeTimeToLiveCommand({ TableName: 'sessions' }))).TimeToLiveDescription,
      { TimeToLiveStatus: 'DISABLED' });
    await ddb.send(new PutItemCommand({ TableName: 'sessions', Item: { sid: { S: 'past' }, expires: { N: String(now - 60) } } }));
    assert.ok((await ddb.send(new GetItemCommand({ TableName: 'sessions', Key: { sid: { S: 'past' } } }))).Item);
    await rejectsValidation(ddb.send(new UpdateTimeToLiveCommand({
      TableName: 'sessions', TimeToLiveSpecification: { AttributeName: 'expires', Enabled: false },
    })), /TimeToLive is already disabled/);
  });
});
