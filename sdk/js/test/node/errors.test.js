// Errors and retries against the real server: ChunkedUploaderError from the JSON error body,
// cancel, retry of network errors / timeouts / 503 / 429 (Retry-After) with a re-sent part that the
// server accepts, and no retry of other 4xx.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ChunkedUploader, ChunkedUploaderError } from 'chunked-uploader-sdk';
import { API_KEY, MIB, jsonResponse, randomData, recordingFetch, sha256, sha256File, startProxy, startServer } from '../helpers/server.js';

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

function isError(status, code) {
  return (err) => {
    assert.ok(err instanceof ChunkedUploaderError, `not a ChunkedUploaderError: ${err}`);
    assert.equal(err.statusCode, status);
    assert.equal(err.code, code);
    assert.equal(err.name, 'ChunkedUploaderError');
    assert.ok(err.message.length > 0);
    return true;
  };
}

const putsOf = (f, part) => f.calls.filter((c) => c.method === 'PUT' && (part === undefined || c.path.endsWith(`/part/${part}`)));

describe('errors', () => {
  test('wrong API key: 401 invalid_api_key (init throws, no retry)', async () => {
    const f = recordingFetch();
    const u = new ChunkedUploader({ baseUrl: server.baseUrl, apiKey: 'wrong-key-0123456789', fetch: f, retryDelay: 10 });
    await assert.rejects(u.initUpload('x.bin', 10), (err) => {
      isError(401, 'invalid_api_key')(err);
      assert.equal(err.details?.status, 401);
      assert.match(err.requestId ?? '', /\S/);
      return true;
    });
    await assert.rejects(u.uploadFile(randomData(10)), isError(401, 'invalid_api_key'));
    assert.equal(f.calls.length, 2, 'a 401 is not retried');
    await assert.rejects(new ChunkedUploader({ baseUrl: server.baseUrl }).initUpload('x', 1), isError(401, 'missing_api_key'));
  });

  test('server validation errors keep their codes', async () => {
    const u = client();
    await assert.rejects(u.initUpload('../escape.bin', 10), isError(400, 'invalid_filename'));
    await assert.rejects(u.initUpload('x.bin', -1), isError(400, 'invalid_size'));
    await assert.rejects(u.initUpload('x.bin', 10, 'not a url'), isError(400, 'invalid_webhook_url'));
    await assert.rejects(u.getStatus('00000000-0000-0000-0000-000000000000'), isError(404, 'upload_not_found'));
    const init = await u.initUpload('x.bin', 2 * MIB);
    await assert.rejects(u.completeUpload(init.file_id), isError(400, 'parts_missing'));
    await assert.rejects(u.uploadPart(init.file_id, 0, init.parts[1].token, randomData(MIB)), isError(403, 'token_mismatch'));
    await assert.rejects(u.uploadPart(init.file_id, 0, 'not-a-token', randomData(MIB)), isError(401, 'invalid_token'));
  });

  test('cancelUpload removes the upload: status then answers 404', async () => {
    const u = client();
    const bytes = randomData(2 * MIB);
    const init = await u.initUpload('cancel-me.bin', bytes.length);
    await u.uploadPart(init.file_id, 0, init.parts[0].token, bytes.subarray(0, MIB));
    const res = await u.cancelUpload(init.file_id);
    assert.equal(res.status, 'cancelled');
    assert.equal(res.file_id, init.file_id);
    await assert.rejects(u.getStatus(init.file_id), isError(404, 'upload_not_found'));
    await assert.rejects(u.cancelUpload(init.file_id), isError(404, 'upload_not_found'));
    await assert.rejects(u.uploadPart(init.file_id, 1, init.parts[1].token, bytes.subarray(MIB)), (err) => err.statusCode === 404);
  });

  test('cancelUpload whose answer was lost: the retry finds it gone and reports success', async () => {
    const u = client({
      fetch: recordingFetch(({ method, calls }) => (method === 'DELETE' && calls.filter((c) => c.method === 'DELETE').length === 1 ? 'lose' : undefined)),
    });
    const init = await u.initUpload('cancel-lost.bin', 10);
    const res = await u.cancelUpload(init.file_id);
    assert.equal(res.status, 'cancelled');
    await assert.rejects(u.getStatus(init.file_id), isError(404, 'upload_not_found'));
  });
});

