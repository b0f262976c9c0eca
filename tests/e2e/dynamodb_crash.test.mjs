// Crash safety of the item store: clients write continuously through the DynamoDB API (the real AWS SDK, no retries)
// while edgeproxy is killed with SIGKILL at a random moment, 50 times, on one data_dir. After each restart every
// acknowledged write must be there, a write whose answer never came may or may not be, and no transaction may be half
// there (nor ever seen half done by a reader while the writes run).
//
// The writers of a round, all at once until the kill:
//   - PutItem of new items (each acknowledged one must come back exactly), and overwrites of one item per writer with
//     increasing versions (it must hold the last acknowledged version, or the one in flight at the kill);
//   - UpdateItem ADD on one counter (its value is at least the acknowledged increments, at most those plus the ones
//     in flight);
//   - TransactWriteItems of two new items in two tables (both or neither), and transfers between two accounts in two
//     tables (the sum of the balances never changes; both count the transfers, and the counts stay equal);
//   - a reader: TransactGetItems of the two accounts (the sum and the counts are right at every moment).
// The kill comes 20..200 ms after the first write is acknowledged. EDGEPROXY_CRASH_ROUNDS changes the number of rounds,
// EDGEPROXY_CRASH_SEED the random delays (the seed is printed on failure).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  CreateTableCommand,
  PutItemCommand,
  ScanCommand,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { killAll, sleep, startEdge, tempDir } from './lib.mjs';
import { STORE_CONF, ddbClient } from './dynamo.mjs';

after(killAll);

const ROUNDS = Number(process.env.EDGEPROXY_CRASH_ROUNDS || 50);
const SEED = Number(process.env.EDGEPROXY_CRASH_SEED || Math.floor(Math.random() * 2 ** 31));
const PUT_WRITERS = 3;
const COUNTER_WRITERS = 3;
const PAIR_WRITERS = 2;
const TRANSFER_WRITERS = 2;
const TOTAL = 2000; // the two accounts' balances together

// mulberry32: the kill delays and transfer amounts, reproducible from SEED
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const randInt = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

const pad = (key) => `${key}:`.repeat(1 + (key.length * 7) % 40).slice(0, 200);
const S = (s) => ({ S: s });
const N = (n) => ({ N: String(n) });

// What the client knows. 'acked': the store answered 200, so the write is on disk; 'unknown': sent, no answer (the kill
// came first). Each restart's check settles the unknown ones (there or not: the process that had them is gone).
const model = {
  settled: { applied: 0, lost: 0 }, // writes in flight at a kill: found applied after the restart, or not
  puts: new Map(), // key -> { writer, seq, state }
  hot: [], // per put writer: { acked: version or null, unknown: version or null } of item h-<writer>
  pairs: new Map(), // id -> state
  counter: { base: 0, acked: 0, unknown: 0 }, // increments since the last check on top of base
  transfers: { base: 0, acked: 0, unknown: 0 },
};

// A request's failure: after the kill, a request without an HTTP answer has an unknown outcome; anything else (an
// error answer, or any failure while the process lives) fails the test.
function unknownOutcome(run, e) {
  const status = e && e.$metadata && e.$metadata.httpStatusCode;
  if (run.killed && (status === undefined || status === 200)) return true;
  throw e;
}

async function putWriter(run, ddb, w) {
  for (let seq = 0; !run.killed; ++seq) {
    if (seq % 2 === 0) {
      const key = `p-${run.round}-${w}-${seq}`;
      const rec = { writer: w, seq, state: 'unknown' };
      model.puts.set(key, rec);
      try {
        await ddb.send(new PutItemCommand({ TableName: 'crash', Item: { pk: S(key), v: N(seq), w: N(w), pad: S(pad(key)) } }));
        rec.state = 'acked';
        run.acked();
      } catch (e) {
        if (unknownOutcome(run, e)) return;
      }
    } else {
      const hot = model.hot[w];
      const version = run.round * 1e6 + seq;
      hot.unknown = version;
      try {
        await ddb.send(new PutItemCommand({ TableName: 'crash', Item: { pk: S(`h-${w}`), version: N(version), pad: S(pad(`h${version}`)) } }));
        hot.acked = version;
        hot.unknown = null;
        run.acked();
      } catch (e) {
        if (unknownOutcome(run, e)) return;
      }
    }
  }
}

async function counterWriter(run, ddb) {
  while (!run.killed) {
    model.counter.unknown++;
    try {
      await ddb.send(new UpdateItemCommand({
        TableName: 'crash', Key: { pk: S('counter') }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': N(1) },
      }));
      model.counter.unknown--;
      model.counter.acked++;
      run.acked();
    } catch (e) {
      if (unknownOutcome(run, e)) return;
    }
  }
}

