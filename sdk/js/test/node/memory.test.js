// Constant memory: a 2 GiB file on disk uploaded with 50 MiB parts, 5 in flight, against the real
// server. Each part is streamed from disk through the worker's two read buffers (its checksum taken
// by a first read of the part), so this process's RSS hardly moves, whatever the chunk size; holding
// the parts in flight would take 5 × 50 MiB. The peak is the kernel's high-water mark (VmHWM, reset
// before the upload), the file comes from a seeded PRNG and the delivered bytes are checked by sha256.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ChunkedUploader } from 'chunked-uploader-sdk';
import { measurePeakRss, writePrngFile } from '../helpers/memory.js';
import { API_KEY, MIB, sha256File, startServer } from '../helpers/server.js';

const SIZE = 2048 * MIB;
const CHUNK_MB = 50;
const CONCURRENCY = 5;
const PARTS = Math.ceil(SIZE / (CHUNK_MB * MIB));
// The bound of the issue: 32 MiB, against 250 MiB for five 50 MiB parts held in memory.
const MAX_GROWTH = 32 * MIB;
// Through fetch the chunks cannot be reused (fetch does not say when it is done with one): they are
// garbage that V8 frees in its own time, tens of MiB, still well below one part per worker.
const MAX_FETCH_GROWTH = 128 * MIB;
const TIMEOUT = 10 * 60_000;

let server;
let path;
let want;

before(async () => {
  server = await startServer({ CHUNK_SIZE_MB: String(CHUNK_MB) });
  path = join(server.dir, 'two-gib.bin');
  want = await writePrngFile(path, SIZE, 0x2d1b);
  // Warm up (JIT, the transports, node:fs and node:crypto) so that the measurements see uploads only.
  const warm = join(server.dir, 'warm.bin');
  await writePrngFile(warm, CHUNK_MB * MIB + 1, 7);
  for (const nodeHttp of [true, false]) {
    const r = await new ChunkedUploader({ baseUrl: server.baseUrl, apiKey: API_KEY, nodeHttp }).uploadFile(warm);
    assert.equal(r.success, true, r.error?.message);
    rmSync(r.finalPath);
  }
}, { timeout: TIMEOUT });

after(async () => {
  await server?.stop();
});

async function upload(t, label, source, config) {
  const u = new ChunkedUploader({ baseUrl: server.baseUrl, apiKey: API_KEY, concurrency: CONCURRENCY, ...config });
  let parts = 0;
  const m = await measurePeakRss(() =>
    u.uploadFile(source, {
      filename: 'two-gib.bin',
      onPartComplete: (p) => {
        if (p.success) parts++;
      },
    }),
  );
  const result = m.value;
  t.diagnostic(
    `${label}: peak rss growth ${(m.growth / MIB).toFixed(1)} MiB (${m.method}, baseline ${(m.baseline / MIB).toFixed(0)} MiB; ${m.detail}), ` +
      `${(m.ms / 1000).toFixed(1)} s, ${(SIZE / MIB / (m.ms / 1000)).toFixed(0)} MiB/s`,
  );
  assert.equal(result.success, true, result.error?.message);
  assert.equal(result.totalSize, SIZE);
  assert.equal(parts, PARTS);
  assert.equal(result.checksumSha256, want);
  assert.equal(await sha256File(result.finalPath), want);
  rmSync(result.finalPath);
  return m.growth;
}

test('2 GiB by path, 50 MiB chunks, concurrency 5: rss grows by at most 32 MiB', { timeout: TIMEOUT }, async (t) => {
  const growth = await upload(t, '2 GiB by path', path, {});
  assert.ok(growth <= MAX_GROWTH, `rss grew by ${(growth / MIB).toFixed(1)} MiB`);
});

test('2 GiB from an open FileHandle, concurrency 5: rss grows by at most 32 MiB', { timeout: TIMEOUT }, async (t) => {
  const fh = await open(path, 'r');
  try {
    const growth = await upload(t, '2 GiB by FileHandle', fh, {});
    assert.ok(growth <= MAX_GROWTH, `rss grew by ${(growth / MIB).toFixed(1)} MiB`);
  } finally {
    await fh.close();
  }
});

test('2 GiB by path through the global fetch (nodeHttp: false), concurrency 5: no part held whole', { timeout: TIMEOUT }, async (t) => {
  const growth = await upload(t, '2 GiB by path with fetch', path, { nodeHttp: false });
  assert.ok(growth <= MAX_FETCH_GROWTH, `rss grew by ${(growth / MIB).toFixed(1)} MiB`);
});
