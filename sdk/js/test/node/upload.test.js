// Whole uploads against the real server: sizes around the chunk size, every source type,
// delivered bytes compared by sha256 at final_path, and the progress events.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ChunkedUploader } from 'chunked-uploader-sdk';
import { API_KEY, MIB, randomData, recordingFetch, sha256, sha256File, startServer } from '../helpers/server.js';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function client(extra = {}) {
  return new ChunkedUploader({ baseUrl: server.baseUrl, apiKey: API_KEY, retryDelay: 10, ...extra });
}

/** Checks a successful result: the file at final_path has the bytes, and the events make sense. */
async function assertDelivered(result, bytes, events) {
  assert.equal(result.success, true, `upload failed: ${result.error?.message}`);
  assert.equal(result.error, undefined);
  assert.match(result.fileId, /\S/);
  assert.equal(result.totalSize, bytes.length);
  assert.equal(result.storageBackend, 'local');
  assert.ok(result.finalPath?.startsWith(server.storage + '/'), `finalPath ${result.finalPath} is not under ${server.storage}`);
  const want = sha256(bytes);
  assert.equal(await sha256File(result.finalPath), want, 'delivered bytes differ');
  assert.equal(result.checksumSha256, want);
  if (events) {
    const last = events[events.length - 1];
    assert.equal(last.phase, 'complete');
    assert.equal(last.overallProgress, 100);
    assert.equal(last.finalizingProgress, 100);
    assert.equal(last.bytesUploaded, bytes.length);
    assert.equal(last.bytesTotal, bytes.length);
    assert.equal(last.uploadedParts, last.totalParts);
    assert.equal(last.fileId, result.fileId);
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i].bytesUploaded >= events[i - 1].bytesUploaded, 'bytesUploaded went down');
      assert.ok(events[i].overallProgress >= 0 && events[i].overallProgress <= 100);
    }
  }
}

