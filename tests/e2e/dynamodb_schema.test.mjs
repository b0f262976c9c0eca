// The item store's schema validation (conf: store: { tables: { NAME: { attributes: { ATTR: RULE } } } }), with the AWS
// SDK for JavaScript v3 and Dynamoose against the real binary: an item a write would leave breaking a rule (PutItem, the
// item an UpdateItem makes, BatchWriteItem, TransactWriteItems) is refused with a ValidationException naming the
// attribute, and nothing of the request is written; tables without rules are unaffected; a conf with a bad rule is
// refused by `edgeproxy -t` with FILE:LINE and the key.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import dynamoose from 'dynamoose';
import { killAll, runCli, startEdge, tempDir } from './lib.mjs';
import { ddbClient } from './dynamo.mjs';

after(killAll);

const RULES = `
store:
  tables:
    users:
      attributes:
        email: { type: S, required: true, pattern: "^[^@]+@[^@]+$" }
        age: { type: N, min: 0, max: 150 }
        role: { type: S, enum: [admin, user] }
        nick: { type: S, min_length: 2, max_length: 8 }
`;

const SCHEMA_CONF = `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
${RULES}
hosts:
  "*":
    routes:
      - path: /
        origin: { store: dynamodb }
`;

const lineOf = (text, needle) => text.slice(0, text.indexOf(needle)).split('\n').length;

// The store's wording for a broken rule.
const broken = (attr, why) => `One or more parameter values were invalid: Schema validation failed for attribute "${attr}": ${why}`;

