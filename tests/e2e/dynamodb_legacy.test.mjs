// DynamoDB's legacy (non-expression) parameters through the DynamoDB JSON protocol (origin: { store: dynamodb }), driven
// by the real AWS SDK for JavaScript v3: Expected + ConditionalOperator, AttributeUpdates, AttributesToGet,
// KeyConditions, QueryFilter and ScanFilter, with the SDK's paginator and the document client, and the errors DynamoDB
// gives for them (mixing with expressions, wrong numbers of values).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  paginateQuery,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { killAll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient, rejectsValidation } from './dynamo.mjs';

after(killAll);

describe('DynamoDB legacy parameters (AWS SDK v3)', () => {
  let edge;
  let ddb;
  before(async () => {
    edge = await startEdge(STORE_CONF, { dir: tempDir('ep-ddbl-') });
    ddb = ddbClient(edge.ports[0]);
    await ddb.send(new CreateTableCommand({
      TableName: 'users',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    await ddb.send(new CreateTableCommand({
      TableName: 'events',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    await Promise.all(Array.from({ length: 30 }, (_, i) => ddb.send(new PutItemCommand({
      TableName: 'events',
      Item: { pk: { S: `p${i % 2}` }, sk: { N: String(i) }, kind: { S: i % 3 === 0 ? 'login' : 'click' } },
    }))));
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('PutItem and DeleteItem with Expected: Exists, Value, ComparisonOperator, ConditionalOperator', async () => {
    const put = (Item, Expected, extra = {}) => ddb.send(new PutItemCommand({ TableName: 'users', Item, Expected, ...extra }));
    await put({ id: { S: 'u1' }, v: { N: '1' }, tags: { SS: ['a', 'b'] } }, { id: { Exists: false } });
    await assert.rejects(put({ id: { S: 'u1' } }, { id: { Exists: false } }), ConditionalCheckFailedException);
    await put({ id: { S: 'u1' }, v: { N: '2' }, tags: { SS: ['a', 'b'] } }, { v: { Value: { N: '1' } } });
    await assert.rejects(put({ id: { S: 'u1' } }, { v: { Value: { N: '1' } } }), ConditionalCheckFailedException);
    await put({ id: { S: 'u1' }, v: { N: '3' }, tags: { SS: ['a', 'b'] } }, {
      v: { ComparisonOperator: 'BETWEEN', AttributeValueList: [{ N: '2' }, { N: '9' }] },
      tags: { ComparisonOperator: 'CONTAINS', AttributeValueList: [{ S: 'a' }] },
    }, { ConditionalOperator: 'AND' });
    // OR: one of them is enough; NOT_CONTAINS is false on a missing attribute
    await put({ id: { S: 'u1' }, v: { N: '4' } }, {
      missing: { ComparisonOperator: 'NOT_CONTAINS', AttributeValueList: [{ S: 'x' }] },
      v: { ComparisonOperator: 'IN', AttributeValueList: [{ N: '3' }, { N: '7' }] },
    }, { ConditionalOperator: 'OR' });
    await assert.rejects(put({ id: { S: 'u1' } }, {
      missing: { ComparisonOperator: 'NOT_CONTAINS', AttributeValueList: [{ S: 'x' }] },
      v: { ComparisonOperator: 'NULL' },
    }, { ConditionalOperator: 'OR' }), ConditionalCheckFailedException);
    await assert.rejects(ddb.send(new DeleteItemCommand({
      TableName: 'users', Key: { id: { S: 'u1' } }, Expected: { v: { ComparisonOperator: 'GT', AttributeValueList: [{ N: '4' }] } },
    })), ConditionalCheckFailedException);
    const del = await ddb.send(new DeleteItemCommand({
      TableName: 'users', Key: { id: { S: 'u1' } }, ReturnValues: 'ALL_OLD',
      Expected: { v: { ComparisonOperator: 'GE', AttributeValueList: [{ N: '4' }] }, gone: { ComparisonOperator: 'NULL' } },
    }));
    assert.deepEqual(del.Attributes, { id: { S: 'u1' }, v: { N: '4' } });
  });

  test('UpdateItem with AttributeUpdates: PUT, ADD (number, set, list), DELETE (attribute, set members)', async () => {
    const update = (AttributeUpdates, extra = {}) => ddb.send(new UpdateItemCommand({
      TableName: 'users', Key: { id: { S: 'u2' } }, AttributeUpdates, ReturnValues: 'ALL_NEW', ...extra,
    }));
    let u = await update({ n: { Action: 'ADD', Value: { N: '5' } }, name: { Value: { S: 'Ann' } } });
    assert.deepEqual(u.Attributes, { id: { S: 'u2' }, n: { N: '5' }, name: { S: 'Ann' } }, 'ADD on a missing item makes it');
    u = await update({
      n: { Action: 'ADD', Value: { N: '-1.5' } },
      tags: { Action: 'ADD', Value: { SS: ['x', 'y'] } },
      log: { Action: 'ADD', Value: { L: [{ S: 'first' }] } },
      name: { Action: 'PUT', Value: { S: 'Bob' } },
    });
    assert.equal(u.Attributes.n.N, '3.5');
    assert.deepEqual(new Set(u.Attributes.tags.SS), new Set(['x', 'y']));
    assert.deepEqual(u.Attributes.log, { L: [{ S: 'first' }] });
    u = await update({
      log: { Action: 'ADD', Value: { L: [{ S: 'second' }] } },
      tags: { Action: 'DELETE', Value: { SS: ['x'] } },
      name: { Action: 'DELETE' },
    }, { Expected: { name: { Value: { S: 'Bob' } } } });
    assert.deepEqual(u.Attributes, {
      id: { S: 'u2' }, n: { N: '3.5' }, tags: { SS: ['y'] }, log: { L: [{ S: 'first' }, { S: 'second' }] },
    });
    await assert.rejects(update({ n: { Action: 'ADD', Value: { N: '1' } } }, { Expected: { name: { Exists: true, Value: { S: 'Bob' } } } }),
      ConditionalCheckFailedException);
    await rejectsValidation(update({ id: { Value: { S: 'other' } } }), /Cannot update attribute id\. This attribute is part of the key/);
    await rejectsValidation(update({ n: { Action: 'ADD' } }), /Only DELETE action is allowed when no attribute value is specified/);
  });

  test('200 concurrent legacy ADD increments on one counter give exactly 200', async () => {
    await Promise.all(Array.from({ length: 200 }, () => ddb.send(new UpdateItemCommand({
      TableName: 'users', Key: { id: { S: 'counter' } }, AttributeUpdates: { hits: { Action: 'ADD', Value: { N: '1' } } },
    }))));
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'counter' } }, AttributesToGet: ['hits'] }));
    assert.deepEqual(g.Item, { hits: { N: '200' } });
  });

  test('the document client marshals legacy values', async () => {
    const doc = DynamoDBDocumentClient.from(ddb);
    await doc.send(new UpdateCommand({
      TableName: 'users', Key: { id: 'doc' },
      AttributeUpdates: { score: { Action: 'ADD', Value: 10 }, label: { Action: 'PUT', Value: 'x' } },
    }));
    await doc.send(new UpdateCommand({
      TableName: 'users', Key: { id: 'doc' }, AttributeUpdates: { score: { Action: 'ADD', Value: 5 } },
      Expected: { score: { ComparisonOperator: 'LT', AttributeValueList: [100] } },
    }));
    const g = await doc.send(new GetCommand({ TableName: 'users', Key: { id: 'doc' }, AttributesToGet: ['score', 'label'] }));
    assert.deepEqual(g.Item, { score: 15, label: 'x' });
  });

  test('GetItem and BatchGetItem with AttributesToGet', async () => {
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'u3' }, a: { S: 'A' }, b: { N: '2' }, c: { BOOL: true } } }));
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'u3' } }, AttributesToGet: ['a', 'c', 'zz'] }));
    assert.deepEqual(g.Item, { a: { S: 'A' }, c: { BOOL: true } });
    const b = await ddb.send(new BatchGetItemCommand({
      RequestItems: {
        users: { Keys: [{ id: { S: 'u3' } }], AttributesToGet: ['b'] },
        events: { Keys: [{ pk: { S: 'p0' }, sk: { N: '0' } }], AttributesToGet: ['kind'] },
      },
    }));
    assert.deepEqual(b.Responses.users, [{ b: { N: '2' } }]);
    assert.deepEqual(b.Responses.events, [{ kind: { S: 'login' } }]);
  });

  test('Query with KeyConditions, QueryFilter and AttributesToGet, paged by the SDK paginator', async () => {
    const q = await ddb.send(new QueryCommand({
      TableName: 'events',
      KeyConditions: {
        pk: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'p0' }] },
        sk: { ComparisonOperator: 'BETWEEN', AttributeValueList: [{ N: '4' }, { N: '12' }] },
      },
      AttributesToGet: ['sk'],
      ScanIndexForward: false,
    }));
    assert.deepEqual(q.Items.map((it) => Number(it.sk.N)), [12, 10, 8, 6, 4]);
    const seen = [];
    let pages = 0;
    for await (const page of paginateQuery({ client: ddb, pageSize: 4 }, {
      TableName: 'events',
      KeyConditions: { pk: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'p1' }] } },
      QueryFilter: {
        kind: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'login' }] },
        nope: { ComparisonOperator: 'NOT_NULL' },
      },
      ConditionalOperator: 'OR',
    })) {
      pages++;
      seen.push(...page.Items.map((it) => Number(it.sk.N)));
    }
    assert.deepEqual(seen, [3, 9, 15, 21, 27]);
    assert.ok(pages >= 4, `${pages} pages`);
    // a key attribute is not for QueryFilter
    await rejectsValidation(ddb.send(new QueryCommand({
      TableName: 'events',
      KeyConditions: { pk: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'p1' }] } },
      QueryFilter: { sk: { ComparisonOperator: 'GT', AttributeValueList: [{ N: '1' }] } },
    })), /can only contain non-primary key attributes: Primary key attribute: sk/);
  });

  test('Scan with ScanFilter and ConditionalOperator; Select COUNT', async () => {
    const s = await ddb.send(new ScanCommand({
      TableName: 'events',
      ScanFilter: {
        kind: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'login' }] },
        sk: { ComparisonOperator: 'LT', AttributeValueList: [{ N: '3' }] },
      },
      ConditionalOperator: 'OR',
      Select: 'COUNT',
    }));
    assert.equal(s.Count, 12); // logins 0,3,...,27 (10) and sk 1, 2
    assert.equal(s.ScannedCount, 30);
    assert.equal(s.Items, undefined);
    const t = await ddb.send(new ScanCommand({
      TableName: 'events', ScanFilter: { kind: { ComparisonOperator: 'BEGINS_WITH', AttributeValueList: [{ S: 'cl' }] } },
      AttributesToGet: ['kind'],
    }));
    assert.equal(t.Count, 20);
    assert.ok(t.Items.every((it) => it.kind.S === 'click' && Object.keys(it).length === 1));
  });

  test('errors as DynamoDB sends them', async () => {
    await rejectsValidation(ddb.send(new GetItemCommand({
      TableName: 'users', Key: { id: { S: 'u3' } }, AttributesToGet: ['a'], ProjectionExpression: 'b',
    })), /^Can not use both expression and non-expression parameters in the same request: Non-expression parameters: \{AttributesToGet\} Expression parameters: \{ProjectionExpression\}$/);
    await rejectsValidation(ddb.send(new UpdateItemCommand({
      TableName: 'users', Key: { id: { S: 'u3' } }, AttributeUpdates: { a: { Value: { S: 'x' } } },
      ConditionExpression: 'attribute_exists(id)',
    })), /Non-expression parameters: \{AttributeUpdates\} Expression parameters: \{ConditionExpression\}/);
    await rejectsValidation(ddb.send(new PutItemCommand({
      TableName: 'users', Item: { id: { S: 'u9' } }, Expected: { v: { ComparisonOperator: 'BETWEEN', AttributeValueList: [{ N: '1' }] } },
    })), /^1 validation error detected: One or more parameter values were invalid: Invalid number of argument\(s\) for the BETWEEN ComparisonOperator$/);
    await rejectsValidation(ddb.send(new ScanCommand({
      TableName: 'events', ScanFilter: { kind: { ComparisonOperator: 'NULL', AttributeValueList: [{ S: 'x' }] } },
    })), /^One or more parameter values were invalid: Invalid number of argument\(s\) for the NULL ComparisonOperator$/);
    await rejectsValidation(ddb.send(new ScanCommand({
      TableName: 'events', ScanFilter: { kind: { ComparisonOperator: 'NULL' } }, ConditionalOperator: 'AND',
    })), /^ConditionalOperator can only be used when Filter or Expected has two or more elements$/);
    await rejectsValidation(ddb.send(new QueryCommand({
      TableName: 'events', KeyConditions: { pk: { ComparisonOperator: 'NE', AttributeValueList: [{ S: 'p0' }] } },
    })), /Attempted conditional constraint is not an indexable operation/);
    await rejectsValidation(ddb.send(new PutItemCommand({
      TableName: 'users', Item: { id: { S: 'u9' } }, Expected: { v: { Exists: true } },
    })), /Value must be provided when Exists is true for Attribute: v/);
    // nothing was written by the failed requests
    const g = await ddb.send(new GetItemCommand({ TableName: 'users', Key: { id: { S: 'u9' } } }));
    assert.equal(g.Item, undefined);
  });
});
