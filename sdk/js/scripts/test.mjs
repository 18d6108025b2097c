// `npm test`: build the SDK, build the server binaries once (unless CHUNKED_UPLOADER_BIN_DIR names
// them), then run the Node tests and the browser test with Node's test runner. The memory test (a
// 2 GiB upload, a few minutes on a busy machine) runs beside them in its own runner, with a longer
// timeout than the 2 minutes every other test file gets.
//
//   node scripts/test.mjs [--node] [--browser] [--memory] [--no-build] [extra node --test arguments]
//
// --node: the Node tests (the memory test included), --browser: the browser test, --memory: the
// memory test only; none of them: everything.
//
// Environment: CHUNKED_UPLOADER_BIN_DIR (prebuilt bin/chunked-uploader and
// bin/chunked-uploader-plugin-local), CHROMIUM_PATH (default /usr/bin/chromium), KEEP_TEST_DIRS=1.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildServer } from '../test/helpers/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const only = new Set(args.filter((a) => a === '--node' || a === '--browser' || a === '--memory'));
const noBuild = args.includes('--no-build');
const extra = args.filter((a) => !['--node', '--browser', '--memory', '--no-build'].includes(a));
const wantNode = only.size === 0 || only.has('--node');
const wantBrowser = only.size === 0 || only.has('--browser');
const wantMemory = wantNode || only.has('--memory');
// Test files with their own runner and timeout (see above).
const LONG = ['test/node/memory.test.js'];
const LONG_TIMEOUT_MS = 15 * 60_000;
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

if (!noBuild) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
  console.log(`# build done (${elapsed()})`);
}

const env = { ...process.env };
if (!env.CHUNKED_UPLOADER_BIN_DIR) {
  env.CHUNKED_UPLOADER_BIN_DIR = buildServer(join(root, '.cache', 'bin'));
  console.log(`# server binaries built into ${env.CHUNKED_UPLOADER_BIN_DIR} (${elapsed()})`);
} else {
  console.log(`# server binaries from CHUNKED_UPLOADER_BIN_DIR=${env.CHUNKED_UPLOADER_BIN_DIR}`);
}

const files = [];
const list = (dir, re) =>
  readdirSync(join(root, dir))
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f))
    .filter((f) => !LONG.includes(f));
if (wantNode) files.push(...list('test/node', /\.test\.c?js$/));
if (wantBrowser) files.push(...list('test/browser', /\.test\.js$/));

const runs = [];
if (files.length > 0) runs.push(['--test', '--test-concurrency=3', '--test-timeout=120000', ...extra, ...files]);
if (wantMemory) runs.push(['--test', `--test-timeout=${LONG_TIMEOUT_MS}`, ...extra, ...LONG]);
const children = runs.map((argv) => spawn(process.execPath, argv, { stdio: 'inherit', cwd: root, env }));
// Whole-run watchdog: the runners' own timeouts should fire long before this.
const watchdog = setTimeout(() => {
  console.error('# test run exceeded 20 minutes: stopping it');
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => {
    for (const c of children) c.kill('SIGKILL');
  }, 10_000).unref();
}, 20 * 60_000);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => children.forEach((c) => c.kill(sig)));
const codes = await Promise.all(
  children.map((c) => new Promise((res) => c.on('exit', (code, signal) => res(code ?? (signal ? 1 : 0))))),
);
clearTimeout(watchdog);
console.log(`# npm test finished in ${elapsed()}`);
process.exit(codes.find((c) => c !== 0) ?? 0);
