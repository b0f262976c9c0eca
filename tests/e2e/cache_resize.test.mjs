// A cache.max_size lowered under what the store holds (cache/store.c, room_to_evict): at the next start the store says
// so, keeps storing at once, and evicts down to the new size in the background. Before the fix its pages filled the
// map of the smaller size, eviction itself could not run there, and every put was dropped for good.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachingConf, closedPort, h1, json, killAll, poll, startEdge, startOrigin, tempDir } from './lib.mjs';

const OBJECT = 48 * 1024;
const FILL = 1100; // ~52 MiB: under the high water mark of 64 MiB, over the map of 16 MiB (40 MiB)
const TOKEN = 'test-admin-token-0123456789';

describe('cache.max_size lowered between two starts', () => {
  let origin;
  let adminPort;
  const dataDir = tempDir('ep-resize-');
  const conf = (maxSize) =>
    cachingConf(origin.url, {
      top: `data_dir: ${dataDir}\ncache: { max_size: ${maxSize} }\nadmin: { port: ${adminPort}, token: ${TOKEN} }\n`,
    });
  const stats = async () => json(await h1({ port: adminPort, path: '/cache/stats', headers: { authorization: `Bearer ${TOKEN}` } }));
  const get = (port, path) => h1({ port, path });

  before(async () => {
    origin = await startOrigin();
    adminPort = await closedPort();
  });

  after(async () => {
    await killAll();
    await origin.close();
  });

  test('the store keeps storing and evicts down to the new size', async () => {
    let edge = await startEdge(conf('64MiB'));
    let port = edge.ports[0];
    for (let i = 0; i < FILL; i += 16) {
      const batch = [];
      for (let j = i; j < Math.min(i + 16, FILL); j++) batch.push(get(port, `/fill${j}/big/${OBJECT}`));
      for (const r of await Promise.all(batch)) assert.equal(r.status, 200);
    }
    assert.ok(await poll(async () => (await stats()).puts >= FILL, 10000), 'every fill stored');
    const full = await stats();
    assert.ok(full.bytes_used > 48 * 1024 * 1024, `bytes_used ${full.bytes_used}`);
    assert.equal(full.evictions, 0);
    await edge.stopClean();

    edge = await startEdge(conf('16MiB'));
    port = edge.ports[0];
    assert.match(edge.logs(), /cache store .*: holds \d+ MiB, over 90% of max_size \(16 MiB\): evicting down to 80%/);
    // stored at once, while the old objects go
    const first = await get(port, `/new/big/${OBJECT}`);
    assert.equal(first.status, 200);
    assert.match(first.headers['cache-status'], /stored/);
    assert.ok(await poll(async () => /hit/.test((await get(port, `/new/big/${OBJECT}`)).headers['cache-status']), 10000));
    // down under the high water mark (90% of max_size): a backlog is evicted to the low one (80%)
    assert.ok(await poll(async () => (await stats()).bytes_used <= 14 * 1024 * 1024, 30000), 'evicted down to max_size');
    const st = await stats();
    assert.equal(st.puts_dropped, 0);
    assert.ok(st.evictions >= FILL - 400, `evictions ${st.evictions}`);
    // the newest object survived the eviction (the oldest go first)
    assert.match((await get(port, `/new/big/${OBJECT}`)).headers['cache-status'], /hit/);
    await edge.stopClean();

    // a third start under the new size: nothing to say any more
    edge = await startEdge(conf('16MiB'));
    assert.doesNotMatch(edge.logs(), /of max_size/);
    await edge.stopClean();
  });
});
