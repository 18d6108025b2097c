// Parts streamed from disk, against the real server (3 MiB parts, so that a part goes through a
// worker's two 512 KiB read buffers six times): a connection cut in the middle of a part's body,
// re-read and re-sent from disk, through both transports; a source that fails while a part is read
// (invalid_source, not retried, whichever pass reads it); an answer that comes before the body
// has been sent.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ChunkedUploader } from 'chunked-uploader-sdk';
import { API_KEY, MIB, randomData, sha256, sha256File, startProxy, startServer } from '../helpers/server.js';

const CHUNK = 3 * MIB;
let server;
let path;
let bytes;

before(async () => {
  server = await startServer({ CHUNK_SIZE_MB: '3' });
  bytes = randomData(4 * CHUNK + 12345); // 5 parts, the last one short
  path = join(server.dir, 'stream-src.bin');
  writeFileSync(path, bytes);
});
after(async () => {
  await server?.stop();
});

function client(baseUrl, extra = {}) {
  return new ChunkedUploader({ baseUrl, apiKey: API_KEY, retryDelay: 10, concurrency: 2, ...extra });
}

/**
 * A FileHandle-like source over the real file whose reads at or past failAt fail: with mode
 * 'eof' they return 0 bytes (the file was truncated), with 'eio' they throw.
 */
async function failingHandle(failAt, mode) {
  const fh = await open(path, 'r');
  return {
    reads: 0,
    stat: () => fh.stat(),
    async read(buf, off, len, pos) {
      this.reads++;
      if (pos + len > failAt) {
        if (mode === 'eio') throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        const n = Math.max(0, failAt - pos);
        return n === 0 ? { bytesRead: 0 } : fh.read(buf, off, n, pos);
      }
      return fh.read(buf, off, len, pos);
    },
    close: () => fh.close(),
  };
}

describe('streamed parts', () => {
  for (const [transport, config] of [
    ['node:http', {}],
    ['fetch', { nodeHttp: false }],
  ]) {
    for (const checksum of [true, false]) {
      test(`${transport}, checksum ${checksum ? 'on' : 'off'}: parts cut mid-body are read again from disk and re-sent`, async () => {
        const proxy = await startProxy(server.baseUrl, ({ method, path: p, count }) =>
          method === 'PUT' && /\/part\/[13]$/.test(p) && count === 1 ? 'cut' : undefined,
        );
        try {
          const errors = [];
          const result = await client(proxy.baseUrl, { ...config, checksum }).uploadFile(path, {
            onPartError: (n, err, attempt) => errors.push([n, err.code, attempt]),
          });
          assert.equal(result.success, true, result.error?.message);
          assert.equal(await sha256File(result.finalPath), sha256(bytes));
          assert.deepEqual(errors.sort(), [
            [1, 'network_error', 1],
            [3, 'network_error', 1],
          ]);
          for (const n of [1, 3]) {
            const puts = proxy.log.filter((e) => e.method === 'PUT' && e.path.endsWith(`/part/${n}`));
            assert.deepEqual(puts.map((e) => e.action ?? e.status), ['cut', 200]);
          }
        } finally {
          await proxy.close();
        }
      });
    }
  }

  test('a FileHandle cut mid-body: re-read through the same worker buffers, correct bytes', async () => {
    const proxy = await startProxy(server.baseUrl, ({ method, count }) => (method === 'PUT' && count === 1 ? 'cut' : undefined));
    const fh = await open(path, 'r');
    try {
      const result = await client(proxy.baseUrl, { checksum: false }).uploadFile(fh);
      assert.equal(result.success, true, result.error?.message);
      assert.equal(await sha256File(result.finalPath), sha256(bytes));
      assert.equal(proxy.log.filter((e) => e.method === 'PUT').length, 10);
    } finally {
      await fh.close();
      await proxy.close();
    }
  });

  for (const [label, mode, config] of [
    ['truncated while sent (node:http, checksum off)', 'eof', { checksum: false }],
    ['read error while sent (node:http, checksum off)', 'eio', { checksum: false }],
    ['truncated while sent (fetch, checksum off)', 'eof', { checksum: false, nodeHttp: false }],
    ['read error while sent (fetch, checksum off)', 'eio', { checksum: false, nodeHttp: false }],
    ['truncated while hashed (checksum on)', 'eof', { checksum: true }],
    ['read error while hashed (checksum on)', 'eio', { checksum: true }],
  ]) {
    test(`source ${label}: invalid_source, not retried`, async () => {
      const src = await failingHandle(CHUNK + MIB, mode); // in the middle of part 1
      try {
        const errors = [];
        const failed = [];
        const result = await client(server.baseUrl, { concurrency: 1, ...config }).uploadFile(src, {
          onPartError: (n, err, attempt) => errors.push([n, err.code, attempt]),
          onPartComplete: (r) => {
            if (!r.success) failed.push([r.partNumber, r.error.code, r.attempts]);
          },
        });
        assert.equal(result.success, false);
        assert.equal(result.error.code, 'invalid_source', result.error.message);
        assert.equal(result.error.statusCode, 0);
        assert.match(result.error.message, mode === 'eof' ? /file ended at byte/ : /EIO/);
        assert.deepEqual(result.failedParts, [1]);
        assert.deepEqual(failed, [[1, 'invalid_source', 1]]);
        // A request that failed on its source is an attempt; the hash pass comes before any.
        assert.deepEqual(errors, config.checksum ? [] : [[1, 'invalid_source', 1]]);
        const status = await client(server.baseUrl).getStatus(result.fileId);
        assert.deepEqual(
          status.parts.filter((p) => p.status === 'uploaded').map((p) => p.part),
          [0],
        );
      } finally {
        await src.close();
      }
    });
  }

  test('an answer before the body is sent (a bad token): its error, not a network error', async () => {
    const u = client(server.baseUrl);
    const init = await u.initUpload('early.bin', bytes.length);
    for (const nodeHttp of [true, false]) {
      const errors = [];
      const res = await client(server.baseUrl, { nodeHttp }).uploadParts(
        { ...init, parts: init.parts.map((p) => ({ ...p, token: `${p.token.slice(0, -4)}AAAA` })) },
        path,
        { concurrency: 1, onPartError: (n, err, attempt) => errors.push([n, err.statusCode, err.code, attempt]) },
      );
      assert.equal(res.success, false);
      assert.equal(res.error.statusCode, 401, res.error.message);
      assert.equal(res.error.code, 'invalid_token');
      assert.deepEqual(errors, [[0, 401, 'invalid_token', 1]]);
    }
    // The connection of the refused request is not reused with half a body on it: the next
    // upload on the same client works.
    const u2 = client(server.baseUrl);
    await assert.rejects(u2.uploadPart(init.file_id, 0, 'bad', new Uint8Array(CHUNK)));
    const ok = await u2.uploadFile(path);
    assert.equal(ok.success, true, ok.error?.message);
    assert.equal(await sha256File(ok.finalPath), sha256(bytes));
  });
});