describe('schema validation of the item store (AWS SDK v3, Dynamoose)', () => {
  let edge;
  let ddb;
  let doc;
  const get = async (TableName, id) => (await doc.send(new GetCommand({ TableName, Key: { id } }))).Item;

  // The promise rejects with a ValidationException whose message is exactly broken(attr, why).
  const refused = (promise, attr, why) =>
    assert.rejects(promise, (e) => {
      assert.equal(e.name, 'ValidationException', `${e.name}: ${e.message}`);
      assert.equal(e.$metadata?.httpStatusCode, 400);
      assert.equal(e.message, broken(attr, why));
      return true;
    });

  before(async () => {
    edge = await startEdge(SCHEMA_CONF);
    ddb = ddbClient(edge.ports[0]);
    doc = DynamoDBDocumentClient.from(ddb);
    for (const TableName of ['users', 'others']) {
      await ddb.send(new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }));
    }
  });
  after(async () => {
    ddb.destroy();
    await edge.stopClean();
  });

  test('valid items are written, bounds included', async () => {
    const items = [
      { id: 'v1', email: 'ann@example.com' },
      { id: 'v2', email: 'bob@x', age: 0, role: 'admin', nick: 'bo' },
      { id: 'v3', email: 'c@d', age: 150, role: 'user', nick: 'abcdefgh' },
      { id: 'v4', email: 'é@ü', age: 42.5, nick: 'éééééééé' }, // 8 characters, 16 bytes: characters are counted
      { id: 'v5', email: 'x@y', other: 'not in the rules', list: [1, 2] },
    ];
    for (const Item of items) await doc.send(new PutCommand({ TableName: 'users', Item }));
    for (const item of items) assert.deepEqual(await get('users', item.id), item);
    // numbers compared as numbers: 1.5E2 is 150
    await ddb.send(new PutItemCommand({ TableName: 'users', Item: { id: { S: 'v6' }, email: { S: 'e@f' }, age: { N: '1.5E2' } } }));
    assert.equal((await get('users', 'v6')).age, 150);
  });

  test('PutItem: each broken rule is a ValidationException naming the attribute, and nothing is written', async () => {
    await doc.send(new PutCommand({ TableName: 'users', Item: { id: 'keep', email: 'keep@x.org', age: 40, role: 'user', nick: 'kk' } }));
    const cases = [
      [{ email: undefined }, 'email', 'is required'],
      [{ email: 'nope' }, 'email', 'must match the pattern ^[^@]+@[^@]+$'],
      [{ email: 'a@b@c' }, 'email', 'must match the pattern ^[^@]+@[^@]+$'],
      [{ email: 5 }, 'email', 'must be of type S, not N'],
      [{ age: 151 }, 'age', 'must be at most 150'],
      [{ age: 150.001 }, 'age', 'must be at most 150'],
      [{ age: -1 }, 'age', 'must be at least 0'],
      [{ age: '30' }, 'age', 'must be of type N, not S'],
      [{ role: 'root' }, 'role', 'must be one of admin, user'],
      [{ role: 'Admin' }, 'role', 'must be one of admin, user'],
      [{ nick: 'a' }, 'nick', 'must have a length of at least 2'],
      [{ nick: 'abcdefghi' }, 'nick', 'must have a length of at most 8'],
      [{ nick: 'ééééééééé' }, 'nick', 'must have a length of at most 8'],
      [{ nick: true }, 'nick', 'must be of type S, not BOOL'],
    ];
    for (const [change, attr, why] of cases) {
      for (const id of ['new', 'keep']) {
        const Item = { id, email: 'z@z', ...change };
        if (change.email === undefined && 'email' in change) delete Item.email;
        await refused(doc.send(new PutCommand({ TableName: 'users', Item })), attr, why);
      }
    }
    assert.equal(await get('users', 'new'), undefined);
    assert.deepEqual(await get('users', 'keep'), { id: 'keep', email: 'keep@x.org', age: 40, role: 'user', nick: 'kk' });
    // with a condition that holds: still refused
    await refused(
      doc.send(new PutCommand({ TableName: 'users', Item: { id: 'new', email: 'n@n', age: 200 }, ConditionExpression: 'attribute_not_exists(id)' })),
      'age',
      'must be at most 150',
    );
    assert.equal(await get('users', 'new'), undefined);
  });

  test('UpdateItem: an update that would make a broken item is refused and changes nothing', async () => {
    const keep = await get('users', 'keep');
    const upd = (UpdateExpression, ExpressionAttributeValues, Key = { id: 'keep' }, ExpressionAttributeNames = undefined) =>
      doc.send(new UpdateCommand({ TableName: 'users', Key, UpdateExpression, ExpressionAttributeValues, ExpressionAttributeNames }));
    await refused(upd('SET age = :a', { ':a': 200 }), 'age', 'must be at most 150');
    await refused(upd('ADD age :a', { ':a': 111 }), 'age', 'must be at most 150');
    await refused(upd('SET age = age - :a', { ':a': 41 }), 'age', 'must be at least 0');
    await refused(upd('REMOVE email'), 'email', 'is required');
    await refused(upd('SET email = :e', { ':e': 'no-at-sign' }), 'email', 'must match the pattern ^[^@]+@[^@]+$');
    await refused(upd('SET nick = :n, age = :a', { ':n': 'x', ':a': 1 }), 'nick', 'must have a length of at least 2');
    await refused(upd('SET #r = :r', { ':r': 'root' }, undefined, { '#r': 'role' }), 'role', 'must be one of admin, user');
    assert.deepEqual(await get('users', 'keep'), keep, 'unchanged');
    // an update of an item that does not exist makes an item without email
    await refused(upd('SET age = :a', { ':a': 30 }, { id: 'ghost' }), 'email', 'is required');
    assert.equal(await get('users', 'ghost'), undefined);
    // valid updates go through
    await upd('SET #r = :r ADD age :one', { ':r': 'admin', ':one': 1 }, undefined, { '#r': 'role' });
    assert.deepEqual(await get('users', 'keep'), { ...keep, role: 'admin', age: 41 });
    await upd('SET email = :e, age = :a', { ':e': 'g@h', ':a': 3 }, { id: 'ghost' });
    assert.deepEqual(await get('users', 'ghost'), { id: 'ghost', email: 'g@h', age: 3 });
  });

  test('BatchWriteItem: one broken item refuses the whole batch', async () => {
    const before_ = (await doc.send(new ScanCommand({ TableName: 'users' }))).Items.length;
    await refused(
      doc.send(new BatchWriteCommand({
        RequestItems: {
          users: [
            { PutRequest: { Item: { id: 'bw1', email: 'bw1@x' } } },
            { DeleteRequest: { Key: { id: 'v1' } } },
            { PutRequest: { Item: { id: 'bw2', email: 'bw2@x', age: 999 } } },
          ],
          others: [{ PutRequest: { Item: { id: 'bw3' } } }],
        },
      })),
      'age',
      'must be at most 150',
    );
    assert.equal(await get('users', 'bw1'), undefined);
    assert.equal(await get('users', 'bw2'), undefined);
    assert.equal(await get('others', 'bw3'), undefined, 'not even in another table');
    assert.ok(await get('users', 'v1'), 'the delete did not happen');
    assert.equal((await doc.send(new ScanCommand({ TableName: 'users' }))).Items.length, before_);
    // valid: written
    await doc.send(new BatchWriteCommand({
      RequestItems: { users: [{ PutRequest: { Item: { id: 'bw1', email: 'bw1@x', nick: 'bw' } } }, { PutRequest: { Item: { id: 'bw2', email: 'bw2@x' } } }] },
    }));
    assert.equal((await get('users', 'bw1')).nick, 'bw');
    assert.ok(await get('users', 'bw2'));
  });

  test('TransactWriteItems: a broken Put or Update refuses the whole transaction', async () => {
    const keep = await get('users', 'keep');
    const tx = (TransactItems) => doc.send(new TransactWriteCommand({ TransactItems }));
    await refused(
      tx([
        { Put: { TableName: 'users', Item: { id: 'tx1', email: 'tx1@x' } } },
        { Put: { TableName: 'others', Item: { id: 'tx2' } } },
        { Delete: { TableName: 'users', Key: { id: 'v2' } } },
        { Update: { TableName: 'users', Key: { id: 'keep' }, UpdateExpression: 'SET nick = :n', ExpressionAttributeValues: { ':n': 'way-too-long' } } },
      ]),
      'nick',
      'must have a length of at most 8',
    );
    await refused(
      tx([
        { Update: { TableName: 'users', Key: { id: 'keep' }, UpdateExpression: 'ADD age :one', ExpressionAttributeValues: { ':one': 1 } } },
        { Put: { TableName: 'users', Item: { id: 'tx1' } } },
        { ConditionCheck: { TableName: 'users', Key: { id: 'v3' }, ConditionExpression: 'attribute_exists(id)' } },
      ]),
      'email',
      'is required',
    );
    assert.equal(await get('users', 'tx1'), undefined);
    assert.equal(await get('others', 'tx2'), undefined);
    assert.ok(await get('users', 'v2'));
    assert.deepEqual(await get('users', 'keep'), keep);
    // valid: written
    await tx([
      { Put: { TableName: 'users', Item: { id: 'tx1', email: 'tx1@x', role: 'user' } } },
      { Update: { TableName: 'users', Key: { id: 'keep' }, UpdateExpression: 'SET nick = :n', ExpressionAttributeValues: { ':n': 'keeper' } } },
    ]);
    assert.equal((await get('users', 'tx1')).role, 'user');
    assert.equal((await get('users', 'keep')).nick, 'keeper');
  });

  test('tables without rules are unaffected', async () => {
    const Item = { id: 'o1', age: 1000, role: 'root', nick: 'x', email: 42 };
    await doc.send(new PutCommand({ TableName: 'others', Item }));
    assert.deepEqual(await get('others', 'o1'), Item);
    await doc.send(new UpdateCommand({ TableName: 'others', Key: { id: 'o1' }, UpdateExpression: 'REMOVE email SET age = :a', ExpressionAttributeValues: { ':a': -5 } }));
    assert.deepEqual(await get('others', 'o1'), { id: 'o1', age: -5, role: 'root', nick: 'x' });
  });

  test('Dynamoose: a model that does not validate gets the server\'s ValidationException', async () => {
    const dd = new dynamoose.aws.ddb.DynamoDB({
      endpoint: `http://127.0.0.1:${edge.ports[0]}`,
      region: 'local',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
    dynamoose.aws.ddb.set(dd);
    try {
      const User = dynamoose.model('users', new dynamoose.Schema({ id: { type: String, hashKey: true }, email: String, age: Number, role: String, nick: String }));
      await new dynamoose.Table('users', [User], { throughput: 'ON_DEMAND', initialize: false }).initialize(); // exists
      await refused(User.create({ id: 'dm1', email: 'not-an-email' }), 'email', 'must match the pattern ^[^@]+@[^@]+$');
      await refused(User.create({ id: 'dm1', email: 'dm@x', role: 'owner' }), 'role', 'must be one of admin, user');
      await refused(User.update({ id: 'keep' }, { $ADD: { age: 500 } }), 'age', 'must be at most 150');
      await refused(User.batchPut([{ id: 'dm2', email: 'dm2@x' }, { id: 'dm3', email: 'dm3@x', nick: 'n' }]), 'nick', 'must have a length of at least 2');
      await refused(
        dynamoose.transaction([User.transaction.create({ id: 'dm4', email: 'dm4@x' }), User.transaction.update({ id: 'keep' }, { $REMOVE: ['email'] })]),
        'email',
        'is required',
      );
      for (const id of ['dm1', 'dm2', 'dm3', 'dm4']) assert.equal(await User.get(id), undefined);
      assert.equal((await User.get('keep')).email, 'keep@x.org');
      const ok = await User.create({ id: 'dm1', email: 'dm@x', role: 'admin', age: 7 });
      assert.equal(ok.role, 'admin');
      assert.deepEqual(await get('users', 'dm1'), { id: 'dm1', email: 'dm@x', role: 'admin', age: 7 });
    } finally {
      dd.destroy();
    }
  });
});

