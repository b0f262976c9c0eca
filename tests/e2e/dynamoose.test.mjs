// The item store through Dynamoose (npm, pinned in package-lock.json), the DynamoDB modeling library, on the AWS SDK
// for JavaScript v3, against the real binary: tables created by Dynamoose from its models (a GSI and an LSI declared in
// the schema; a GSI added to an existing table by `update: ['indexes']`, through UpdateTable), validation, defaults and
// timestamps, create / get / update ($SET, $ADD, $REMOVE, $DELETE) / delete with conditions, queries on the table and on its
// indexes (paged with limit() and all()), scans with filters, batchGet / batchPut / batchDelete, transactions, and TTL
// (the `expires` table option: expired items are not returned).
//
// Every test reads back from the server: through Dynamoose and through the document client of the AWS SDK, which sees
// what is stored (Dynamoose's timestamps as numbers of milliseconds, its TTL attribute in epoch seconds). Every request
// Dynamoose sends is recorded by a middleware on its client, and a failing test prints the requests it made.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import dynamoose from 'dynamoose';
import { killAll, sleep, startEdge } from './lib.mjs';
import { STORE_CONF, ddbClient } from './dynamo.mjs';

after(killAll);

// Every table on demand: with provisioned throughput, Dynamoose 4.2.0's `update: ['indexes']` compares each described
// GSI's ProvisionedThroughput (which carries NumberOfDecreasesToday, on DynamoDB as here) with its own {Read, Write} and
// deletes the index it takes for changed. initialize: false and an awaited initialize(): a failing set-up fails the test
// instead of being an unhandled rejection.
const TABLE_OPTS = { throughput: 'ON_DEMAND', initialize: false, waitForActive: { enabled: true, check: { timeout: 10000, frequency: 100 } } };