describe('retries', () => {
  test('a 503 on the first attempt of a part is retried and the upload succeeds', async () => {
    const bytes = randomData(3 * MIB + 1);
    const f = recordingFetch(({ method, path }) => {
      if (method === 'PUT' && path.endsWith('/part/1') && putsOf(f, 1).length === 1) {
        return jsonResponse(503, { error: 'storage plugin unavailable', code: 'backend_unavailable', status: 503 });
      }
      return undefined;
    });
    const partErrors = [];
    const partResults = [];
    const result = await client({ fetch: f }).uploadFile(bytes, {
      onPartError: (n, err, attempt) => partErrors.push({ n, code: err.code, status: err.statusCode, attempt }),
      onPartComplete: (r) => partResults.push(r),
    });
    assert.equal(result.success, true, result.error?.message);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
    assert.deepEqual(partErrors, [{ n: 1, code: 'backend_unavailable', status: 503, attempt: 1 }]);
    assert.equal(putsOf(f, 1).length, 2);
    assert.equal(partResults.find((r) => r.partNumber === 1).attempts, 2);
  });

  test('a lost answer (network error after the server stored the part): the re-sent part is accepted', async () => {
    const bytes = randomData(2 * MIB + 5);
    const f = recordingFetch(({ method, path }) => (method === 'PUT' && path.endsWith('/part/0') && putsOf(f, 0).length === 1 ? 'lose' : undefined));
    const errors = [];
    const result = await client({ fetch: f }).uploadFile(bytes, { onPartError: (n, err) => errors.push([n, err.code]) });
    assert.equal(result.success, true, result.error?.message);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
    assert.deepEqual(errors, [[0, 'network_error']]);
    const [first, second] = putsOf(f, 0);
    assert.equal(first.status, 200, 'the first attempt reached the server');
    assert.equal(first.lost, true);
    assert.equal(second.status, 200, 'the re-send was accepted');
  });

  test('a part attempt that hangs is stopped by partTimeout and retried', async () => {
    const bytes = randomData(MIB + 1);
    const f = recordingFetch(({ method }) => (method === 'PUT' && putsOf(f).length === 1 ? 'hang' : undefined));
    const errors = [];
    const t0 = Date.now();
    const result = await client({ fetch: f, partTimeout: 300 }).uploadFile(bytes, { onPartError: (n, err) => errors.push(err.code) });
    assert.equal(result.success, true, result.error?.message);
    assert.deepEqual(errors, ['timeout']);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(await sha256File(result.finalPath), sha256(bytes));
  });

  test('429 with Retry-After: 1 waits about a second before the retry', async () => {
    const bytes = randomData(MIB);
    const f = recordingFetch(({ method }) =>
      method === 'PUT' && putsOf(f).length === 1
        ? jsonResponse(429, { error: 'slow down', code: 'rate_limited', status: 429 }, { 'Retry-After': '1' })
        : undefined,
    );
    const result = await client({ fetch: f, retryDelay: 1 }).uploadFile(bytes);
    assert.equal(result.success, true, result.error?.message);
    const [a, b] = putsOf(f);
    assert.ok(b.at - a.at >= 900, `retried after ${b.at - a.at} ms`);
  });

  test('management calls are retried too (status 500 then 200)', async () => {
    const u = client();
    const init = await u.initUpload('s.bin', 1);
    const f = recordingFetch(({ path }) => (path.endsWith('/status') && f.calls.length === 1 ? jsonResponse(500, { error: 'x', code: 'internal_error', status: 500 }) : undefined));
    const st = await client({ fetch: f }).getStatus(init.file_id);
    assert.equal(st.file_id, init.file_id);
    assert.equal(f.calls.length, 2);
  });

  test('retries stop after retryAttempts and the error is reported', async () => {
    const f = recordingFetch(({ method }) => (method === 'PUT' ? jsonResponse(502, { error: 'bad gateway', code: 'delivery_failed', status: 502 }) : undefined));
    const result = await client({ fetch: f, retryAttempts: 4 }).uploadFile(randomData(MIB), { concurrency: 1 });
    assert.equal(result.success, false);
    assert.equal(result.error.code, 'delivery_failed');
    assert.equal(result.error.statusCode, 502);
    assert.deepEqual(result.failedParts, [0]);
    assert.equal(putsOf(f).length, 4);
  });

  test('no retry on 400: a wrong-size part fails at once with part_size_mismatch', async () => {
    const u = client();
    const init = await u.initUpload('short.bin', 2 * MIB);
    const f = recordingFetch();
    await assert.rejects(
      client({ fetch: f }).uploadPart(init.file_id, 0, init.parts[0].token, randomData(1000)),
      isError(400, 'part_size_mismatch'),
    );
    assert.equal(f.calls.length, 1);
  });

  test('no retry on 400 inside uploadFile: the upload fails with that code and stops taking parts', async () => {
    const f = recordingFetch(({ method, path }) =>
      method === 'PUT' && path.endsWith('/part/0') ? jsonResponse(400, { error: 'bad digest', code: 'checksum_mismatch', status: 400 }) : undefined,
    );
    const partErrors = [];
    const result = await client({ fetch: f, concurrency: 1 }).uploadFile(randomData(4 * MIB), {
      onPartError: (n, err, attempt) => partErrors.push([n, err.code, attempt]),
    });
    assert.equal(result.success, false);
    assert.equal(result.error.code, 'checksum_mismatch');
    assert.equal(result.error.statusCode, 400);
    assert.match(result.error.message, /part\(s\) 0 failed/);
    assert.deepEqual(result.failedParts, [0]);
    assert.deepEqual(partErrors, [[0, 'checksum_mismatch', 1]]);
    assert.equal(putsOf(f).length, 1, 'neither retried nor went on with other parts');
    assert.ok(!f.calls.some((c) => c.path.endsWith('/complete')));
    // The upload is still resumable.
    assert.equal((await client().getStatus(result.fileId)).status, 'pending');
  });

  test('an invalid token is not retried (401 invalid_token)', async () => {
    const init = await client().initUpload('tok.bin', 10);
    const f = recordingFetch();
    const res = await client({ fetch: f }).uploadParts(
      { ...init, parts: [{ part: 0, token: 'garbage' }] },
      randomData(10),
    );
    assert.equal(res.success, false);
    assert.equal(res.error.code, 'invalid_token');
    assert.equal(f.calls.length, 1);
  });

  test('a network error that persists: network_error after retryAttempts', async () => {
    const u = new ChunkedUploader({ baseUrl: 'http://127.0.0.1:9', apiKey: API_KEY, retryAttempts: 2, retryDelay: 1 });
    await assert.rejects(u.healthCheck(), (err) => err instanceof ChunkedUploaderError && err.code === 'network_error' && err.statusCode === 0);
    await assert.rejects(u.initUpload('x', 1), (err) => err.code === 'network_error' && err.retryable === true);
  });
});