describe('schema validation: bad rules in the conf', () => {
  const write = (text) => {
    const file = path.join(tempDir('ep-schema-conf-'), 'edge.yaml');
    fs.writeFileSync(file, text);
    return file;
  };

  test('-t accepts the rules above', async () => {
    const r = await runCli(['-t', '-c', write(SCHEMA_CONF)]);
    assert.equal(r.code, 0, r.stderr);
  });

  const cases = [
    ['an unknown type', 'age: { type: N, min: 0, max: 150 }', 'age: { type: INT, min: 0 }', 'type: INT', 'store.tables."users".attributes.age.type: expected one of S, N, B, BOOL, NULL, L, M, SS, NS, BS'],
    ['min on an S attribute', 'nick: { type: S, min_length: 2, max_length: 8 }', 'nick: { type: S, min: 2 }', 'nick: { type: S, min: 2 }', 'store.tables."users".attributes.nick.min: needs type: N'],
    ['a bad regular expression', 'pattern: "^[^@]+@[^@]+$"', 'pattern: "^[a-z"', 'pattern: "^[a-z"', 'store.tables."users".attributes.email.pattern: bad regular expression: '],
    ['enum on a BOOL attribute', 'role: { type: S, enum: [admin, user] }', 'role: { type: BOOL, enum: [admin] }', 'role: { type: BOOL', 'store.tables."users".attributes.role.enum: needs type: S or N'],
    ['min_length on an N attribute', 'age: { type: N, min: 0, max: 150 }', 'age: { type: N, min_length: 1 }', 'age: { type: N, min_length', 'store.tables."users".attributes.age.min_length: is for strings, binaries, lists, maps and sets'],
    ['max that is not a number', 'max: 150', 'max: lots', 'max: lots', 'store.tables."users".attributes.age.max: expected a number'],
    ['an unknown rule key', 'age: { type: N, min: 0, max: 150 }', 'age: { type: N, maximum: 150 }', 'maximum', 'store.tables."users".attributes.age.maximum: unknown key'],
  ];
  for (const [what, from, to, needle, key] of cases) {
    test(`-t refuses ${what}: exit 1, FILE:LINE, the key and why`, async () => {
      const text = SCHEMA_CONF.replace(from, to);
      assert.notEqual(text, SCHEMA_CONF);
      const file = write(text);
      const r = await runCli(['-t', '-c', file]);
      assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(`${file}:${lineOf(text, needle)}: ${key}`), `stderr: ${r.stderr}`);
    });
  }
});