async function pairWriter(run, ddb, w) {
  for (let seq = 0; !run.killed; ++seq) {
    const id = `${run.round}-${w}-${seq}`;
    model.pairs.set(id, 'unknown');
    try {
      await ddb.send(new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: 'crash', Item: { pk: S(`a-${id}`), pair: S(id) } } },
          { Put: { TableName: 'crash_b', Item: { pk: S(`b-${id}`), pair: S(id), pad: S(pad(id)) } } },
        ],
      }));
      model.pairs.set(id, 'acked');
      run.acked();
    } catch (e) {
      if (unknownOutcome(run, e)) return;
    }
  }
}

async function transferWriter(run, ddb) {
  while (!run.killed) {
    const x = N(randInt(-50, 50));
    model.transfers.unknown++;
    try {
      await ddb.send(new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: 'crash', Key: { pk: S('acct') }, UpdateExpression: 'SET bal = bal - :x ADD n :one',
              ExpressionAttributeValues: { ':x': x, ':one': N(1) },
            },
          },
          {
            Update: {
              TableName: 'crash_b', Key: { pk: S('acct') }, UpdateExpression: 'SET bal = bal + :x ADD n :one',
              ExpressionAttributeValues: { ':x': x, ':one': N(1) },
            },
          },
        ],
      }));
      model.transfers.unknown--;
      model.transfers.acked++;
      run.acked();
    } catch (e) {
      if (unknownOutcome(run, e)) return;
    }
  }
}

function checkAccounts(a, b, what) {
  assert.ok(a && b, `${what}: an account is missing`);
  assert.equal(Number(a.bal.N) + Number(b.bal.N), TOTAL, `${what}: the balances do not add up: ${a.bal.N} + ${b.bal.N}`);
  assert.equal(a.n.N, b.n.N, `${what}: half a transfer: the accounts count ${a.n.N} and ${b.n.N} transfers`);
  return Number(a.n.N);
}

async function reader(run, ddb) {
  while (!run.killed) {
    try {
      const r = await ddb.send(new TransactGetItemsCommand({
        TransactItems: [{ Get: { TableName: 'crash', Key: { pk: S('acct') } } }, { Get: { TableName: 'crash_b', Key: { pk: S('acct') } } }],
      }));
      checkAccounts(r.Responses[0].Item, r.Responses[1].Item, `round ${run.round}, a read while writing`);
      await sleep(2); // leave the CPU to the writers (an ASan build on two cores)
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      if (unknownOutcome(run, e)) return;
    }
  }
}

async function scanAll(ddb, table) {
  const items = new Map();
  let ExclusiveStartKey;
  do {
    const r = await ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey }));
    for (const it of r.Items) items.set(it.pk.S, it);
    ExclusiveStartKey = r.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

// After a restart: every acknowledged write is there, transactions are whole; the unknown outcomes are settled.
async function check(ddb, what) {
  const [t1, t2] = await Promise.all([scanAll(ddb, 'crash'), scanAll(ddb, 'crash_b')]);

  for (const [key, rec] of model.puts) {
    const it = t1.get(key);
    if (!it) {
      assert.notEqual(rec.state, 'acked', `${what}: the acknowledged PutItem of ${key} is lost`);
      model.puts.delete(key);
      model.settled.lost++;
      continue;
    }
    assert.deepEqual(it, { pk: S(key), v: N(rec.seq), w: N(rec.writer), pad: S(pad(key)) }, `${what}: ${key} is not as written`);
    if (rec.state === 'unknown') model.settled.applied++;
    rec.state = 'acked';
  }
  for (let w = 0; w < PUT_WRITERS; ++w) {
    const hot = model.hot[w];
    const it = t1.get(`h-${w}`);
    if (hot.acked === null && hot.unknown === null) continue;
    const allowed = [hot.acked, hot.unknown].filter((v) => v !== null);
    if (!it) {
      assert.equal(hot.acked, null, `${what}: h-${w} (acknowledged version ${hot.acked}) is lost`);
      hot.unknown = null;
      continue;
    }
    const version = Number(it.version.N);
    assert.ok(allowed.includes(version), `${what}: h-${w} holds version ${version}; acknowledged ${hot.acked}, in flight ${hot.unknown}`);
    assert.equal(it.pad.S, pad(`h${version}`), `${what}: h-${w} is not as written`);
    hot.acked = version;
    hot.unknown = null;
  }
  for (const key of t1.keys()) {
    if (key.startsWith('p-')) assert.ok(model.puts.has(key), `${what}: ${key} was never written`);
  }

  for (const [id, state] of model.pairs) {
    const a = t1.get(`a-${id}`);
    const b = t2.get(`b-${id}`);
    assert.equal(!!a, !!b, `${what}: half a transaction: pair ${id} has ${a ? 'a' : 'b'} alone`);
    if (!a) {
      assert.notEqual(state, 'acked', `${what}: the acknowledged transaction of pair ${id} is lost`);
      model.pairs.delete(id);
      model.settled.lost++;
      continue;
    }
    if (state === 'unknown') model.settled.applied++;
    assert.equal(a.pair.S, id);
    assert.equal(b.pad.S, pad(id), `${what}: pair ${id}'s b is not as written`);
    model.pairs.set(id, 'acked');
  }
  for (const key of t1.keys()) if (key.startsWith('a-')) assert.ok(model.pairs.has(key.slice(2)), `${what}: ${key} was never written`);
  for (const key of t2.keys()) if (key.startsWith('b-')) assert.ok(model.pairs.has(key.slice(2)), `${what}: ${key} was never written`);

  const c = model.counter;
  const n = Number(t1.get('counter').n.N);
  assert.ok(n >= c.base + c.acked && n <= c.base + c.acked + c.unknown,
    `${what}: the counter is ${n}; acknowledged ${c.base + c.acked}, in flight ${c.unknown}`);
  model.settled.applied += n - c.base - c.acked;
  model.settled.lost += c.base + c.acked + c.unknown - n;
  model.counter = { base: n, acked: 0, unknown: 0 };

  const t = model.transfers;
  const done = checkAccounts(t1.get('acct'), t2.get('acct'), what);
  assert.ok(done >= t.base + t.acked && done <= t.base + t.acked + t.unknown,
    `${what}: the accounts count ${done} transfers; acknowledged ${t.base + t.acked}, in flight ${t.unknown}`);
  model.settled.applied += done - t.base - t.acked;
  model.settled.lost += t.base + t.acked + t.unknown - done;
  model.transfers = { base: done, acked: 0, unknown: 0 };
}

