// TransactWriteItems and TransactGetItems of the item store through the DynamoDB JSON protocol (origin: { store:
// dynamodb }), driven by the real AWS SDK for JavaScript v3 (@aws-sdk/client-dynamodb and lib-dynamodb's document
// client): a transaction of every action type across two tables, a cancelled one (TransactionCanceledException with
// its CancellationReasons, nothing written), TransactGetItems in order, and lib-dynamodb's TransactWriteCommand and
// TransactGetCommand.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactGetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { killAll, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient, rejectsValidation } from './dynamo.mjs';

after(killAll);

describe('DynamoDB transactions (AWS SDK v3)', () => {
  let edge;
  let ddb;
  let doc;
  before(async () => {
    edge = await startEdge(STORE_CONF, { dir: tempDir('ep-ddb-transact-') });
    ddb = ddbClient(edge.ports[0]);
    doc = DynamoDBDocumentClient.from(ddb);
    await ddb.send(new CreateTableCommand({
      TableName: 'accounts',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    await ddb.send(new CreateTableCommand({
      TableName: 'ledger',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'seq', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'seq', AttributeType: 'N' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
    for (const [id, balance] of [['alice', '100'], ['bob', '20'], ['carol', '5']]) {
      await ddb.send(new PutItemCommand({ TableName: 'accounts', Item: { id: { S: id }, balance: { N: balance } } }));
    }
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('TransactWriteItems: Put, Update, Delete and ConditionCheck across two tables, all applied', async () => {
    const out = await ddb.send(new TransactWriteItemsCommand({
      ClientRequestToken: 'transfer-1',
      TransactItems: [
        {
          Update: {
            TableName: 'accounts', Key: { id: { S: 'alice' } },
            UpdateExpression: 'SET balance = balance - :amt', ConditionExpression: 'balance >= :amt',
            ExpressionAttributeValues: { ':amt': { N: '30' } },
          },
        },
        {
          Update: {
            TableName: 'accounts', Key: { id: { S: 'bob' } },
            UpdateExpression: 'SET balance = balance + :amt', ExpressionAttributeValues: { ':amt': { N: '30' } },
          },
        },
        { Put: { TableName: 'ledger', Item: { pk: { S: 'alice' }, seq: { N: '1' }, amt: { N: '-30' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
        { Delete: { TableName: 'accounts', Key: { id: { S: 'carol' } } } },
        { ConditionCheck: { TableName: 'ledger', Key: { pk: { S: 'bob' }, seq: { N: '9' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
      ],
    }));
    assert.equal(out.$metadata.httpStatusCode, 200);
    const a = await ddb.send(new GetItemCommand({ TableName: 'accounts', Key: { id: { S: 'alice' } } }));
    assert.deepEqual(a.Item, { id: { S: 'alice' }, balance: { N: '70' } });
    const b = await ddb.send(new GetItemCommand({ TableName: 'accounts', Key: { id: { S: 'bob' } } }));
    assert.deepEqual(b.Item, { id: { S: 'bob' }, balance: { N: '50' } });
    const c = await ddb.send(new GetItemCommand({ TableName: 'accounts', Key: { id: { S: 'carol' } } }));
    assert.equal(c.Item, undefined);
    const l = await ddb.send(new GetItemCommand({ TableName: 'ledger', Key: { pk: { S: 'alice' }, seq: { N: '1' } } }));
    assert.deepEqual(l.Item, { pk: { S: 'alice' }, seq: { N: '1' }, amt: { N: '-30' } });
    const d = await ddb.send(new DescribeTableCommand({ TableName: 'accounts' }));
    assert.equal(d.Table.ItemCount, 2);
  });

  test('a failed condition cancels the whole transaction: TransactionCanceledException with CancellationReasons', async () => {
    await assert.rejects(
      ddb.send(new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: 'ledger', Item: { pk: { S: 'bob' }, seq: { N: '1' } } } },
          {
            ConditionCheck: {
              TableName: 'accounts', Key: { id: { S: 'alice' } }, ConditionExpression: 'balance >= :big',
              ExpressionAttributeValues: { ':big': { N: '1000' } }, ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          { Delete: { TableName: 'accounts', Key: { id: { S: 'bob' } } } },
        ],
      })),
      (e) => {
        assert.ok(e instanceof TransactionCanceledException);
        assert.equal(e.name, 'TransactionCanceledException');
        assert.equal(e.$metadata.httpStatusCode, 400);
        assert.match(e.message, /\[None, ConditionalCheckFailed, None\]/);
        assert.equal(e.CancellationReasons.length, 3);
        assert.equal(e.CancellationReasons[0].Code, 'None');
        assert.equal(e.CancellationReasons[1].Code, 'ConditionalCheckFailed');
        assert.equal(e.CancellationReasons[1].Message, 'The conditional request failed');
        assert.deepEqual(e.CancellationReasons[1].Item, { id: { S: 'alice' }, balance: { N: '70' } });
        assert.equal(e.CancellationReasons[2].Code, 'None');
        return true;
      },
    );
    const l = await ddb.send(new GetItemCommand({ TableName: 'ledger', Key: { pk: { S: 'bob' }, seq: { N: '1' } } }));
    assert.equal(l.Item, undefined);
    const b = await ddb.send(new GetItemCommand({ TableName: 'accounts', Key: { id: { S: 'bob' } } }));
    assert.deepEqual(b.Item, { id: { S: 'bob' }, balance: { N: '50' } });
  });

  test('TransactGetItems: items in request order, {} for a missing one, projections', async () => {
    const out = await ddb.send(new TransactGetItemsCommand({
      TransactItems: [
        { Get: { TableName: 'accounts', Key: { id: { S: 'bob' } } } },
        { Get: { TableName: 'accounts', Key: { id: { S: 'carol' } } } },
        { Get: { TableName: 'ledger', Key: { pk: { S: 'alice' }, seq: { N: '1' } }, ProjectionExpression: '#a', ExpressionAttributeNames: { '#a': 'amt' } } },
      ],
    }));
    assert.equal(out.Responses.length, 3);
    assert.deepEqual(out.Responses[0].Item, { id: { S: 'bob' }, balance: { N: '50' } });
    assert.equal(out.Responses[1].Item, undefined);
    assert.deepEqual(out.Responses[2].Item, { amt: { N: '-30' } });
  });

  test('the document client: TransactWriteCommand and TransactGetCommand with native values', async () => {
    await doc.send(new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName: 'accounts', Item: { id: 'dave', balance: 7, tags: new Set(['new']) }, ConditionExpression: 'attribute_not_exists(id)' } },
        { Update: { TableName: 'accounts', Key: { id: 'bob' }, UpdateExpression: 'ADD balance :one', ExpressionAttributeValues: { ':one': 1 } } },
      ],
    }));
    const got = await doc.send(new TransactGetCommand({
      TransactItems: [{ Get: { TableName: 'accounts', Key: { id: 'dave' } } }, { Get: { TableName: 'accounts', Key: { id: 'bob' } } }],
    }));
    assert.deepEqual(got.Responses.map((r) => r.Item), [
      { id: 'dave', balance: 7, tags: new Set(['new']) },
      { id: 'bob', balance: 51 },
    ]);
    await assert.rejects(
      doc.send(new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: 'accounts', Item: { id: 'dave', balance: 0 }, ConditionExpression: 'attribute_not_exists(id)' } },
        ],
      })),
      (e) => {
        assert.equal(e.name, 'TransactionCanceledException');
        assert.deepEqual(e.CancellationReasons.map((r) => r.Code), ['ConditionalCheckFailed']);
        return true;
      },
    );
  });

  test('validation: two actions on one item, 101 actions, unknown tables', async () => {
    await rejectsValidation(ddb.send(new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: 'accounts', Item: { id: { S: 'x1' } } } },
        { Delete: { TableName: 'accounts', Key: { id: { S: 'x1' } } } },
      ],
    })), /Transaction request cannot include multiple operations on one item/);
    const many = Array.from({ length: 101 }, (_, i) => ({ Put: { TableName: 'ledger', Item: { pk: { S: 'm' }, seq: { N: String(i) } } } }));
    await rejectsValidation(ddb.send(new TransactWriteItemsCommand({ TransactItems: many })), /Member must have length less than or equal to 100/);
    await ddb.send(new TransactWriteItemsCommand({ TransactItems: many.slice(0, 100) }));
    const d = await ddb.send(new DescribeTableCommand({ TableName: 'ledger' }));
    assert.equal(d.Table.ItemCount, 101);
    await assert.rejects(
      ddb.send(new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: 'nope', Key: { id: { S: 'a' } } } }] })),
      (e) => e.name === 'ResourceNotFoundException',
    );
    const x = await ddb.send(new GetItemCommand({ TableName: 'accounts', Key: { id: { S: 'x1' } } }));
    assert.equal(x.Item, undefined);
  });
});
