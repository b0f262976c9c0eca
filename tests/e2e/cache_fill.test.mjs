// Cache fills keep a body in chunks (proxy/fill.c): of unknown length (a chunked origin), an 8 KiB first chunk, then
// 64 KiB ones; of a known length, chunks of up to 64 KiB. Ranges that start, end or cross at those edges, asked while
// the fill runs (joiners of a fill of unknown length get the whole body; of a known length, their range as the bytes
// arrive) and once it is stored (206 with the exact bytes).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachingConf, h1, killAll, pattern, sleep, startEdge, startOrigin } from './lib.mjs';

const N = 150000;
// where the fill's chunks end
const CHUNKED_EDGES = [8192, 8192 + 65536, 8192 + 2 * 65536];
const KNOWN_EDGES = [65536, 2 * 65536];
const ranges = (e) => [
  [0, e[0] - 1],
  [e[0] - 1, e[0]],
  [e[0] - 192, e[0] + 108],
  [e[0], e[0]],
  [e[1] - 10, e[1] + 10],
  [e[0] - 1, e[1]],
  [e[1] + 1, N - 1],
];

describe('cache fills in chunks', () => {
  let origin;
  let edge;
  let port;
  const body = pattern(N);

  before(async () => {
    origin = await startOrigin();
    edge = await startEdge(cachingConf(origin.url, { threads: 2 }));
    port = edge.ports[0];
  });

  after(async () => {
    await killAll();
    await origin.close();
  });

  const check = (r, [from, to], what) => {
    if (r.status === 200) {
      assert.equal(r.body.length, N, what);
      assert.ok(r.body.equals(body), `${what}: the whole body`);
    } else {
      assert.equal(r.status, 206, what);
      assert.equal(r.headers['content-range'], `bytes ${from}-${to}/${N}`, what);
      assert.ok(r.body.equals(body.subarray(from, to + 1)), `${what}: bytes ${from}-${to}`);
    }
  };

  // the origin sends the first 70000 bytes at once and the rest 300 ms later: requests sent meanwhile join the running
  // fill, with the fill's first chunks there and the rest to come
  const cases = [
    ['of unknown length', `/pausechunked/${N}`, ranges(CHUNKED_EDGES), 200],
    ['of a known length', `/pause/${N}`, ranges(KNOWN_EDGES), 206],
  ];
  for (const [what, path, RANGES, joinerStatus] of cases) {
    test(`a body ${what}: ranges across its chunks, while the fill runs and from the store`, async () => {
      const first = h1({ port, path });
      await sleep(100);
      const rs = await Promise.all(RANGES.map(([from, to]) => h1({ port, path, headers: { range: `bytes=${from}-${to}` } })));
      const r0 = await first;
      assert.equal(r0.status, 200);
      assert.ok(r0.body.equals(body), 'the first answer is the whole body');
      rs.forEach((r, i) => {
        assert.match(r.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored; collapsed/, `joiner ${RANGES[i]}`);
        assert.equal(r.status, joinerStatus, `joiner ${RANGES[i]}`);
        check(r, RANGES[i], `joiner ${RANGES[i]}`);
      });
      assert.equal(origin.requests.filter((q) => q.url === path).length, 1, 'one origin request for all');
      let stored = false;
      for (let i = 0; i < 50 && !stored; i++) {
        // from the finished fill while it lingers, then from the store
        const rr = await Promise.all(RANGES.map(([from, to]) => h1({ port, path, headers: { range: `bytes=${from}-${to}` } })));
        rr.forEach((r, j) => {
          assert.equal(r.status, 206, `round ${i}, range ${RANGES[j]}`);
          check(r, RANGES[j], `round ${i}`);
        });
        stored = rr.every((r) => /hit/.test(r.headers['cache-status']));
        if (!stored) await sleep(20);
      }
      assert.ok(stored, 'every range is answered from the store in the end');
      assert.equal(origin.requests.filter((q) => q.url === path).length, 1);
    });
  }
});