// The same failures through a proxy, with the default transport (node:http in Node).
describe('retries through a proxy (default node:http transport)', () => {
  test('503 on the first attempt of a part, then pass-through: retried, correct bytes', async () => {
    const proxy = await startProxy(server.baseUrl, ({ method, path, count }) =>
      method === 'PUT' && path.endsWith('/part/2') && count === 1
        ? { status: 503, body: { error: 'storage plugin unavailable', code: 'backend_unavailable', status: 503 }, headers: { 'Retry-After': '0' } }
        : undefined,
    );
    try {
      const bytes = randomData(4 * MIB + 1);
      const errors = [];
      const result = await new ChunkedUploader({ baseUrl: proxy.baseUrl, apiKey: API_KEY, retryDelay: 10 }).uploadFile(bytes, {
        onPartError: (n, err, attempt) => errors.push([n, err.statusCode, err.code, attempt]),
      });
      assert.equal(result.success, true, result.error?.message);
      assert.equal(await sha256File(result.finalPath), sha256(bytes));
      assert.deepEqual(errors, [[2, 503, 'backend_unavailable', 1]]);
      assert.equal(proxy.log.filter((e) => e.method === 'PUT' && e.path.endsWith('/part/2')).length, 2);
    } finally {
      await proxy.close();
    }
  });

  test('the answer to a stored part is lost (connection cut): the re-sent part is accepted', async () => {
    const proxy = await startProxy(server.baseUrl, ({ method, path, count }) =>
      method === 'PUT' && path.endsWith('/part/0') && count === 1 ? 'lose' : undefined,
    );
    try {
      const bytes = randomData(2 * MIB + 1);
      const errors = [];
      const result = await new ChunkedUploader({ baseUrl: proxy.baseUrl, apiKey: API_KEY, retryDelay: 10 }).uploadFile(bytes, {
        onPartError: (n, err) => errors.push([n, err.code]),
      });
      assert.equal(result.success, true, result.error?.message);
      assert.equal(await sha256File(result.finalPath), sha256(bytes));
      assert.deepEqual(errors, [[0, 'network_error']]);
      const part0 = proxy.log.filter((e) => e.method === 'PUT' && e.path.endsWith('/part/0'));
      assert.deepEqual(part0.map((e) => [e.status, e.action]), [[200, 'lost'], [200, undefined]]);
    } finally {
      await proxy.close();
    }
  });

  test('400 through the proxy is not retried', async () => {
    const proxy = await startProxy(server.baseUrl, ({ method }) =>
      method === 'PUT' ? { status: 400, body: { error: 'bad part', code: 'part_size_mismatch', status: 400 } } : undefined,
    );
    try {
      const result = await new ChunkedUploader({ baseUrl: proxy.baseUrl, apiKey: API_KEY, retryDelay: 10, concurrency: 1 }).uploadFile(randomData(3 * MIB));
      assert.equal(result.success, false);
      assert.equal(result.error.code, 'part_size_mismatch');
      assert.equal(proxy.log.filter((e) => e.method === 'PUT').length, 1);
    } finally {
      await proxy.close();
    }
  });

  test('a part that never gets an answer: partTimeout, retried, then the timeout error', async () => {
    const proxy = await startProxy(server.baseUrl, ({ method }) => (method === 'PUT' ? 'hang' : undefined));
    try {
      const errors = [];
      const t0 = Date.now();
      const result = await new ChunkedUploader({ baseUrl: proxy.baseUrl, apiKey: API_KEY, retryDelay: 10, retryAttempts: 2, partTimeout: 200 }).uploadFile(
        randomData(100),
        { onPartError: (n, err, attempt) => errors.push([err.code, attempt]) },
      );
      assert.equal(result.success, false);
      assert.equal(result.error.code, 'timeout');
      assert.deepEqual(errors, [['timeout', 1], ['timeout', 2]]);
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      await proxy.close();
    }
  });

  test('abort while init hangs: aborted result at once', async () => {
    const proxy = await startProxy(server.baseUrl, () => 'hang');
    try {
      const t0 = Date.now();
      const result = await new ChunkedUploader({ baseUrl: proxy.baseUrl, apiKey: API_KEY }).uploadFile(randomData(10), { signal: AbortSignal.timeout(150) });
      assert.equal(result.success, false);
      assert.equal(result.error.message, 'Upload aborted');
      assert.ok(Date.now() - t0 < 2000);
    } finally {
      await proxy.close();
    }
  });
});
