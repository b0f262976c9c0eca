// The cache store on a small disk of its own (an ext4 image mounted through a loop device; the suite runs as root):
// a map the disk cannot hold is not allocated (the disk keeps its space, the store writes with write()), and one that
// fits is allocated whole up front (cache/cache.h, "Durability").
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { h1, killAll, poll, startEdge, startOrigin, tempDir } from './lib.mjs';

const DISK_MB = 200;

function freeBytes(dir) {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('cache store on a small disk', () => {
  let origin;
  let mnt;
  let img;

  before(async () => {
    assert.equal(process.getuid(), 0, 'these tests mount a file system: run them as root (tests/run.sh does)');
    const dir = tempDir('ep-disk-');
    img = path.join(dir, 'disk.img');
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    fs.closeSync(fs.openSync(img, 'w'));
    fs.truncateSync(img, DISK_MB * 1024 * 1024);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    origin = await startOrigin();
  });

  after(async () => {
    await killAll();
    if (origin) await origin.close();
    if (mnt) execFileSync('umount', [mnt]);
    if (img) fs.rmSync(img, { force: true });
  });

  const conf = (dataDir, maxSize) => `threads: 1
data_dir: ${dataDir}
listen:
  - { address: 127.0.0.1, port: 0 }
access_log: { enabled: false }
cache: { max_size: ${maxSize} }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "${origin.url}" }
        cache: { default_ttl: 1h, override: true }
`;

  test('a map larger than the disk is not allocated: the disk keeps its space and the cache works', async () => {
    const before = freeBytes(mnt);
    const e = await startEdge(conf(path.join(mnt, 'big'), '256MiB')); // a map of ~400 MB on a 200 MB disk
    try {
      assert.match(e.logs(), /cache store .*: cannot reserve its file's space on disk \(No space left on device\): writing it with write\(\)/);
      assert.ok(freeBytes(mnt) > before - 16 * 1024 * 1024, `${before} bytes free before, ${freeBytes(mnt)} after`);
      const url = '/disk-big';
      assert.match((await h1({ port: e.ports[0], path: url })).headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
      const hit = await poll(async () => /hit/.test((await h1({ port: e.ports[0], path: url })).headers['cache-status']));
      assert.ok(hit, 'the stored object is served from the cache');
      assert.equal(origin.requests.filter((r) => r.url === url).length, 1);
    } finally {
      await e.stopClean();
    }
    assert.ok(freeBytes(mnt) > before - 16 * 1024 * 1024, 'still free after the stop');
  });

  test('a map that fits is allocated whole when the store opens', async () => {
    const dataDir = path.join(mnt, 'small');
    const e = await startEdge(conf(dataDir, '32MiB'));
    try {
      assert.doesNotMatch(e.logs(), /cannot reserve/);
      const st = fs.statSync(path.join(dataDir, 'cache', 'data.mdb'));
      assert.ok(st.size >= 48 * 1024 * 1024, `the file is the map's size: ${st.size}`);
      assert.ok(st.blocks * 512 >= st.size, `allocated ${st.blocks * 512} of ${st.size} bytes`);
    } finally {
      await e.stopClean();
    }
  });
});