describe('Dynamoose 4 against the item store', () => {
  let edge;
  let ddb; // Dynamoose's client (dynamoose.aws.ddb)
  let raw; // the AWS SDK's own client, to read back what is stored
  let doc;
  const sent = []; // every request Dynamoose sent: { op, body, error }

  // A test body that, when it fails, reports the requests Dynamoose sent during it (the exact JSON).
  const logged = (fn) => async (t) => {
    const from = sent.length;
    try {
      await fn(t);
    } catch (e) {
      const reqs = sent.slice(from).map((r) => `  ${r.op} ${r.body}${r.error ? `\n    -> ${r.error}` : ''}`).join('\n');
      e.message = `${e.message}\nrequests sent by Dynamoose:\n${reqs}`;
      throw e;
    }
  };
  const sentSince = (from, op) => sent.slice(from).filter((r) => !op || r.op === op);
  const stored = async (TableName, Key) => (await doc.send(new GetCommand({ TableName, Key }))).Item;
  const scanAll = async (TableName) => (await doc.send(new ScanCommand({ TableName }))).Items;
  const describe_ = async (TableName) => (await raw.send(new DescribeTableCommand({ TableName }))).Table;

  // Models (defined once: Dynamoose registers them by name)
  let User;
  let Post;
  let Session;

  before(async () => {
    edge = await startEdge(STORE_CONF);
    const [port] = edge.ports;
    ddb = new dynamoose.aws.ddb.DynamoDB({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'local',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
    ddb.middlewareStack.add(
      (next, context) => async (args) => {
        const r = { op: context.commandName, body: String(args.request && args.request.body) };
        sent.push(r);
        try {
          return await next(args);
        } catch (e) {
          r.error = `${e.name}: ${e.message}`;
          throw e;
        }
      },
      { step: 'finalizeRequest', name: 'edgeproxyRecordRequests' },
    );
    dynamoose.aws.ddb.set(ddb);
    raw = ddbClient(port);
    doc = DynamoDBDocumentClient.from(raw);

    User = dynamoose.model(
      'dm_users',
      new dynamoose.Schema(
        {
          id: { type: String, hashKey: true },
          email: { type: String, required: true, validate: (v) => /^[^@]+@[^@]+$/.test(v) },
          role: { type: String, enum: ['admin', 'user'], default: 'user' },
          age: { type: Number, validate: (v) => v >= 0 && v <= 150 },
          visits: { type: Number, default: 0 },
          nick: String,
          tags: { type: Set, schema: [String] },
        },
        { timestamps: true },
      ),
    );
    await new dynamoose.Table('dm_users', [User], TABLE_OPTS).initialize();

    Post = dynamoose.model(
      'dm_posts',
      new dynamoose.Schema({
        author: { type: String, hashKey: true },
        ts: { type: Number, rangeKey: true },
        status: { type: String, index: { name: 'byStatus', type: 'global', rangeKey: 'score' } },
        score: { type: Number, index: { name: 'byScore', type: 'local' } },
        title: String,
      }),
    );
    await new dynamoose.Table('dm_posts', [Post], TABLE_OPTS).initialize();

    Session = dynamoose.model('dm_sessions', new dynamoose.Schema({ id: { type: String, hashKey: true }, data: String }));
    await new dynamoose.Table('dm_sessions', [Session], { ...TABLE_OPTS, expires: { ttl: 60 * 60 * 1000, attribute: 'expiresAt', items: { returnExpired: true } } }).initialize();
  });

  after(async () => {
    ddb.destroy();
    raw.destroy();
    await edge.stopClean();
  });

  test('Dynamoose creates the tables from its models: keys, a GSI and an LSI, ACTIVE', logged(async () => {
    const users = await describe_('dm_users');
    assert.equal(users.TableStatus, 'ACTIVE');
    assert.deepEqual(users.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }]);
    assert.equal(users.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');

    const posts = await describe_('dm_posts');
    assert.deepEqual(posts.KeySchema, [{ AttributeName: 'author', KeyType: 'HASH' }, { AttributeName: 'ts', KeyType: 'RANGE' }]);
    const defs = Object.fromEntries(posts.AttributeDefinitions.map((d) => [d.AttributeName, d.AttributeType]));
    assert.deepEqual(defs, { author: 'S', ts: 'N', status: 'S', score: 'N' });
    assert.equal(posts.GlobalSecondaryIndexes.length, 1);
    const gsi = posts.GlobalSecondaryIndexes[0];
    assert.equal(gsi.IndexName, 'byStatus');
    assert.equal(gsi.IndexStatus, 'ACTIVE');
    assert.deepEqual(gsi.KeySchema, [{ AttributeName: 'status', KeyType: 'HASH' }, { AttributeName: 'score', KeyType: 'RANGE' }]);
    assert.deepEqual(gsi.Projection, { ProjectionType: 'ALL' });
    assert.equal(posts.LocalSecondaryIndexes.length, 1);
    const lsi = posts.LocalSecondaryIndexes[0];
    assert.equal(lsi.IndexName, 'byScore');
    assert.deepEqual(lsi.KeySchema, [{ AttributeName: 'author', KeyType: 'HASH' }, { AttributeName: 'score', KeyType: 'RANGE' }]);

    const ttl = await raw.send(new DescribeTimeToLiveCommand({ TableName: 'dm_sessions' }));
    assert.deepEqual(ttl.TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'expiresAt' });
    // the set-up flow: DescribeTable, CreateTable, DescribeTable (waitForActive); TTL: DescribeTimeToLive, UpdateTimeToLive
    const ops = sent.map((r) => r.op);
    assert.ok(ops.includes('CreateTableCommand') && ops.includes('UpdateTimeToLiveCommand'), ops.join(' '));
  }));

  test('create: defaults and timestamps are stored; get reads them back, whole or projected', logged(async () => {
    const before_ = Date.now();
    const u = await User.create({ id: 'u1', email: 'ann@example.com', age: 30, tags: new Set(['a', 'b']) });
    assert.equal(u.role, 'user');
    const s = await stored('dm_users', { id: 'u1' });
    assert.equal(s.email, 'ann@example.com');
    assert.equal(s.role, 'user', 'default role stored');
    assert.equal(s.visits, 0, 'default visits stored');
    assert.equal(s.age, 30);
    assert.deepEqual(s.tags, new Set(['a', 'b']));
    assert.equal(typeof s.createdAt, 'number');
    assert.ok(s.createdAt >= before_ - 1000 && s.createdAt <= Date.now() + 1000, `createdAt ${s.createdAt}`);
    assert.equal(s.updatedAt, s.createdAt);

    const g = await User.get('u1');
    assert.equal(g.email, 'ann@example.com');
    assert.ok(g.createdAt instanceof Date);
    assert.equal(g.createdAt.getTime(), s.createdAt);
    assert.deepEqual(g.tags, new Set(['a', 'b']));
    assert.equal(await User.get('nobody'), undefined);
    // a projection (ProjectionExpression)
    const p = await User.get('u1', { attributes: ['email', 'age'] });
    assert.deepEqual(p.toJSON(), { email: 'ann@example.com', age: 30 });
  }));

  test('validation (validate, enum, required) refuses before sending anything', logged(async () => {
    const from = sent.length;
    await assert.rejects(User.create({ id: 'bad1', email: 'not-an-email' }), { name: 'ValidationError' });
    await assert.rejects(User.create({ id: 'bad2', email: 'b@x.org', role: 'root' }), { name: 'ValidationError' });
    await assert.rejects(User.create({ id: 'bad3' }), { name: 'ValidationError' });
    await assert.rejects(User.create({ id: 'bad4', email: 'b@x.org', age: 200 }), { name: 'ValidationError' });
    await assert.rejects(User.update({ id: 'u1' }, { role: 'root' }), { name: 'ValidationError' });
    assert.equal(sentSince(from).length, 0, 'no request sent');
    for (const id of ['bad1', 'bad2', 'bad3', 'bad4']) assert.equal(await stored('dm_users', { id }), undefined);
    assert.equal((await stored('dm_users', { id: 'u1' })).role, 'user');
  }));

  test('create with overwrite: false is conditional: ConditionalCheckFailedException; save() overwrites', logged(async () => {
    await assert.rejects(User.create({ id: 'u1', email: 'other@example.com' }), { name: 'ConditionalCheckFailedException' });
    assert.equal((await stored('dm_users', { id: 'u1' })).email, 'ann@example.com');
    const put = sent.filter((r) => r.op === 'PutItemCommand').at(-1);
    assert.match(put.body, /attribute_not_exists/);

    const u = new User({ id: 'u2', email: 'bob@example.com', role: 'admin', age: 41 });
    await u.save();
    u.age = 42;
    await u.save();
    const s = await stored('dm_users', { id: 'u2' });
    assert.equal(s.age, 42);
    assert.equal(s.role, 'admin');
  }));

  test('update: $SET, $ADD (number and set), $REMOVE, $DELETE; updatedAt moves, createdAt stays', logged(async () => {
    const s0 = await stored('dm_users', { id: 'u1' });
    await sleep(5);
    const u = await User.update({ id: 'u1' }, { $SET: { nick: 'annie' }, $ADD: { visits: 3, tags: ['c'] } });
    assert.equal(u.visits, 3);
    assert.equal(u.nick, 'annie');
    let s = await stored('dm_users', { id: 'u1' });
    assert.equal(s.visits, 3);
    assert.equal(s.nick, 'annie');
    assert.deepEqual(s.tags, new Set(['a', 'b', 'c']));
    assert.equal(s.createdAt, s0.createdAt);
    assert.ok(s.updatedAt > s0.updatedAt, `updatedAt ${s.updatedAt} > ${s0.updatedAt}`);

    await User.update({ id: 'u1' }, { $ADD: { visits: 2 }, $REMOVE: ['nick'] });
    s = await stored('dm_users', { id: 'u1' });
    assert.equal(s.visits, 5);
    assert.equal('nick' in s, false);
    // plain attributes are $SET; $DELETE takes elements out of a set
    await User.update({ id: 'u1' }, { age: 31, $DELETE: { tags: ['a', 'zz'] } });
    s = await stored('dm_users', { id: 'u1' });
    assert.equal(s.age, 31);
    assert.deepEqual(s.tags, new Set(['b', 'c']));
  }));

  test('conditions on update and delete; delete', logged(async () => {
    const isAdmin = new dynamoose.Condition('role').eq('admin');
    await assert.rejects(User.update({ id: 'u1' }, { age: 99 }, { condition: isAdmin }), { name: 'ConditionalCheckFailedException' });
    assert.equal((await stored('dm_users', { id: 'u1' })).age, 31);
    await User.update({ id: 'u2' }, { age: 43 }, { condition: isAdmin });
    assert.equal((await stored('dm_users', { id: 'u2' })).age, 43);

    await User.create({ id: 'u3', email: 'cy@example.com', age: 20 });
    await assert.rejects(User.delete('u3', { condition: new dynamoose.Condition('age').gt(50) }), {
      name: 'ConditionalCheckFailedException',
    });
    assert.ok(await stored('dm_users', { id: 'u3' }));
    await User.delete('u3', { condition: new dynamoose.Condition('age').lt(50) });
    assert.equal(await stored('dm_users', { id: 'u3' }), undefined);
    assert.equal(await User.get('u3'), undefined);
  }));

  test('scan with filters, count', logged(async () => {
    await User.batchPut([
      { id: 's1', email: 's1@x.org', age: 10, role: 'admin' },
      { id: 's2', email: 's2@x.org', age: 20 },
      { id: 's3', email: 's3@x.org', age: 30, role: 'admin' },
      { id: 's4', email: 's4@x.org', age: 40 },
    ]);
    const admins = await User.scan('role').eq('admin').exec();
    assert.deepEqual(admins.map((u) => u.id).sort(), ['s1', 's3', 'u2']);
    const mid = await User.scan('age').between(15, 35).and().where('id').beginsWith('s').exec();
    assert.deepEqual(mid.map((u) => u.id).sort(), ['s2', 's3']);
    const older = await User.scan(new dynamoose.Condition('age').ge(30).and().where('role').eq('user')).exec();
    assert.deepEqual(older.map((u) => u.id).sort(), ['s4', 'u1']);
    const c = await User.scan('id').beginsWith('s').count().exec();
    assert.equal(c.count, 4);
    const some = await User.scan('role').eq('admin').attributes(['id', 'role']).exec();
    some.sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(some.map((u) => ({ ...u.toJSON() })), ['s1', 's3', 'u2'].map((id) => ({ id, role: 'admin' })));
    // a parallel scan: 3 segments (Segment / TotalSegments), every item once
    const par = await User.scan().parallel(3).exec();
    assert.deepEqual(par.map((u) => u.id).sort(), (await scanAll('dm_users')).map((u) => u.id).sort());
    assert.equal(sent.filter((r) => r.op === 'ScanCommand' && /"TotalSegments":3/.test(r.body)).length, 3);
    // all() pages through a scan limited to 2 items a page
    const all = await User.scan().limit(2).all().exec();
    assert.equal(all.length, (await scanAll('dm_users')).length);
    assert.ok(all.timesScanned >= 3, `timesScanned ${all.timesScanned}`);
  }));

  test('batchPut, batchGet, batchDelete', logged(async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ id: `b${i}`, email: `b${i}@x.org`, age: i }));
    const r = await User.batchPut(items);
    assert.deepEqual(r.unprocessedItems, []);
    for (const i of [0, 7, 19]) assert.equal((await stored('dm_users', { id: `b${i}` })).age, i);
    assert.equal((await stored('dm_users', { id: 'b5' })).role, 'user', 'defaults apply to batchPut');

    const got = await User.batchGet(['b1', 'b2', 'b3', 'nope']);
    assert.deepEqual(got.map((u) => u.age).sort(), [1, 2, 3]);
    assert.deepEqual(got.unprocessedKeys, []);

    await User.batchDelete(items.slice(0, 10).map((i) => ({ id: i.id })));
    const left = (await scanAll('dm_users')).filter((u) => u.id.startsWith('b'));
    assert.deepEqual(left.map((u) => u.age).sort((a, b) => a - b), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  }));

  test('query on the hash key with sort-key conditions and order', logged(async () => {
    const posts = [];
    for (let i = 0; i < 12; i++) {
      posts.push({ author: 'alice', ts: 1000 + i, status: i % 3 === 0 ? 'draft' : 'published', score: (i * 37) % 100, title: `a${i}` });
    }
    for (let i = 0; i < 5; i++) posts.push({ author: 'bob', ts: 2000 + i, status: 'published', score: 50 + i, title: `b${i}` });
    posts.push({ author: 'carol', ts: 3000, title: 'no status, no score' }); // in neither index
    await Post.batchPut(posts);
    assert.equal((await scanAll('dm_posts')).length, 18);

    const all = await Post.query('author').eq('alice').exec();
    assert.deepEqual(all.map((p) => p.ts), posts.slice(0, 12).map((p) => p.ts));
    const range = await Post.query('author').eq('alice').where('ts').between(1003, 1006).exec();
    assert.deepEqual(range.map((p) => p.ts), [1003, 1004, 1005, 1006]);
    const gt = await Post.query('author').eq('alice').where('ts').gt(1009).sort('descending').exec();
    assert.deepEqual(gt.map((p) => p.ts), [1011, 1010]);
    const filtered = await Post.query('author').eq('alice').where('status').eq('draft').exec();
    assert.deepEqual(filtered.map((p) => p.ts), [1000, 1003, 1006, 1009]);
    const bob = await Post.query('author').eq('bob').count().exec();
    assert.equal(bob.count, 5);
    const none = await Post.query('author').eq('nobody').exec();
    assert.equal(none.length, 0);
  }));

  test('query by index with using(): the LSI and the GSI, paged with limit() and all()', logged(async () => {
    const alice = (await scanAll('dm_posts')).filter((p) => p.author === 'alice');
    const byScore = [...alice].sort((a, b) => a.score - b.score || a.ts - b.ts);

    // the LSI: alice's posts in score order
    const lsi = await Post.query('author').eq('alice').using('byScore').exec();
    assert.deepEqual(lsi.map((p) => p.score), byScore.map((p) => p.score));
    assert.equal(lsi[0].title, byScore[0].title, 'projection ALL');
    const lsiRange = await Post.query('author').eq('alice').where('score').ge(50).using('byScore').sort('descending').exec();
    assert.deepEqual(lsiRange.map((p) => p.score), byScore.filter((p) => p.score >= 50).map((p) => p.score).reverse());
    let q = sent.filter((r) => r.op === 'QueryCommand').at(-1);
    assert.equal(JSON.parse(q.body).IndexName, 'byScore');

    // the GSI: every published post (alice's and bob's), in score order
    const published = (await scanAll('dm_posts')).filter((p) => p.status === 'published').sort((a, b) => a.score - b.score);
    assert.equal(published.length, 13);
    const page = await Post.query('status').eq('published').using('byStatus').limit(5).exec();
    assert.equal(page.length, 5);
    assert.ok(page.lastKey, 'a lastKey after a limited page');
    assert.deepEqual(page.map((p) => p.score), published.slice(0, 5).map((p) => p.score));
    q = sent.filter((r) => r.op === 'QueryCommand').at(-1);
    assert.equal(JSON.parse(q.body).IndexName, 'byStatus');
    const next = await Post.query('status').eq('published').using('byStatus').limit(5).startAt(page.lastKey).exec();
    assert.deepEqual(next.map((p) => p.score), published.slice(5, 10).map((p) => p.score));

    const from = sent.length;
    const everything = await Post.query('status').eq('published').using('byStatus').limit(4).all().exec();
    assert.equal(everything.length, 13);
    assert.deepEqual(everything.map((p) => `${p.author}/${p.ts}`).sort(), published.map((p) => `${p.author}/${p.ts}`).sort());
    assert.equal(everything.timesQueried, 4);
    assert.equal(sentSince(from, 'QueryCommand').length, 4);

    const high = await Post.query('status').eq('published').where('score').gt(60).using('byStatus').exec();
    assert.deepEqual(high.map((p) => p.score), published.filter((p) => p.score > 60).map((p) => p.score));
    const drafts = await Post.query('status').eq('draft').using('byStatus').exec();
    assert.deepEqual(drafts.map((p) => p.ts).sort(), [1000, 1003, 1006, 1009]);

    // index entries follow the items: an update moves a post from one index key to another, a delete removes it
    await Post.update({ author: 'bob', ts: 2000 }, { status: 'draft' });
    await Post.delete({ author: 'alice', ts: 1000 });
    const drafts2 = await Post.query('status').eq('draft').using('byStatus').exec();
    assert.deepEqual(drafts2.map((p) => `${p.author}/${p.ts}`).sort(), ['alice/1003', 'alice/1006', 'alice/1009', 'bob/2000']);
    const pub2 = await Post.query('status').eq('published').using('byStatus').all().exec();
    assert.equal(pub2.length, 12);
  }));

  test("update: ['indexes'] adds a GSI declared in a second model to the existing table (UpdateTable)", logged(async () => {
    const V1 = dynamoose.model('dm_evolve', new dynamoose.Schema({ id: { type: String, hashKey: true }, kind: String, n: Number }));
    await new dynamoose.Table('dm_evolve', [V1], TABLE_OPTS).initialize();
    await V1.batchPut(Array.from({ length: 9 }, (_, i) => ({ id: `e${i}`, kind: i % 3 === 0 ? 'fizz' : 'plain', n: i })));
    assert.equal((await describe_('dm_evolve')).GlobalSecondaryIndexes, undefined);

    const v2 = () =>
      new dynamoose.Schema({
        id: { type: String, hashKey: true },
        kind: { type: String, index: { name: 'byKind', type: 'global', rangeKey: 'n' } },
        n: Number,
      });
    const Evolve = dynamoose.model('dm_evolve_v2', v2());
    const from = sent.length;
    await new dynamoose.Table('dm_evolve', [Evolve], { ...TABLE_OPTS, update: ['indexes'] }).initialize();
    const upd = sentSince(from, 'UpdateTableCommand');
    assert.equal(upd.length, 1, 'one UpdateTable');
    assert.ok(JSON.parse(upd[0].body).GlobalSecondaryIndexUpdates[0].Create, upd[0].body);
    const d = await describe_('dm_evolve');
    assert.equal(d.GlobalSecondaryIndexes.length, 1);
    assert.equal(d.GlobalSecondaryIndexes[0].IndexName, 'byKind');
    assert.equal(d.GlobalSecondaryIndexes[0].IndexStatus, 'ACTIVE');

    // the items written before the index exist in it (backfilled), in range-key order
    const fizz = await Evolve.query('kind').eq('fizz').using('byKind').exec();
    assert.deepEqual(fizz.map((e) => e.n), [0, 3, 6]);
    await Evolve.create({ id: 'e9', kind: 'fizz', n: 9 });
    const fizz2 = await Evolve.query('kind').eq('fizz').where('n').ge(3).using('byKind').exec();
    assert.deepEqual(fizz2.map((e) => e.id), ['e3', 'e6', 'e9']);

    // the same schema again: nothing to update
    const from2 = sent.length;
    const V3 = dynamoose.model('dm_evolve_v3', v2());
    await new dynamoose.Table('dm_evolve', [V3], { ...TABLE_OPTS, update: ['indexes'] }).initialize();
    assert.equal(sentSince(from2, 'UpdateTableCommand').length, 0);
    assert.equal((await V3.query('kind').eq('fizz').using('byKind').exec()).length, 4);
  }));

  // `update: true` runs every update step of Dynamoose's set-up flow: throughput, indexes, tags (ListTagsOfResource),
  // table class, streams.
  test('update: true adds a GSI to an existing table (tags, table class and streams read back unchanged)', logged(async () => {
    const A = dynamoose.model('dm_upd_all', new dynamoose.Schema({ id: { type: String, hashKey: true }, kind: String }));
    await new dynamoose.Table('dm_upd_all', [A], TABLE_OPTS).initialize();
    await A.create({ id: 'x1', kind: 'k' });
    const B = dynamoose.model(
      'dm_upd_all_v2',
      new dynamoose.Schema({ id: { type: String, hashKey: true }, kind: { type: String, index: { name: 'byKind', type: 'global' } } }),
    );
    await new dynamoose.Table('dm_upd_all', [B], { ...TABLE_OPTS, update: true }).initialize();
    assert.equal((await describe_('dm_upd_all')).GlobalSecondaryIndexes[0].IndexName, 'byKind');
    assert.deepEqual((await B.query('kind').eq('k').using('byKind').exec()).map((i) => i.id), ['x1']);
  }));

  test('transactions: writes commit together; a failing condition cancels them all; transactional get', logged(async () => {
    await User.create({ id: 't-del', email: 'del@x.org' });
    const s2 = await stored('dm_users', { id: 'u2' });
    await dynamoose.transaction([
      User.transaction.create({ id: 't-new', email: 'new@x.org', age: 5 }),
      User.transaction.update({ id: 'u2' }, { $ADD: { visits: 10 } }),
      User.transaction.delete({ id: 't-del' }),
      User.transaction.condition({ id: 'u1' }, new dynamoose.Condition('role').eq('user')),
      Post.transaction.update({ author: 'bob', ts: 2001 }, { title: 'edited in a transaction' }),
    ]);
    const n = await stored('dm_users', { id: 't-new' });
    assert.equal(n.email, 'new@x.org');
    assert.equal(n.role, 'user', 'defaults in a transaction');
    assert.equal((await stored('dm_users', { id: 'u2' })).visits, s2.visits + 10);
    assert.equal(await stored('dm_users', { id: 't-del' }), undefined);
    assert.equal((await stored('dm_posts', { author: 'bob', ts: 2001 })).title, 'edited in a transaction');

    // the condition fails: nothing is written
    await assert.rejects(
      dynamoose.transaction([
        User.transaction.create({ id: 't-never', email: 'never@x.org' }),
        User.transaction.update({ id: 'u2' }, { $ADD: { visits: 100 } }),
        User.transaction.condition({ id: 'u1' }, new dynamoose.Condition('role').eq('admin')),
      ]),
      (e) => {
        assert.equal(e.name, 'TransactionCanceledException');
        assert.deepEqual(e.CancellationReasons.map((r) => r.Code), ['None', 'None', 'ConditionalCheckFailed']);
        return true;
      },
    );
    assert.equal(await stored('dm_users', { id: 't-never' }), undefined);
    assert.equal((await stored('dm_users', { id: 'u2' })).visits, s2.visits + 10);
    // create (overwrite: false) of an existing item cancels too
    await assert.rejects(
      dynamoose.transaction([User.transaction.create({ id: 't-new', email: 'again@x.org' }), User.transaction.delete({ id: 'u2' })]),
      { name: 'TransactionCanceledException' },
    );
    assert.equal((await stored('dm_users', { id: 't-new' })).email, 'new@x.org');
    assert.ok(await stored('dm_users', { id: 'u2' }));

    // (only items that exist: for a missing one the server answers {} in Responses, as DynamoDB does, and Dynamoose
    // 4.2.0 throws "No value defined: {}" unmarshalling its absent Item)
    const got = await dynamoose.transaction([User.transaction.get({ id: 'u1' }), Post.transaction.get({ author: 'bob', ts: 2001 })]);
    assert.equal(got.length, 2);
    assert.equal(got[0].email, 'ann@example.com');
    assert.equal(got[0].role, 'user');
    assert.equal(got[1].title, 'edited in a transaction');
    assert.equal(sent.at(-1).op, 'TransactGetItemsCommand');
  }));

  test('TTL (expires): an item past its expiry is not returned by get, query, scan or batchGet', logged(async () => {
    const now = Date.now();
    await Session.create({ id: 'live', data: 'default expiry, an hour from now' });
    await Session.create({ id: 'soon', data: 'expires in 10 s', expiresAt: new Date(now + 10000) });
    await Session.create({ id: 'gone', data: 'expired a minute ago', expiresAt: new Date(now - 60000) });

    // stored in epoch seconds
    const live = await stored('dm_sessions', { id: 'live' });
    assert.ok(Math.abs(live.expiresAt - (now + 3600000) / 1000) < 5, `expiresAt ${live.expiresAt}`);

    assert.equal(await Session.get('gone'), undefined, 'expired: absent at once');
    assert.equal(await stored('dm_sessions', { id: 'gone' }), undefined);
    assert.equal((await Session.get('soon')).data, 'expires in 10 s');
    assert.deepEqual((await Session.scan().exec()).map((s) => s.id).sort(), ['live', 'soon']);
    assert.deepEqual((await Session.batchGet(['live', 'soon', 'gone'])).map((s) => s.id).sort(), ['live', 'soon']);

    // an expired item does not block a conditional create
    await Session.create({ id: 'gone', data: 'again' });
    assert.equal((await Session.get('gone')).data, 'again');

    // stored as Math.round(ms / 1000): expired from now + 9.5 s to now + 10.5 s (room for a slow machine before it)
    assert.ok(Date.now() < now + 9500, 'the checks above took too long');
    await sleep(now + 11200 - Date.now());
    assert.equal(await Session.get('soon'), undefined, 'expired after its time');
    assert.deepEqual((await Session.scan().exec()).map((s) => s.id).sort(), ['gone', 'live']);
    assert.equal((await Session.query('id').eq('soon').exec()).length, 0);
    assert.deepEqual((await Session.query('id').eq('live').exec()).map((s) => s.data), ['default expiry, an hour from now']);
  }));
});