async function setup(ddb) {
  for (const TableName of ['crash', 'crash_b']) {
    await ddb.send(new CreateTableCommand({
      TableName, KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST',
    }));
  }
  await ddb.send(new PutItemCommand({ TableName: 'crash', Item: { pk: S('acct'), bal: N(TOTAL / 2), n: N(0) } }));
  await ddb.send(new PutItemCommand({ TableName: 'crash_b', Item: { pk: S('acct'), bal: N(TOTAL / 2), n: N(0) } }));
  await ddb.send(new PutItemCommand({ TableName: 'crash', Item: { pk: S('counter'), n: N(0) } }));
  for (let w = 0; w < PUT_WRITERS; ++w) model.hot.push({ acked: null, unknown: null });
}

// One round: writes flow, the process is killed 20..200 ms after the first acknowledgement; returns the number of
// acknowledged writes.
async function round(edge, ddb, r) {
  let acked = 0;
  let firstAck;
  const flowing = new Promise((resolve) => (firstAck = resolve));
  const run = {
    round: r,
    killed: false,
    acked: () => {
      acked++;
      firstAck();
    },
  };
  const kill = () => {
    if (run.killed) return;
    run.killed = true;
    edge.proc.kill('SIGKILL');
  };
  const writers = [];
  for (let w = 0; w < PUT_WRITERS; ++w) writers.push(putWriter(run, ddb, w));
  for (let w = 0; w < COUNTER_WRITERS; ++w) writers.push(counterWriter(run, ddb));
  for (let w = 0; w < PAIR_WRITERS; ++w) writers.push(pairWriter(run, ddb, w));
  for (let w = 0; w < TRANSFER_WRITERS; ++w) writers.push(transferWriter(run, ddb));
  writers.push(reader(run, ddb));
  // a writer that fails while the process lives ends the round at once
  const all = Promise.all(writers.map((p) => p.catch((e) => {
    kill();
    throw e;
  })));
  all.catch(() => {});
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(reject, 20000, new Error(`round ${r}: no write acknowledged in 20 s`))));
  try {
    await Promise.race([flowing, all, timeout]);
    await Promise.race([sleep(randInt(20, 200)), all]);
  } finally {
    clearTimeout(timer);
    kill();
  }
  await all;
  await edge.exited;
  return acked;
}

// its own time limit: 50 rounds on the sanitizer build of a loaded machine may pass the suite's 3 minutes per test
test(`${ROUNDS} SIGKILLs while writing: acknowledged writes survive, transactions are all or nothing`, { timeout: 600000 }, async (t) => {
  const dir = tempDir('ep-crash-');
  let total = 0;
  let edge = await startEdge(STORE_CONF, { dir });
  let ddb = ddbClient(edge.ports[0]);
  try {
    await setup(ddb);
    for (let r = 0; r < ROUNDS; ++r) {
      total += await round(edge, ddb, r);
      ddb.destroy();
      edge = await startEdge(STORE_CONF, { dir });
      ddb = ddbClient(edge.ports[0]);
      await check(ddb, `after kill ${r + 1} of ${ROUNDS} (seed ${SEED})`);
    }
    assert.ok(total >= ROUNDS, `only ${total} writes were acknowledged in ${ROUNDS} rounds`);
    t.diagnostic(`seed ${SEED}: ${total} writes acknowledged; of those in flight at a kill, ${model.settled.applied} were ` +
      `found applied after the restart and ${model.settled.lost} not`);
  } finally {
    ddb.destroy();
  }
  await edge.stopClean();
});
