// Abort and resume against the real server: with kept tokens, with tokens from
// include_tokens=true, of a finished upload, and parts uploaded by a key-less client.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ChunkedUploader, ChunkedUploaderError } from 'chunked-uploader-sdk';
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

/** Starts an upload of bytes and aborts it after `afterParts` parts; returns what a caller keeps. */
async function abortedUpload(source, afterParts, extra = {}) {
  const controller = new AbortController();
  const f = recordingFetch();
  let init;
  let abortedAt = 0;
  const result = await client({ fetch: f, concurrency: 2, ...extra }).uploadFile(source, {
    signal: controller.signal,
    onInit: (i) => {
      init = i;
    },
    onPartComplete: (r) => {
      if (r.success && r.partNumber + 1 >= afterParts && !controller.signal.aborted) {
        abortedAt = Date.now();
        controller.abort();
      }
    },
  });
  const returnedAfter = Date.now() - abortedAt;
  return { result, init, calls: f.calls, returnedAfter };
}

function assertAborted(result) {
  assert.equal(result.success, false);
  assert.ok(result.error instanceof ChunkedUploaderError);
  assert.equal(result.error.message, 'Upload aborted');
  assert.equal(result.error.code, 'aborted');
  assert.equal(result.finalPath, undefined);
}

describe('abort and resume', () => {
  test('abort midway, then resumeUpload with the tokens kept from onInit', async () => {
    const bytes = randomData(8 * MIB + 1); // not a multiple of the chunk size: the 1.0.2 resume bug
    const { result, init, calls, returnedAfter } = await abortedUpload(bytes, 3);
    assertAborted(result);
    assert.equal(result.fileId, init.file_id);
    assert.ok(returnedAfter < 2000, `abort took ${returnedAfter} ms`);
    assert.ok(!calls.some((c) => c.method === 'DELETE'), 'abort must not cancel the upload');
    assert.ok(!calls.some((c) => c.path.endsWith('/complete')), 'abort must not complete');

    const u = client();
    const st = await u.getStatus(init.file_id);
    assert.equal(st.status, 'pending', 'the aborted upload stays resumable');
    assert.ok(st.uploaded_parts >= 3 && st.uploaded_parts < 9, `uploaded ${st.uploaded_parts}`);
    const uploadedBefore = st.uploaded_parts;

    const tokenMap = new Map();
    init.parts.forEach((p) => tokenMap.set(p.part, p.token));
    const f = recordingFetch();
    const events = [];
    const resumed = await client({ fetch: f }).resumeUpload(init.file_id, bytes, {
      partTokens: tokenMap,
      onProgress: (e) => events.push(e),
    });
    assert.equal(resumed.success, true, resumed.error?.message);
    assert.equal(await sha256File(resumed.finalPath), sha256(bytes));
    assert.equal(resumed.checksumSha256, sha256(bytes));
    assert.equal(resumed.filename, 'file');
    assert.equal(resumed.totalSize, bytes.length);
    // Only the missing parts were sent, and the status call did not ask for tokens.
    assert.equal(f.calls.filter((c) => c.method === 'PUT').length, 9 - uploadedBefore);
    const statusCall = f.calls.find((c) => c.path.endsWith('/status'));
    assert.ok(!statusCall.search.includes('include_tokens'), statusCall.search);
    // Progress starts from the bytes already on the server.
    assert.equal(events[0].uploadedParts, uploadedBefore);
    assert.equal(events[0].bytesUploaded, uploadedBefore * MIB);
    assert.equal(events.at(-1).phase, 'complete');
    assert.equal(events.at(-1).overallProgress, 100);
  });

  test('resume without partTokens fetches them with include_tokens=true (from a file path)', async () => {
    const bytes = randomData(6 * MIB + 12345);
    const path = join(server.dir, 'resume-src.bin');
    writeFileSync(path, bytes);
    const { result } = await abortedUpload(path, 2);
    assertAborted(result);
    assert.ok(result.fileId);

    // Another "machine": a new client that only knows the upload id.
    const f = recordingFetch();
    const resumed = await client({ fetch: f }).resumeUpload(result.fileId, path);
    assert.equal(resumed.success, true, resumed.error?.message);
    assert.equal(await sha256File(resumed.finalPath), sha256(bytes));
    const statusCall = f.calls.find((c) => c.path.endsWith('/status'));
    assert.match(statusCall.search, /include_tokens=true/);
  });

  test('partTokens missing some parts: the missing tokens are fetched', async () => {
    const bytes = randomData(4 * MIB);
    const { result, init } = await abortedUpload(bytes, 1);
    assertAborted(result);
    const st = await client().getStatus(init.file_id);
    const pending = st.parts.filter((p) => p.status === 'pending').map((p) => p.part);
    assert.ok(pending.length >= 1);
    // Give only the first pending part's token, as a plain object.
    const partial = { [pending[0]]: init.parts[pending[0]].token };
    const f = recordingFetch();
    const resumed = await client({ fetch: f }).resumeUpload(init.file_id, bytes, { partTokens: partial });
    assert.equal(resumed.success, true, resumed.error?.message);
    assert.equal(await sha256File(resumed.finalPath), sha256(bytes));
    if (pending.length > 1) assert.ok(f.calls.some((c) => /include_tokens=true/.test(c.search)));
  });

  test('resume of a complete upload returns its result without sending anything', async () => {
    const bytes = randomData(MIB + 3);
    const done = await client().uploadFile(bytes);
    assert.equal(done.success, true);
    const f = recordingFetch();
    const again = await client({ fetch: f }).resumeUpload(done.fileId, bytes);
    assert.equal(again.success, true);
    assert.equal(again.finalPath, done.finalPath);
    assert.equal(again.checksumSha256, sha256(bytes));
    assert.deepEqual(f.calls.map((c) => c.method), ['GET']);
  });

  test('resume with a file of another size throws size_mismatch; unknown id throws upload_not_found', async () => {
    const bytes = randomData(2 * MIB);
    const { result } = await abortedUpload(bytes, 1);
    assertAborted(result);
    await assert.rejects(client().resumeUpload(result.fileId, bytes.subarray(1)), (err) => {
      assert.ok(err instanceof ChunkedUploaderError);
      assert.equal(err.code, 'size_mismatch');
      return true;
    });
    await assert.rejects(client().resumeUpload('00000000-0000-0000-0000-000000000000', bytes), (err) => {
      assert.ok(err instanceof ChunkedUploaderError);
      assert.equal(err.statusCode, 404);
      assert.equal(err.code, 'upload_not_found');
      return true;
    });
  });

  test('an already aborted signal: no request at all', async () => {
    const f = recordingFetch();
    const result = await client({ fetch: f }).uploadFile(randomData(10), { signal: AbortSignal.abort() });
    assertAborted(result);
    assert.equal(f.calls.length, 0);
  });

  test('abort while a part is in flight returns at once', async () => {
    const controller = new AbortController();
    const f = recordingFetch(({ method, calls }) => {
      if (method === 'PUT') {
        if (calls.filter((c) => c.method === 'PUT').length === 1) setTimeout(() => controller.abort(), 100);
        return 'hang';
      }
      return undefined;
    });
    const t0 = Date.now();
    const result = await client({ fetch: f }).uploadFile(randomData(3 * MIB), { signal: controller.signal });
    assertAborted(result);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });

  test('abort during a retry wait (Retry-After: 60) returns at once', async () => {
    const controller = new AbortController();
    const f = recordingFetch(({ method }) => {
      if (method === 'PUT') {
        setTimeout(() => controller.abort(), 100);
        return new Response(JSON.stringify({ error: 'busy', code: 'backend_unavailable', status: 503 }), {
          status: 503,
          headers: { 'Retry-After': '60' },
        });
      }
      return undefined;
    });
    const t0 = Date.now();
    const result = await client({ fetch: f, concurrency: 1 }).uploadFile(randomData(MIB), { signal: controller.signal });
    assertAborted(result);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });

  test('uploadParts: a key-less client sends the parts with tokens from a backend init; the backend completes', async () => {
    const bytes = randomData(3 * MIB + 99);
    const backend = client();
    const init = await backend.initUpload('from-backend.bin', bytes.length);
    const f = recordingFetch();
    const browser = new ChunkedUploader({ baseUrl: server.baseUrl, fetch: f, retryDelay: 10 });
    const events = [];
    const parts = await browser.uploadParts(init, new Blob([bytes]), { onProgress: (e) => events.push(e) });
    assert.equal(parts.success, true, parts.error?.message);
    assert.equal(parts.uploadedParts, 4);
    assert.ok(f.calls.length === 4 && f.calls.every((c) => c.method === 'PUT' && c.headers['X-API-Key'] === undefined));
    assert.equal(events.at(-1).overallProgress, 100);
    // The backend, which has no file, completes and waits for the delivery.
    const finishEvents = [];
    const done = await backend.finishUpload(init.file_id, { onProgress: (e) => finishEvents.push(e) });
    assert.equal(done.success, true, done.error?.message);
    assert.equal(done.filename, 'from-backend.bin');
    assert.equal(done.totalSize, bytes.length);
    assert.equal(await sha256File(done.finalPath), sha256(bytes));
    assert.equal(finishEvents.at(-1).phase, 'complete');
    const again = await backend.finishUpload(init.file_id);
    assert.equal(again.finalPath, done.finalPath);
    // Without a key the management calls are refused by the server.
    await assert.rejects(browser.getStatus(init.file_id), (err) => err.code === 'missing_api_key' && err.statusCode === 401);
  });
});

test('resumeUpload of an upload whose parts are all there only completes it', async () => {
  const bytes = randomData(2 * MIB + 1);
  const u = client();
  const init = await u.initUpload('all-there.bin', bytes.length);
  const parts = await u.uploadParts(init, bytes);
  assert.equal(parts.success, true);
  const f = recordingFetch();
  const done = await client({ fetch: f }).resumeUpload(init.file_id, bytes);
  assert.equal(done.success, true, done.error?.message);
  assert.equal(await sha256File(done.finalPath), sha256(bytes));
  assert.equal(f.calls.filter((c) => c.method === 'PUT').length, 0);
});
