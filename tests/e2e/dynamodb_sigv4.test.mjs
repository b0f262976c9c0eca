// SigV4 verification on the DynamoDB API (store: { access_keys }): the real AWS SDK signs, edgeproxy checks. Good
// signatures pass (at / and under a path prefix, reads and writes); a wrong secret, an unknown key, a missing or
// malformed Authorization header, a stale X-Amz-Date and a tampered body are refused with DynamoDB's error types.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { h1, killAll, startEdge, tempDir } from './lib.mjs';

after(killAll);

const CONF = `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
store:
  access_keys:
    - { id: AKIDEDGE1, secret: "s3cr3t/with+chars=" }
    - { id: AKIDEDGE2, secret: other }
hosts:
  "*":
    routes:
      - path: /ddb/
        origin: { store: dynamodb }
      - path: /
        origin: { store: dynamodb }
`;

function client(port, { id = 'AKIDEDGE1', secret = 's3cr3t/with+chars=', base = '', offset = 0 } = {}) {
  return new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}${base}`,
    region: 'eu-west-3',
    credentials: { accessKeyId: id, secretAccessKey: secret },
    maxAttempts: 1,
    systemClockOffset: offset,
  });
}

async function rejectsType(promise, name, message) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, name);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('SigV4 verification', () => {
  let edge;
  let port;
  before(async () => {
    edge = await startEdge(CONF, { dir: tempDir('ep-sigv4-') });
    port = edge.ports[0];
    await client(port).send(
      new CreateTableCommand({
        TableName: 'signed',
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  });
  after(async () => edge && edge.stopClean());

  test('good signatures pass, with either key, at / and under a path', async () => {
    await client(port).send(new PutItemCommand({ TableName: 'signed', Item: { id: { S: 'a' }, v: { N: '1' } } }));
    const got = await client(port, { id: 'AKIDEDGE2', secret: 'other' }).send(
      new GetItemCommand({ TableName: 'signed', Key: { id: { S: 'a' } } }),
    );
    assert.equal(got.Item.v.N, '1');
    const under = await client(port, { base: '/ddb/' }).send(new ListTablesCommand({}));
    assert.deepEqual(under.TableNames, ['signed']);
  });

  test('a wrong secret is an InvalidSignatureException and writes nothing', async () => {
    await rejectsType(
      client(port, { secret: 'wrong' }).send(new PutItemCommand({ TableName: 'signed', Item: { id: { S: 'b' } } })),
      'InvalidSignatureException',
      /signature we calculated does not match/,
    );
    const got = await client(port).send(new GetItemCommand({ TableName: 'signed', Key: { id: { S: 'b' } } }));
    assert.equal(got.Item, undefined);
  });

  test('an unknown access key is an UnrecognizedClientException', async () => {
    await rejectsType(client(port, { id: 'AKIDNOPE' }).send(new ListTablesCommand({})), 'UnrecognizedClientException', /security token/);
  });

  test('a request signed 20 minutes ago is refused', async () => {
    await rejectsType(client(port, { offset: -20 * 60 * 1000 }).send(new ListTablesCommand({})), 'InvalidSignatureException', /expired/);
  });

  test('no Authorization, a malformed one, or a tampered body are refused', async () => {
    const headers = { 'x-amz-target': 'DynamoDB_20120810.ListTables', 'content-type': 'application/x-amz-json-1.0' };
    let res = await h1({ port, method: 'POST', path: '/', headers, body: '{}' });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).__type, 'com.amazon.coral.service#MissingAuthenticationTokenException');
    res = await h1({ port, method: 'POST', path: '/', headers: { ...headers, authorization: 'AWS4-HMAC-SHA256 Credential=x' }, body: '{}' });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).__type, 'com.amazon.coral.service#IncompleteSignatureException');
    // the Host must be among the signed headers
    res = await h1({
      port, method: 'POST', path: '/', body: '{}',
      headers: {
        ...headers,
        'x-amz-date': '20260101T000000Z',
        authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEDGE1/20260101/eu-west-3/dynamodb/aws4_request, ' +
          'SignedHeaders=x-amz-date;x-amz-target, Signature=' + '0'.repeat(64),
      },
    });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).__type, 'com.amazon.coral.service#IncompleteSignatureException');
    assert.match(JSON.parse(res.body).message, /Host/);
    // sign a PutItem with the SDK, then replay it with another body
    let signed;
    const c = client(port);
    c.middlewareStack.add(
      (next) => async (args) => {
        signed = { headers: { ...args.request.headers }, body: args.request.body };
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
    await c.send(new PutItemCommand({ TableName: 'signed', Item: { id: { S: 'c' }, v: { N: '1' } } }));
    const replay = { ...signed.headers };
    delete replay.host;
    res = await h1({ port, method: 'POST', path: '/', headers: replay, body: signed.body });
    assert.equal(res.status, 200, res.body); // the same request again is good
    res = await h1({ port, method: 'POST', path: '/', headers: replay, body: signed.body.replace('"1"', '"2"') });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).__type, 'com.amazon.coral.service#InvalidSignatureException');
    const got = await client(port).send(new GetItemCommand({ TableName: 'signed', Key: { id: { S: 'c' } } }));
    assert.equal(got.Item.v.N, '1');
  });
});
