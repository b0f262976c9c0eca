// The cache store on a small disk of its own (an ext4 image mounted through a loop device; the suite runs as root in
// tests/run.sh): a map the disk cannot hold is not allocated (the disk keeps its space, the store writes with write()),
// space an earlier allocation left in the file is given back, and a map that fits is allocated whole up front
// (cache/cache.h, "Durability").
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cachingConf, h1, killAll, poll, startEdge, startOrigin, tempDir } from './lib.mjs';

const DISK_MB = 200;
const MiB = 1024 * 1024;
const HOST = 'disk.test';

// What a machine must have to mount an image: root, a loop device, mkfs.ext4.
function cannotMount() {
  if (process.getuid() !== 0) return 'not root';
  if (!fs.existsSync('/dev/loop-control')) return 'no loop devices';
  try {
    execFileSync('mkfs.ext4', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'no mkfs.ext4';
  }
  return false;
}

function freeBytes(dir) {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('cache store on a small disk', { skip: cannotMount() }, () => {
  let origin;
  let mnt;
  let img;
  let mounted = false;

  before(async () => {
    const dir = tempDir('ep-disk-');
    img = path.join(dir, 'disk.img');
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    fs.closeSync(fs.openSync(img, 'w'));
    fs.truncateSync(img, DISK_MB * MiB);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
    mounted = true;
    origin = await startOrigin();
  });

  after(async () => {
    await killAll();
    if (origin) await origin.close();
    try {
      if (mounted) execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]); // busy: detached now, gone when the last user closes it
    } finally {
      if (img) fs.rmSync(img, { force: true });
    }
  });

  const conf = (dataDir, maxSize) =>
    cachingConf(origin.url, { top: `data_dir: ${dataDir}\naccess_log: { enabled: false }\ncache: { max_size: ${maxSize} }\n` });
  const NO_ROOM = /cache store .*: cannot reserve its file's space on disk \(No space left on device; it needs \d+ MiB more, the disk has \d+ MiB free\): writing it with write\(\)/;

  test('a map larger than the disk is not allocated: the disk keeps its space and the cache works', async () => {
    const free0 = freeBytes(mnt);
    const e = await startEdge(conf(path.join(mnt, 'big'), '256MiB')); // a map of ~430 MB on a 200 MB disk
    try {
      assert.match(e.logs(), NO_ROOM);
      assert.ok(freeBytes(mnt) > free0 - 16 * MiB, `${free0} bytes free before, ${freeBytes(mnt)} after`);
      const url = '/disk-big';
      const get = () => h1({ port: e.ports[0], path: url, headers: { host: HOST } });
      assert.match((await get()).headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
      const hit = await poll(async () => /hit/.test((await get()).headers['cache-status']));
      assert.ok(hit, 'the stored object is served from the cache');
      assert.equal(origin.requests.filter((r) => r.url === url).length, 1);
    } finally {
      await e.stopClean();
    }
    assert.ok(freeBytes(mnt) > free0 - 16 * MiB, 'still free after the stop');
  });

  test('space an earlier allocation took in the file is given back when the map does not fit', async () => {
    // as an edgeproxy before this check left it: the file's blocks allocated until the disk was full
    const file = path.join(mnt, 'big', 'cache', 'data.mdb');
    const free0 = freeBytes(mnt);
    execFileSync('fallocate', ['-o', String(16 * MiB), '-l', String(free0 - 4 * MiB), file]);
    assert.ok(freeBytes(mnt) < 8 * MiB, `the disk is full: ${freeBytes(mnt)} bytes free`);
    const e = await startEdge(conf(path.join(mnt, 'big'), '256MiB'));
    try {
      assert.match(e.logs(), NO_ROOM);
      assert.ok(freeBytes(mnt) > free0 - 16 * MiB, `${freeBytes(mnt)} bytes free, ${free0} before the allocation`);
      // what the first test stored is still there (the key has the authority: the same host name, on another port)
      const hit = await h1({ port: e.ports[0], path: '/disk-big', headers: { host: HOST } });
      assert.match(hit.headers['cache-status'], /hit/);
    } finally {
      await e.stopClean();
    }
  });

  test('a map that fits is allocated whole when the store opens', async () => {
    const dataDir = path.join(mnt, 'small');
    const e = await startEdge(conf(dataDir, '32MiB'));
    try {
      assert.doesNotMatch(e.logs(), /cannot reserve/);
      const st = fs.statSync(path.join(dataDir, 'cache', 'data.mdb'));
      assert.ok(st.size >= 48 * MiB, `the file is the map's size: ${st.size}`);
      assert.ok(st.blocks * 512 >= st.size, `allocated ${st.blocks * 512} of ${st.size} bytes`);
    } finally {
      await e.stopClean();
    }
  });
});
