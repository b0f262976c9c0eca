// Query and Scan through the DynamoDB JSON protocol (origin: { store: dynamodb }), driven by the real AWS SDK for
// JavaScript v3: key conditions, order, paging with the SDK's paginators, segments, and errors as DynamoDB sends them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreateTableCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  paginateQuery,
  paginateScan,
} from '@aws-sdk/client-dynamodb';
import { killAll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient } from './dynamo.mjs';

after(killAll);

describe('DynamoDB Query and Scan (AWS SDK v3)', () => {
  let edge;
  let ddb;
  before(async () => {
    edge = await startEdge(STORE_CONF, { dir: tempDir('ep-ddbq-') });
    ddb = ddbClient(edge.ports[0]);
    await ddb.send(new CreateTableCommand({
      TableName: 'events',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    const puts = [];
    for (let i = 0; i < 120; ++i) {
      puts.push(ddb.send(new PutItemCommand({
        TableName: 'events',
        Item: { pk: { S: `p${i % 3}` }, sk: { N: String(i - 60) }, odd: { BOOL: i % 2 === 1 } },
      })));
    }
    await Promise.all(puts);
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('Query: a partition in numeric sort key order, both ways, with a range', async () => {
    const q = await ddb.send(new QueryCommand({
      TableName: 'events', KeyConditionExpression: 'pk = :p AND sk BETWEEN :a AND :b',
      ExpressionAttributeValues: { ':p': { S: 'p0' }, ':a': { N: '-9' }, ':b': { N: '9' } },
    }));
    assert.deepEqual(q.Items.map((it) => Number(it.sk.N)), [-9, -6, -3, 0, 3, 6, 9]);
    assert.equal(q.Count, 7);
    assert.equal(q.ScannedCount, 7);
    const d = await ddb.send(new QueryCommand({
      TableName: 'events', KeyConditionExpression: 'pk = :p AND sk < :z', ScanIndexForward: false, Select: 'COUNT',
      ExpressionAttributeValues: { ':p': { S: 'p1' }, ':z': { N: '0' } },
    }));
    assert.equal(d.Items, undefined);
    assert.equal(d.Count, 20);
  });

  test('Query: the SDK paginator with Limit and a filter reads every item once', async () => {
    const seen = [];
    let pages = 0;
    for await (const page of paginateQuery({ client: ddb, pageSize: 7 }, {
      TableName: 'events', KeyConditionExpression: 'pk = :p', FilterExpression: 'odd = :t',
      ExpressionAttributeValues: { ':p': { S: 'p2' }, ':t': { BOOL: true } }, ScanIndexForward: false,
    })) {
      pages++;
      assert.ok(page.ScannedCount <= 7);
      seen.push(...page.Items.map((it) => Number(it.sk.N)));
    }
    assert.ok(pages >= 6);
    assert.equal(seen.length, 20);
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a));
  });

  test('Scan: segments are disjoint and cover the table', async () => {
    const all = new Set();
    for (let seg = 0; seg < 3; ++seg) {
      for await (const page of paginateScan({ client: ddb, pageSize: 11 }, { TableName: 'events', Segment: seg, TotalSegments: 3 })) {
        for (const it of page.Items) {
          const k = `${it.pk.S}/${it.sk.N}`;
          assert.ok(!all.has(k), `${k} twice`);
          all.add(k);
        }
      }
    }
    assert.equal(all.size, 120);
  });

  test('errors as DynamoDB sends them', async () => {
    await assert.rejects(ddb.send(new QueryCommand({
      TableName: 'events', KeyConditionExpression: 'sk = :p', ExpressionAttributeValues: { ':p': { N: '1' } },
    })), (e) => e.name === 'ValidationException' && /Query condition missed key schema element/.test(e.message));
    await assert.rejects(ddb.send(new ScanCommand({ TableName: 'events', Segment: 3, TotalSegments: 3 })),
      (e) => e.name === 'ValidationException' && /Segment: 3 is not less than TotalSegments: 3/.test(e.message));
    await assert.rejects(ddb.send(new QueryCommand({
      TableName: 'events', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'p0' } },
      ExclusiveStartKey: { pk: { S: 'p0' } },
    })), (e) => e.name === 'ValidationException' && /The provided starting key is invalid/.test(e.message));
    await assert.rejects(ddb.send(new ScanCommand({ TableName: 'missing' })), (e) => e.name === 'ResourceNotFoundException');
  });
});