describe('uploadFile delivers the exact bytes', () => {
  const sizes = [
    ['0 B', 0],
    ['1 B', 1],
    ['one chunk exactly', MIB],
    ['one chunk plus one byte', MIB + 1],
    ['several chunks plus one byte', 3 * MIB + 1],
  ];
  for (const [name, size] of sizes) {
    test(`${name} from a Uint8Array`, async () => {
      const bytes = randomData(size);
      const events = [];
      const parts = [];
      const result = await client().uploadFile(bytes, {
        onProgress: (e) => events.push(e),
        onPartComplete: (r) => parts.push(r),
      });
      await assertDelivered(result, bytes, events);
      assert.equal(result.filename, 'file');
      const totalParts = Math.ceil(size / MIB);
      assert.equal(parts.length, totalParts);
      assert.ok(parts.every((p) => p.success && p.attempts === 1 && p.response?.status === 'uploaded'));
      assert.deepEqual(parts.map((p) => p.partNumber).sort((a, b) => a - b), [...Array(totalParts).keys()]);
      const uploading = events.filter((e) => e.phase === 'uploading');
      assert.equal(uploading[0].bytesUploaded, 0);
      assert.ok(events.some((e) => e.phase === 'finalizing'));
    });
  }

  test('a Blob, a File with its name, an ArrayBuffer and a Buffer', async () => {
    const bytes = randomData(2 * MIB + 123);
    const u = client();
    const asBlob = await u.uploadFile(new Blob([bytes]));
    await assertDelivered(asBlob, bytes);
    assert.equal(asBlob.filename, 'blob');
    const asFile = await u.uploadFile(new File([bytes], 'named.bin'));
    await assertDelivered(asFile, bytes);
    assert.equal(asFile.filename, 'named.bin');
    assert.match(asFile.finalPath, /\/files\/[^/]+_named\.bin$/);
    const asArrayBuffer = await u.uploadFile(bytes.buffer.slice(0));
    await assertDelivered(asArrayBuffer, bytes);
    const asBuffer = await u.uploadFile(Buffer.from(bytes));
    await assertDelivered(asBuffer, bytes);
    // A view into a larger buffer sends only its own bytes.
    const big = new Uint8Array(bytes.length + 100);
    big.set(bytes, 50);
    const asView = await u.uploadFile(big.subarray(50, 50 + bytes.length));
    await assertDelivered(asView, bytes);
  });

  test('a file path and a {path, name} source, delivered under a directory path', async () => {
    const bytes = randomData(MIB + 7);
    const path = join(server.dir, 'src.bin');
    writeFileSync(path, bytes);
    const byPath = await client().uploadFile(path);
    await assertDelivered(byPath, bytes);
    assert.equal(byPath.filename, 'src.bin');
    const named = await client().uploadFile({ path, name: 'videos/2024/clip.bin' });
    await assertDelivered(named, bytes);
    assert.equal(named.filename, 'videos/2024/clip.bin');
    assert.equal(named.finalPath, join(server.storage, 'videos', '2024', `${named.fileId}_clip.bin`));
  });

  test('per-part X-Checksum-SHA256 is sent by default in Node and can be turned off', async () => {
    const bytes = randomData(2 * MIB + 5);
    const on = recordingFetch();
    await assertDelivered(await client({ fetch: on }).uploadFile(bytes), bytes);
    const puts = on.calls.filter((c) => c.method === 'PUT');
    assert.equal(puts.length, 3);
    assert.deepEqual(
      puts.map((c) => c.headers['X-Checksum-SHA256']).sort(),
      [0, 1, 2].map((n) => sha256(bytes.subarray(n * MIB, Math.min(bytes.length, (n + 1) * MIB)))).sort(),
    );
    assert.ok(puts.every((c) => c.headers['X-API-Key'] === undefined), 'part uploads must not send the API key');
    assert.ok(puts.every((c) => /^Bearer \S+$/.test(c.headers.Authorization)));

    const off = recordingFetch();
    await assertDelivered(await client({ fetch: off, checksum: false }).uploadFile(new Blob([bytes])), bytes);
    assert.ok(off.calls.filter((c) => c.method === 'PUT').every((c) => c.headers['X-Checksum-SHA256'] === undefined));
    const perCall = recordingFetch();
    await assertDelivered(await client({ fetch: perCall }).uploadFile(bytes, { checksum: false }), bytes);
    assert.ok(perCall.calls.filter((c) => c.method === 'PUT').every((c) => c.headers['X-Checksum-SHA256'] === undefined));
  });

  test('whole-file checksum at init, webhook URL, concurrency 1 keeps part order, trailing slash in baseUrl', async () => {
    const bytes = randomData(3 * MIB);
    const f = recordingFetch();
    const u = new ChunkedUploader({ baseUrl: server.baseUrl + '/', apiKey: API_KEY, fetch: f });
    const order = [];
    const result = await u.uploadFile(bytes, {
      concurrency: 1,
      checksumSha256: sha256(bytes),
      webhookUrl: 'http://127.0.0.1:9/hook',
      onPartComplete: (r) => order.push(r.partNumber),
    });
    await assertDelivered(result, bytes);
    assert.deepEqual(order, [0, 1, 2]);
    assert.ok(f.calls.every((c) => !c.path.startsWith('//')), 'double slash in a URL');
    const init = f.calls.find((c) => c.path === '/upload/init');
    assert.equal(init.headers['X-API-Key'], API_KEY);
    assert.equal(init.headers['Content-Type'], 'application/json');
  });

  test('a wrong whole-file checksum fails the delivery with checksum_mismatch', async () => {
    const bytes = randomData(MIB + 1);
    const result = await client().uploadFile(bytes, { checksumSha256: 'a'.repeat(64) });
    assert.equal(result.success, false);
    assert.equal(result.error?.code, 'checksum_mismatch');
    assert.equal(result.error?.statusCode, 400);
    assert.ok(result.finalizationError);
  });

  test('concurrency: never more parts in flight than asked', async () => {
    let inFlight = 0;
    let peak = 0;
    const f = async (url, init) => {
      const isPut = init?.method === 'PUT';
      if (isPut) peak = Math.max(peak, ++inFlight);
      try {
        return await fetch(url, init);
      } finally {
        if (isPut) inFlight--;
      }
    };
    const bytes = randomData(8 * MIB);
    await assertDelivered(await client({ fetch: f, concurrency: 2 }).uploadFile(bytes), bytes);
    assert.ok(peak <= 2 && peak >= 1, `peak ${peak}`);
    peak = 0;
    await assertDelivered(await client({ fetch: f, concurrency: 2 }).uploadFile(bytes, { concurrency: 4 }), bytes);
    assert.ok(peak <= 4 && peak >= 2, `peak ${peak}`);
  });

  test('low-level calls: initUpload, uploadPart, getStatus, completeUpload, healthCheck', async () => {
    const bytes = randomData(MIB + 10);
    const u = client();
    const health = await u.healthCheck();
    assert.equal(health.status, 'ok');
    const init = await u.initUpload('manual/low-level.bin', bytes.length);
    assert.equal(init.total_parts, 2);
    assert.equal(init.chunk_size, MIB);
    const p1 = await u.uploadPart(init.file_id, 1, init.parts[1].token, bytes.subarray(MIB));
    assert.equal(p1.part_number, 1);
    assert.equal(p1.checksum_sha256, sha256(bytes.subarray(MIB)));
    await u.uploadPart(init.file_id, 0, init.parts[0].token, new Blob([bytes.subarray(0, MIB)]));
    const st = await u.getStatus(init.file_id);
    assert.equal(st.uploaded_parts, 2);
    assert.equal(st.filename, 'low-level.bin');
    assert.equal(st.path, 'manual');
    assert.equal(st.parts.length, 2);
    const noParts = await u.getStatus(init.file_id, { includeParts: false });
    assert.ok(!noParts.parts || noParts.parts.length === 0);
    const done = await u.completeUpload(init.file_id);
    assert.ok(['complete', 'finalizing'].includes(done.status));
    let final = await u.getStatus(init.file_id, { includeParts: false });
    for (let i = 0; final.status === 'finalizing' && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      final = await u.getStatus(init.file_id, { includeParts: false });
    }
    assert.equal(final.status, 'complete');
    assert.equal(await sha256File(final.final_path), sha256(bytes));
  });
});
