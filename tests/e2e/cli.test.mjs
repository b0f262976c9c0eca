// Command line: --help, --version, -t (conf check) and refusing to start on a bad conf.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BIN, REPO, killAll, runCli, tempDir } from './lib.mjs';

after(killAll);

const GOOD = `threads: 1
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "http://127.0.0.1:9" }
        timeout: 2s
`;

// Writes a conf into a fresh dir; returns its path.
function writeConf(text, name = 'edge.yaml') {
  const file = path.join(tempDir('ep-cli-'), name);
  fs.writeFileSync(file, text);
  return file;
}

// 1-based line of the first line of `text` that contains `needle`.
function lineOf(text, needle) {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `"${needle}" not in the conf`);
  return i + 1;
}

function projectVersion() {
  const m = fs.readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8').match(/project\(edgeproxy\s+VERSION\s+([\d.]+)/);
  assert.ok(m, 'no project VERSION in CMakeLists.txt');
  return m[1];
}

describe('cli', () => {
  test('--help exits 0 and shows usage with -c and -t', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /usage/i);
    assert.match(out, /(^|\s)-c\b/);
    assert.match(out, /(^|\s)-t\b/);
  });

  test('--version prints "edgeproxy VERSION" and exits 0', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stdout + r.stderr).trim(), `edgeproxy ${projectVersion()}`);
  });

  test('-t -c good.yaml exits 0 without serving', async () => {
    const file = writeConf(GOOD, 'good.yaml');
    const r = await runCli(['-t', '-c', file], { timeout: 10000 });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /edgeproxy: (listening|ready)/);
  });

  test('-t -c on the shipped example conf exits 0', async () => {
    const r = await runCli(['-t', '-c', path.join(REPO, 'conf', 'edge.yaml')], { timeout: 10000 });
    assert.equal(r.code, 0, r.stderr);
  });

  test('-t: route timeout out of range names file, line and key', async () => {
    const text = GOOD.replace('timeout: 2s', 'timeout: 10ms');
    const file = writeConf(text, 'bad.yaml');
    const r = await runCli(['-t', '-c', file]);
    assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
    const line = lineOf(text, 'timeout: 10ms');
    assert.ok(
      r.stderr.includes(`${file}:${line}: hosts."*".routes[0].timeout: must be between 50ms and 29s`),
      `stderr: ${r.stderr}`,
    );
  });

  test('-t: unknown top-level key', async () => {
    const text = GOOD + 'bogus: 1\n';
    const file = writeConf(text, 'bad.yaml');
    const r = await runCli(['-t', '-c', file]);
    assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${file}:${lineOf(text, 'bogus')}: bogus: unknown key`), `stderr: ${r.stderr}`);
  });

  // Other kinds of error: only the "FILE:LINE: KEY:" prefix is specified.
  const cases = [
    ['a number that is not one', GOOD.replace('threads: 1', 'threads: abc'), 'threads: abc', 'threads'],
    ['a duration without unit', GOOD.replace('timeout: 2s', 'timeout: 5'), 'timeout: 5', 'hosts."*".routes[0].timeout'],
    [
      'an unknown route key',
      GOOD.replace('timeout: 2s', 'timeout: 2s\n        colour: blue'),
      'colour: blue',
      'hosts."*".routes[0].colour',
    ],
  ];
  for (const [what, text, needle, key] of cases) {
    test(`-t: ${what}`, async () => {
      const file = writeConf(text, 'bad.yaml');
      const r = await runCli(['-t', '-c', file]);
      assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(`${file}:${lineOf(text, needle)}: ${key}: `), `stderr: ${r.stderr}`);
    });
  }

  test('-t on a missing file exits 1', async () => {
    const file = path.join(tempDir('ep-cli-'), 'missing.yaml');
    const r = await runCli(['-t', '-c', file]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(file), `stderr: ${r.stderr}`);
  });

  test('starting on a bad conf exits non-zero without listening', async () => {
    const text = GOOD.replace('timeout: 2s', 'timeout: 10ms');
    const file = writeConf(text, 'bad.yaml');
    const r = await runCli(['-c', file], { timeout: 10000 });
    assert.equal(r.signal, null, 'killed: edgeproxy kept running on a bad conf');
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout + r.stderr, /edgeproxy: (listening|ready)/);
    assert.ok(r.stderr.includes(`${file}:${lineOf(text, 'timeout: 10ms')}:`), `stderr: ${r.stderr}`);
  });

  test('an origin host that does not resolve stops the start, naming file, line and key (as nginx does)', async () => {
    const text = GOOD.replace('http://127.0.0.1:9', 'http://no-such-host.invalid:8080');
    const file = writeConf(text, 'unresolvable.yaml');
    const r = await runCli(['-c', file], { timeout: 30000 });
    assert.equal(r.signal, null, 'killed: edgeproxy kept running');
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout + r.stderr, /edgeproxy: (listening|ready)/);
    const line = lineOf(text, 'no-such-host.invalid');
    assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:${line}: hosts\\."\\*"\\.routes\\[0\\]\\.origin\\.url: cannot resolve no-such-host\\.invalid`));
  });

  test('the binary under test exists', () => {
    assert.ok(fs.existsSync(BIN), `EDGEPROXY_BIN ${BIN} does not exist`);
  });
});
