// Finalization against real servers: complete answering 202 (COMPLETE_WAIT_SECONDS=0) is followed
// by status polls until complete or failed; a real delivery failure; timeouts and abort while the
// server delivers.
import assert from 'node:assert/strict';
import { lstatSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ChunkedUploader } from 'chunked-uploader-sdk';
import { API_KEY, MIB, jsonResponse, randomData, recordingFetch, sha256, sha256File, startServer } from '../helpers/server.js';

let noWait; // COMPLETE_WAIT_SECONDS=0: complete answers 202 at once
let waits; // default wait: complete answers the delivery's outcome
before(async () => {
  [noWait, waits] = await Promise.all([startServer({ COMPLETE_WAIT_SECONDS: '0' }), startServer()]);
});
after(async () => {
  await Promise.all([noWait?.stop(), waits?.stop()]);
});

function client(server, extra = {}) {
  return new ChunkedUploader({ baseUrl: server.baseUrl, apiKey: API_KEY, retryDelay: 10, ...extra });
}

/** Removes the blocking regular file, if it is still one. */
function removeBlocker(path) {
  try {
    if (lstatSync(path).isFile()) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

const completes = (f) => f.calls.filter((c) => c.path.endsWith('/complete'));
const statusPolls = (f) => f.calls.filter((c) => c.path.endsWith('/status'));

describe('finalization', () => {
  test('complete answers 202: the SDK polls status until complete and returns finalPath', async (t) => {
    const bytes = randomData(6 * MIB + 1);
    const f = recordingFetch();
    const events = [];
    const result = await client(noWait, { fetch: f }).uploadFile(bytes, {
      finalizePollIntervalMs: 20,
      onProgress: (e) => events.push(e),
    });
    assert.equal(result.success, true, result.error?.message);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
    assert.equal(result.checksumSha256, sha256(bytes));
    const [c] = completes(f);
    t.diagnostic(`complete answered ${c.status}, then ${statusPolls(f).length} status poll(s)`);
    assert.ok(c.status === 202 || c.status === 200, `complete answered ${c.status}`);
    if (c.status === 202) {
      assert.ok(statusPolls(f).length >= 1);
      assert.ok(statusPolls(f).every((s) => /include_parts=false/.test(s.search)));
    }
    const phases = events.map((e) => e.phase);
    assert.ok(phases.indexOf('finalizing') > phases.lastIndexOf('uploading'));
    assert.equal(phases.at(-1), 'complete');
    assert.equal(events.at(-1).finalizingProgress, 100);
  });

  test('a 202 with progress, then status complete (answer rewritten to 202 for certain)', async () => {
    const bytes = randomData(2 * MIB);
    const f = recordingFetch(async ({ url, init, path }) => {
      if (path.endsWith('/complete')) {
        const real = await (await fetch(url, init)).json();
        return jsonResponse(202, { ...real, status: 'finalizing', phase: 'finalizing', final_path: null, finalizing_progress_percent: 40 });
      }
      return undefined;
    });
    const events = [];
    const result = await client(waits, { fetch: f }).uploadFile(bytes, { finalizePollIntervalMs: 10, onProgress: (e) => events.push(e) });
    assert.equal(result.success, true, result.error?.message);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
    assert.ok(events.some((e) => e.phase === 'finalizing' && e.finalizingProgress === 40));
    assert.ok(statusPolls(f).length >= 1);
  });

  test('a real delivery failure, seen by polling: failure with finalization_error; fixed, resume delivers', async () => {
    // A regular file where the backend wants its files/ directory makes the delivery fail.
    const blocker = join(noWait.storage, 'files');
    rmSync(blocker, { recursive: true, force: true }); // files of earlier tests, already checked
    writeFileSync(blocker, 'not a directory');
    try {
      const bytes = randomData(MIB + 5);
      const result = await client(noWait).uploadFile(bytes, { finalizePollIntervalMs: 20 });
      assert.equal(result.success, false);
      assert.ok(result.error);
      assert.ok(['finalization_failed', 'delivery_failed'].includes(result.error.code), result.error.code);
      assert.ok(result.finalizationError && result.finalizationError.length > 0);
      const st = await client(noWait).getStatus(result.fileId, { includeParts: false });
      assert.equal(st.status, 'failed');
      assert.equal(st.finalization_error, result.finalizationError);

      unlinkSync(blocker);
      const again = await client(noWait).resumeUpload(result.fileId, bytes, { finalizePollIntervalMs: 20 });
      assert.equal(again.success, true, again.error?.message);
      assert.equal(await sha256File(again.finalPath), sha256(bytes));
    } finally {
      removeBlocker(blocker);
    }
  });

  test('a real delivery failure answered by complete (502 delivery_failed)', async () => {
    const blocker = join(waits.storage, 'files');
    rmSync(blocker, { recursive: true, force: true });
    writeFileSync(blocker, 'not a directory');
    try {
      const f = recordingFetch();
      const result = await client(waits, { fetch: f, retryAttempts: 2 }).uploadFile(randomData(100));
      assert.equal(result.success, false);
      assert.equal(result.error.code, 'delivery_failed');
      assert.equal(result.error.statusCode, 502);
      assert.ok(result.finalizationError);
      assert.equal(completes(f).length, 2, 'a 502 is retried (complete is safe to repeat)');
    } finally {
      removeBlocker(blocker);
    }
  });

  test('finalizeTimeoutMs: gives up with finalize_timeout while the server says finalizing', async () => {
    const f = recordingFetch(({ path }) =>
      path.endsWith('/complete') || path.endsWith('/status')
        ? jsonResponse(202, { file_id: 'x', status: 'finalizing', phase: 'finalizing', finalizing_progress_percent: 10 })
        : undefined,
    );
    const t0 = Date.now();
    const result = await client(waits, { fetch: f }).uploadFile(randomData(10), { finalizePollIntervalMs: 20, finalizeTimeoutMs: 200 });
    assert.equal(result.success, false);
    assert.equal(result.error.code, 'finalize_timeout');
    assert.ok(Date.now() - t0 < 3000);
  });

  test('abort while finalizing: aborted result, the upload is not cancelled', async () => {
    const controller = new AbortController();
    const f = recordingFetch(({ path }) => {
      if (path.endsWith('/complete')) {
        setTimeout(() => controller.abort(), 100);
        return jsonResponse(202, { file_id: 'x', status: 'finalizing', phase: 'finalizing', finalizing_progress_percent: 0 });
      }
      return undefined;
    });
    const t0 = Date.now();
    const result = await client(waits, { fetch: f }).uploadFile(randomData(MIB), { signal: controller.signal, finalizePollIntervalMs: 5000 });
    assert.equal(result.success, false);
    assert.equal(result.error.message, 'Upload aborted');
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(!f.calls.some((c) => c.method === 'DELETE'));
    assert.equal((await client(waits).getStatus(result.fileId, { includeParts: false })).status, 'pending');
  });

  test('complete that times out (every attempt): the SDK follows the delivery with status', async () => {
    const bytes = randomData(MIB);
    const f = recordingFetch(async ({ url, init, path }) => {
      if (path.endsWith('/complete')) {
        await fetch(url, init).then((r) => r.arrayBuffer()); // the server does start the delivery
        return 'hang';
      }
      return undefined;
    });
    const result = await client(waits, { fetch: f, timeout: 300, retryAttempts: 2 }).uploadFile(bytes, { finalizePollIntervalMs: 20 });
    assert.equal(result.success, true, result.error?.message);
    assert.equal(completes(f).length, 2);
    assert.ok(statusPolls(f).length >= 1);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
  });
});
