// The item store through the DynamoDB JSON protocol (origin: { store: dynamodb }), driven by the real AWS SDK for
// JavaScript v3 (@aws-sdk/client-dynamodb and lib-dynamodb, pinned in package-lock.json): tables, items, conditions,
// ReturnValues, errors as DynamoDB sends them, x-amz-crc32, and that acknowledged writes survive a restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  PutItemCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateItemCommand,
  UpdateTableCommand,
  paginateListTables,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { h1, killAll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient } from './dynamo.mjs';

after(killAll);

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('DynamoDB API (AWS SDK v3)', () => {
  let edge;
  let port;
  let ddb;
  let dir;
  before(async () => {
    dir = tempDir('ep-ddb-');
    edge = await startEdge(STORE_CONF, { dir });
    [port] = edge.ports;
    ddb = ddbClient(port);
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('CreateTable, DescribeTable, ListTables; a second CreateTable is ResourceInUseException', async () => {
    const out = await ddb.send(new CreateTableCommand({
      TableName: 'users',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    assert.equal(out.TableDescription.TableName, 'users');
    assert.equal(out.TableDescription.TableStatus, 'ACTIVE');
    const d = await ddb.send(new DescribeTableCommand({ TableName: 'users' }));
    assert.deepEqual(d.Table.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }]);
    const l = await ddb.send(new ListTablesCommand({}));
    assert.ok(l.TableNames.includes('users'));
    await assert.rejects(ddb.send(new CreateTableCommand({
      TableName: 'users',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    })), ResourceInUseException);
    await assert.rejects(ddb.send(new DescribeTableCommand({ TableName: 'nope' })), ResourceNotFoundException);
  });

  test('PutItem, GetItem, UpdateItem, DeleteItem with conditions and ReturnValues', async () => {
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'u1' }, n: { N: '1.50' }, tags: { SS: ['a', 'b'] } } }));
    let g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'u1' } } }));
    assert.deepEqual(g.Item.n, { N: '1.5' }, 'numbers come back normalized');
    assert.deepEqual(new Set(g.Item.tags.SS), new Set(['a', 'b']));
    await assert.rejects(ddb.send(new PutItemCommand({
      TableName: 'users', Item: { id: { S: 'u1' } }, ConditionExpression: 'attribute_not_exists(id)',
    })), ConditionalCheckFailedException);
    const u = await ddb.send(new UpdateItemCommand({
      TableName: 'users', Key: { id: { S: 'u1' } },
      UpdateExpression: 'SET #n = #n + :one, #s = :s REMOVE tags', ExpressionAttributeNames: { '#n': 'n', '#s': 'status' },
      ExpressionAttributeValues: { ':one': { N: '1' }, ':s': { S: 'ok' } }, ReturnValues: 'ALL_NEW',
    }));
    assert.deepEqual(u.Attributes, { id: { S: 'u1' }, n: { N: '2.5' }, status: { S: 'ok' } });
    const del = await ddb.send(new DeleteItemCommand({ TableName: 'users', Key: { id: { S: 'u1' } }, ReturnValues: 'ALL_OLD' }));
    assert.equal(del.Attributes.status.S, 'ok');
    g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'u1' } } }));
    assert.equal(g.Item, undefined);
  });

  test('the document client; 200 concurrent ADD increments on one counter give exactly 200', async () => {
    const doc = DynamoDBDocumentClient.from(ddb);
    await doc.send(new PutCommand({ TableName: 'users', Item: { id: 'counter', hits: 0 } }));
    await Promise.all(Array.from({ length: 200 }, () => doc.send(new UpdateCommand({
      TableName: 'users', Key: { id: 'counter' }, UpdateExpression: 'ADD hits :one', ExpressionAttributeValues: { ':one': 1 },
    }))));
    const g = await doc.send(new GetCommand({ TableName: 'users', Key: { id: 'counter' } }));
    assert.equal(g.Item.hits, 200);
  });

  test('50 concurrent conditional puts: exactly one wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ddb.send(new PutItemCommand({
      TableName: 'users', Item: { id: { S: 'race' }, by: { N: String(i) } }, ConditionExpression: 'attribute_not_exists(id)',
    }))));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((x) => x.status === 'rejected')) assert.ok(r.reason instanceof ConditionalCheckFailedException);
  });

  test('wire: errors as DynamoDB sends them, x-amzn-RequestId and a correct x-amz-crc32', async () => {
    const post = (target, body) => h1({
      port, path: '/', method: 'POST', body,
      headers: { 'content-type': 'application/x-amz-json-1.0', ...(target ? { 'x-amz-target': target } : {}) },
    });
    let res = await post('DynamoDB_20120810.DescribeTable', JSON.stringify({ TableName: 'users' }));
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-amz-json-1.0');
    assert.ok(res.headers['x-amzn-requestid']);
    assert.equal(Number(res.headers['x-amz-crc32']), crc32(res.body));
    res = await post('DynamoDB_20120810.Frobnicate', '{}');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).__type, /UnknownOperationException$/);
    res = await post('DynamoDB_20120810.GetItem', 'not json');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).__type, /SerializationException$/);
    res = await post('DynamoDB_20120810.GetItem', JSON.stringify({ TableName: 'nope', Key: { id: { S: 'x' } } }));
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).__type, 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException');
    assert.equal(Number(res.headers['x-amz-crc32']), crc32(res.body));
  });

  test('tags: CreateTable Tags, TagResource, UntagResource, ListTagsOfResource; streams and table class recorded', async () => {
    const arn = (await ddb.send(new DescribeTableCommand({ TableName: 'users' }))).Table.TableArn;
    await ddb.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: 'team', Value: 'edge' }, { Key: 'env', Value: 'test' }] }));
    await ddb.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ['env'] }));
    const tags = await ddb.send(new ListTagsOfResourceCommand({ ResourceArn: arn }));
    assert.deepEqual(tags.Tags, [{ Key: 'team', Value: 'edge' }]);
    await assert.rejects(
      ddb.send(new ListTagsOfResourceCommand({ ResourceArn: arn.replace('/users', '/nope') })),
      ResourceNotFoundException,
    );
    const upd = await ddb.send(new UpdateTableCommand({
      TableName: 'users',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
      TableClass: 'STANDARD_INFREQUENT_ACCESS',
    }));
    assert.deepEqual(upd.TableDescription.StreamSpecification, { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' });
    assert.equal(upd.TableDescription.TableClassSummary.TableClass, 'STANDARD_INFREQUENT_ACCESS');
    const d = (await ddb.send(new DescribeTableCommand({ TableName: 'users' }))).Table;
    assert.match(d.LatestStreamArn, /table\/users\/stream\//);
    assert.equal(d.EdgeTags, undefined); // private members stay private
  });

  test('CreateTable with Tags: the tags are listed, never shown in the table description', async () => {
    const out = await ddb.send(new CreateTableCommand({
      TableName: 'tagged',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      Tags: [{ Key: 'team', Value: 'edge' }, { Key: 'cost', Value: '7' }],
    }));
    assert.equal(out.TableDescription.TableName, 'tagged');
    assert.equal(out.TableDescription.EdgeTags, undefined);
    assert.equal(out.TableDescription.Tags, undefined);
    const tags = await ddb.send(new ListTagsOfResourceCommand({ ResourceArn: out.TableDescription.TableArn }));
    assert.deepEqual(tags.Tags.map((t) => `${t.Key}=${t.Value}`).sort(), ['cost=7', 'team=edge']);
    const d = (await ddb.send(new DescribeTableCommand({ TableName: 'tagged' }))).Table;
    assert.equal(d.EdgeTags, undefined);
    await ddb.send(new DeleteTableCommand({ TableName: 'tagged' }));
  });

  test('the 400 KB item limit, counted in UTF-8 bytes with attribute names', async () => {
    // id (2) + "big" (3) + v (1) + 204797 two-byte characters (409594) = 409600 bytes: exactly 400 KB
    const fits = 'é'.repeat(204797);
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'big' }, v: { S: fits } } }));
    const got = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'big' } } }));
    assert.equal(got.Item.v.S.length, 204797);
    await assert.rejects(
      ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'big' }, v: { S: fits + 'a' } } })),
      (e) => e.name === 'ValidationException' && /Item size has exceeded the maximum allowed size/.test(e.message),
    );
    // an update that would grow it past the limit is refused too, and leaves it as it was
    await assert.rejects(
      ddb.send(new UpdateItemCommand({ TableName: 'users', Key: { id: { S: 'big' } }, UpdateExpression: 'SET w = :w', ExpressionAttributeValues: { ':w': { S: 'x' } } })),
      (e) => e.name === 'ValidationException' && /exceeded the maximum allowed size/.test(e.message),
    );
    const again = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'big' } } }));
    assert.equal(again.Item.w, undefined);
    await ddb.send(new DeleteItemCommand({ TableName: 'users', Key: { id: { S: 'big' } } }));
  });

  test('ListTables pages with Limit and ExclusiveStartTableName (the SDK paginator)', async () => {
    const names = ['pg_a1', 'pg_b2', 'pg_c3', 'pg_d4', 'pg_e5'];
    for (const n of names) {
      await ddb.send(new CreateTableCommand({
        TableName: n, BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      }));
    }
    const seen = [];
    let pages = 0;
    for await (const page of paginateListTables({ client: ddb, pageSize: 2 }, {})) {
      pages++;
      assert.ok(page.TableNames.length <= 2);
      seen.push(...page.TableNames);
    }
    const all = (await ddb.send(new ListTablesCommand({}))).TableNames;
    assert.deepEqual(seen, all);
    assert.ok(pages >= 3);
    for (const n of names) assert.ok(seen.includes(n));
    for (const n of names) await ddb.send(new DeleteTableCommand({ TableName: n }));
  });

  test('ConsumedCapacity when asked: units by size, half for eventually consistent reads, per table for batches', async () => {
    const big = 'x'.repeat(5000);
    const put = await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'cap' }, v: { S: big } }, ReturnConsumedCapacity: 'TOTAL' }));
    assert.deepEqual(put.ConsumedCapacity, { TableName: 'users', CapacityUnits: 5, WriteCapacityUnits: 5 });
    const get = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'cap' } }, ReturnConsumedCapacity: 'INDEXES' }));
    assert.equal(get.ConsumedCapacity.CapacityUnits, 1); // 5 KB: two 4 KB units, halved
    assert.equal(get.ConsumedCapacity.Table.CapacityUnits, 1);
    const strong = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'cap' } }, ConsistentRead: true, ReturnConsumedCapacity: 'TOTAL' }));
    assert.equal(strong.ConsumedCapacity.CapacityUnits, 2);
    const none = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'cap' } } }));
    assert.equal(none.ConsumedCapacity, undefined);
    const bw = await ddb.send(new BatchWriteItemCommand({
      RequestItems: { users: [{ PutRequest: { Item: { id: { S: 'cap2' } } } }, { DeleteRequest: { Key: { id: { S: 'cap' } } } }] },
      ReturnConsumedCapacity: 'TOTAL',
    }));
    assert.deepEqual(bw.ConsumedCapacity, [{ TableName: 'users', CapacityUnits: 2, WriteCapacityUnits: 2 }]);
  });

  test('ConsumedCapacity of Query and Scan: every item read counts, before the filter', async () => {
    await ddb.send(new CreateTableCommand({
      TableName: 'capq', BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'N' }],
    }));
    for (let i = 1; i <= 3; i++) { // about 3 KB each: 9 KB read in all, 3 KB returned
      await ddb.send(new PutItemCommand({ TableName: 'capq', Item: { pk: { S: 'p' }, sk: { N: String(i) }, n: { N: String(i) }, v: { S: 'x'.repeat(3000) } } }));
    }
    const post = (target, body) => h1({
      port, path: '/', method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${target}` },
    });
    const query = {
      TableName: 'capq', KeyConditionExpression: 'pk = :p', FilterExpression: 'n = :one',
      ExpressionAttributeValues: { ':p': { S: 'p' }, ':one': { N: '1' } }, ConsistentRead: true,
    };
    for (const [op, body] of [['Query', query], ['Scan', { TableName: 'capq', FilterExpression: 'n = :one',
      ExpressionAttributeValues: { ':one': { N: '1' } }, ConsistentRead: true }]]) {
      const res = await post(op, { ...body, ReturnConsumedCapacity: 'TOTAL' });
      assert.equal(res.status, 200, res.body.toString());
      const ans = JSON.parse(res.body);
      assert.equal(ans.Count, 1);
      assert.equal(ans.ScannedCount, 3);
      assert.deepEqual(ans.ConsumedCapacity, { TableName: 'capq', CapacityUnits: 3, ReadCapacityUnits: 3 }, op);
      assert.equal(ans.EdgeReadBytes, undefined); // the store's own member never reaches the client
      assert.equal(Number(res.headers['x-amz-crc32']), crc32(res.body));
      const plain = JSON.parse((await post(op, body)).body);
      assert.equal(plain.ConsumedCapacity, undefined);
      assert.equal(plain.EdgeReadBytes, undefined);
    }
    // eventually consistent: half
    const half = JSON.parse((await post('Query', { ...query, ConsistentRead: false, ReturnConsumedCapacity: 'TOTAL' })).body);
    assert.equal(half.ConsumedCapacity.CapacityUnits, 1.5);
    await ddb.send(new DeleteTableCommand({ TableName: 'capq' }));
  });

  test('acknowledged writes survive a restart; DeleteTable', async () => {
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'durable' }, v: { S: 'yes' } } }));
    await edge.stopClean();
    edge = await startEdge(STORE_CONF, { dir });
    [port] = edge.ports;
    ddb.destroy();
    ddb = ddbClient(port);
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'durable' } } }));
    assert.equal(g.Item.v.S, 'yes');
    await ddb.send(new DeleteTableCommand({ TableName: 'users' }));
    await assert.rejects(ddb.send(new DescribeTableCommand({ TableName: 'users' })), ResourceNotFoundException);
  });
});
