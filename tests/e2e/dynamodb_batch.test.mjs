// BatchGetItem and BatchWriteItem of the item store through the DynamoDB JSON protocol (origin: { store: dynamodb }),
// driven by the real AWS SDK for JavaScript v3 (@aws-sdk/client-dynamodb and lib-dynamodb's document client): both
// operations across two tables, projections, missing keys, the limits (25 writes, 100 keys), duplicates, unknown
// tables, that a rejected batch writes nothing, and that the counters follow batch writes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { killAll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient, rejectsValidation } from './dynamo.mjs';

after(killAll);

const byKey = (attr) => (a, b) => (a[attr].S ?? a[attr].N) < (b[attr].S ?? b[attr].N) ? -1 : 1;

describe('DynamoDB batch operations (AWS SDK v3)', () => {
  let edge;
  let ddb;
  let doc;
  before(async () => {
    edge = await startEdge(STORE_CONF, { dir: tempDir('ep-ddb-batch-') });
    ddb = ddbClient(edge.ports[0]);
    doc = DynamoDBDocumentClient.from(ddb);
    await ddb.send(new CreateTableCommand({
      TableName: 'users',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    await ddb.send(new CreateTableCommand({
      TableName: 'events',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'at', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'at', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('BatchWriteItem across two tables; BatchGetItem reads them back, with a projection; missing keys are absent', async () => {
    const w = await ddb.send(new BatchWriteItemCommand({
      RequestItems: {
        users: [
          { PutRequest: { Item: { id: { S: 'u1' }, name: { S: 'Ann' }, age: { N: '31' } } } },
          { PutRequest: { Item: { id: { S: 'u2' }, name: { S: 'Bob' }, age: { N: '42.0' } } } },
        ],
        events: [
          { PutRequest: { Item: { pk: { S: 'u1' }, at: { N: '1' }, what: { S: 'login' } } } },
          { PutRequest: { Item: { pk: { S: 'u1' }, at: { N: '2' }, what: { S: 'logout' } } } },
        ],
      },
    }));
    assert.deepEqual(w.UnprocessedItems, {});
    const g = await ddb.send(new BatchGetItemCommand({
      RequestItems: {
        users: { Keys: [{ id: { S: 'u1' } }, { id: { S: 'u2' } }, { id: { S: 'nobody' } }], ConsistentRead: true },
        events: {
          Keys: [{ pk: { S: 'u1' }, at: { N: '2' } }, { pk: { S: 'u1' }, at: { N: '3' } }],
          ProjectionExpression: '#w', ExpressionAttributeNames: { '#w': 'what' },
        },
      },
    }));
    assert.deepEqual(g.UnprocessedKeys, {});
    assert.deepEqual(g.Responses.users.sort(byKey('id')), [
      { id: { S: 'u1' }, name: { S: 'Ann' }, age: { N: '31' } },
      { id: { S: 'u2' }, name: { S: 'Bob' }, age: { N: '42' } },
    ]);
    assert.deepEqual(g.Responses.events, [{ what: { S: 'logout' } }]);
  });

  test('BatchWriteItem deletes and puts in one batch; the counters follow', async () => {
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'gone' }, x: { S: 'soon' } } }));
    const before = (await ddb.send(new DescribeTableCommand({ TableName: 'users' }))).Table;
    await ddb.send(new BatchWriteItemCommand({
      RequestItems: {
        users: [
          { DeleteRequest: { Key: { id: { S: 'gone' } } } },
          { DeleteRequest: { Key: { id: { S: 'never-there' } } } },
          { PutRequest: { Item: { id: { S: 'u3' }, name: { S: 'Cy' } } } },
        ],
      },
    }));
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'gone' } } }));
    assert.equal(g.Item, undefined);
    const after = (await ddb.send(new DescribeTableCommand({ TableName: 'users' }))).Table;
    assert.equal(after.ItemCount, before.ItemCount);
    // 'gone' {id, x} is 2 + 4 + 1 + 4 = 11 bytes; 'u3' {id, name} is 2 + 2 + 4 + 2 = 10
    assert.equal(after.TableSizeBytes, before.TableSizeBytes - 1);
  });

  test('the document client: BatchWriteCommand and BatchGetCommand with native values', async () => {
    const w = await doc.send(new BatchWriteCommand({
      RequestItems: {
        users: [
          { PutRequest: { Item: { id: 'd1', tags: new Set(['a', 'b']), nested: { list: [1, 'two', true, null] } } } },
          { PutRequest: { Item: { id: 'd2', score: 12.5 } } },
          { DeleteRequest: { Key: { id: 'u3' } } },
        ],
        events: [{ PutRequest: { Item: { pk: 'd1', at: 10, what: 'doc' } } }],
      },
    }));
    assert.deepEqual(w.UnprocessedItems, {});
    const g = await doc.send(new BatchGetCommand({
      RequestItems: {
        users: { Keys: [{ id: 'd1' }, { id: 'd2' }, { id: 'u3' }] },
        events: { Keys: [{ pk: 'd1', at: 10 }], ProjectionExpression: 'what, #at', ExpressionAttributeNames: { '#at': 'at' } },
      },
    }));
    assert.deepEqual(g.UnprocessedKeys, {});
    const users = g.Responses.users.sort((a, b) => (a.id < b.id ? -1 : 1));
    assert.equal(users.length, 2);
    assert.deepEqual(users[0].tags, new Set(['a', 'b']));
    assert.deepEqual(users[0].nested, { list: [1, 'two', true, null] });
    assert.equal(users[1].score, 12.5);
    assert.deepEqual(g.Responses.events, [{ what: 'doc', at: 10 }]);
  });

  test('25 writes are one batch, 26 are too many; 100 keys are one batch, 101 are too many', async () => {
    const puts = (n, from = 0) => Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: { id: `m${from + i}`, v: i } } }));
    const eventPuts = (pk, n) => Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: { pk, at: i + 1 } } }));
    await doc.send(new BatchWriteCommand({ RequestItems: { users: puts(20), events: eventPuts('m', 5) } }));
    await rejectsValidation(doc.send(new BatchWriteCommand({ RequestItems: { users: puts(26, 100) } })),
      /Member must have length less than or equal to 25/);
    await rejectsValidation(doc.send(new BatchWriteCommand({ RequestItems: { users: puts(20, 200), events: eventPuts('n', 6) } })),
      /^Too many items requested for the BatchWriteItem call$/);
    const none = await doc.send(new BatchGetCommand({ RequestItems: { users: { Keys: [{ id: 'm100' }, { id: 'm200' }] } } }));
    assert.deepEqual(none.Responses.users, [], 'a rejected batch wrote nothing');

    const keys = (n) => Array.from({ length: n }, (_, i) => ({ id: `m${i}` }));
    const eventKeys = Array.from({ length: 5 }, (_, i) => ({ pk: 'm', at: i + 1 }));
    const g = await doc.send(new BatchGetCommand({ RequestItems: { users: { Keys: keys(95) }, events: { Keys: eventKeys } } }));
    assert.equal(g.Responses.users.length, 20);
    assert.equal(g.Responses.events.length, 5);
    await rejectsValidation(
      doc.send(new BatchGetCommand({ RequestItems: { users: { Keys: keys(96) }, events: { Keys: eventKeys } } })),
      /^Too many items requested for the BatchGetItem call$/);
  });

  test('duplicates, unknown tables and key mismatches reject the whole batch', async () => {
    await rejectsValidation(ddb.send(new BatchGetItemCommand({
      RequestItems: { users: { Keys: [{ id: { S: 'u1' } }, { id: { S: 'u1' } }] } },
    })), /^Provided list of item keys contains duplicates$/);
    await rejectsValidation(ddb.send(new BatchWriteItemCommand({
      RequestItems: {
        users: [{ PutRequest: { Item: { id: { S: 'dup' } } } }, { DeleteRequest: { Key: { id: { S: 'dup' } } } }],
      },
    })), /^Provided list of item keys contains duplicates$/);
    await assert.rejects(ddb.send(new BatchWriteItemCommand({
      RequestItems: {
        users: [{ PutRequest: { Item: { id: { S: 'orphan' } } } }],
        nothere: [{ PutRequest: { Item: { id: { S: 'orphan' } } } }],
      },
    })), ResourceNotFoundException);
    await assert.rejects(ddb.send(new BatchGetItemCommand({
      RequestItems: { nothere: { Keys: [{ id: { S: 'u1' } }] } },
    })), ResourceNotFoundException);
    await rejectsValidation(ddb.send(new BatchWriteItemCommand({
      RequestItems: {
        users: [{ PutRequest: { Item: { id: { S: 'orphan' } } } }],
        events: [{ PutRequest: { Item: { pk: { S: 'orphan' } } } }],
      },
    })), /Missing the key at in the item/);
    await rejectsValidation(ddb.send(new BatchGetItemCommand({
      RequestItems: { users: { Keys: [{ nope: { S: 'u1' } }] } },
    })), /The provided key element does not match the schema/);
    const g = await ddb.send(new BatchGetItemCommand({
      RequestItems: { users: { Keys: [{ id: { S: 'orphan' } }, { id: { S: 'dup' } }] } },
    }));
    assert.deepEqual(g.Responses.users, []);
  });
});
