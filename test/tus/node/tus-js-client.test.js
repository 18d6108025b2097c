// tus-js-client (the client Uppy uses) in Node against the real host, on local storage and on S3:
// every delivered file's SHA-256 is checked against what was sent.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';

import * as tus from 'tus-js-client';

import { API_KEY, BACKENDS, MIB, idOf, randomFile, sha256, startHost } from '../helpers/env.js';

/** Uploads data with tus-js-client; resolves with the upload URL. */
function upload(endpoint, data, opts = {}) {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(data, {
      endpoint,
      headers: { 'X-API-Key': API_KEY },
      metadata: { filename: 'tus/test.bin' },
      retryDelays: [0, 200, 500, 1000],
      ...opts,
      onError: reject,
      onSuccess: () => resolve(up.url),
    });
    if (opts.onStart) opts.onStart(up);
    up.start();
  });
}

async function head(url) {
  const res = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  return { status: res.status, offset: Number(res.headers.get('Upload-Offset')), headers: res.headers };
}

async function expectDelivered(server, url, file, filename = 'test.bin') {
  const { http, body } = await server.status(idOf(url));
  assert.equal(http, 200);
  assert.equal(body.status, 'complete', JSON.stringify(body));
  assert.equal(body.filename, filename);
  assert.equal(body.total_size, file.data.length);
  assert.equal(await server.deliveredSHA256(body), file.sha256);
}

for (const backend of BACKENDS) {
  describe(`tus-js-client on ${backend}`, () => {
    let server;
    before(async () => {
      server = await startHost(backend);
    });
    after(async () => {
      await server?.stop();
    });

    test('0 B', async () => {
      const file = randomFile(0);
      const url = await upload(server.endpoint, file.data);
      await expectDelivered(server, url, file);
    });

    test('1 B', async () => {
      const file = randomFile(1);
      const url = await upload(server.endpoint, file.data);
      await expectDelivered(server, url, file);
    });

    test('23 MiB in 5 MiB PATCHes over 5 MiB parts, path kept', async () => {
      const file = randomFile(23 * MIB);
      const patches = [];
      const url = await upload(server.endpoint, file.data, {
        chunkSize: 5 * MIB,
        metadata: { filename: 'videos/2024/movie.bin' },
        onChunkComplete: (size, done) => patches.push(done),
      });
      assert.deepEqual(patches, [5, 10, 15, 20, 23].map((m) => m * MIB).map((v, i, a) => (i === a.length - 1 ? file.data.length : v)));
      await expectDelivered(server, url, file, 'movie.bin');
      const { body } = await server.status(idOf(url));
      assert.equal(body.path, 'videos/2024');
      assert.equal(body.delivery_mode, 'parts');
    });

    test('creation-with-upload', async () => {
      const file = randomFile(3 * MIB + 17);
      let progressAtCreation = -1;
      const url = await upload(server.endpoint, file.data, {
        uploadDataDuringCreation: true,
        chunkSize: 2 * MIB,
        onAfterResponse: (req, res) => {
          if (req.getMethod() === 'POST') progressAtCreation = Number(res.getHeader('Upload-Offset'));
        },
      });
      assert.equal(progressAtCreation, 2 * MIB, 'the POST carried the first chunk');
      await expectDelivered(server, url, file);
    });

    test('abort mid-way, resume from the stored URL', async () => {
      const file = randomFile(12 * MIB + 5);
      let first;
      const aborted = await new Promise((resolve, reject) => {
        first = new tus.Upload(file.data, {
          endpoint: server.endpoint,
          headers: { 'X-API-Key': API_KEY },
          metadata: { filename: 'resume.bin' },
          chunkSize: 1 * MIB,
          onError: reject,
          onSuccess: () => reject(new Error('finished before it was aborted')),
          onChunkComplete: (size, done) => {
            if (done >= 4 * MIB) first.abort().then(() => resolve(done), reject);
          },
        });
        first.start();
      });
      const url = first.url;
      assert.ok(url);
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.offset, aborted, 'HEAD reports every acknowledged byte');
      let resumedFrom = -1;
      const url2 = await upload(null, file.data, {
        uploadUrl: url,
        chunkSize: 1 * MIB,
        metadata: { filename: 'resume.bin' },
        onProgress: (sent) => {
          if (resumedFrom < 0) resumedFrom = sent;
        },
      });
      assert.equal(url2, url);
      assert.ok(resumedFrom >= aborted, `resumed from ${resumedFrom}, not from 0 (aborted at ${aborted})`);
      await expectDelivered(server, url, file, 'resume.bin');
    });

    test('termination', async () => {
      const file = randomFile(6 * MIB);
      let up;
      await new Promise((resolve, reject) => {
        up = new tus.Upload(file.data, {
          endpoint: server.endpoint,
          headers: { 'X-API-Key': API_KEY },
          metadata: { filename: 'gone.bin' },
          chunkSize: 1 * MIB,
          onError: reject,
          onChunkComplete: (size, done) => {
            if (done >= 2 * MIB) up.abort().then(resolve, reject);
          },
        });
        up.start();
      });
      await tus.Upload.terminate(up.url, { headers: { 'X-API-Key': API_KEY } });
      assert.equal((await head(up.url)).status, 404);
      assert.equal((await server.status(idOf(up.url))).http, 404);
    });

    test('checksum mismatch refused (460), nothing kept; the right checksum accepted', async () => {
      const file = randomFile(2 * MIB);
      const res = await fetch(server.endpoint, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'X-API-Key': API_KEY,
          'Upload-Length': String(file.data.length),
          'Upload-Metadata': `filename ${Buffer.from('sum.bin').toString('base64')}`,
        },
      });
      assert.equal(res.status, 201);
      const url = new URL(res.headers.get('Location'), server.endpoint).href;
      const first = file.data.subarray(0, MIB);
      const patch = (alg, digest, body, offset) =>
        fetch(url, {
          method: 'PATCH',
          headers: {
            'Tus-Resumable': '1.0.0',
            'Content-Type': 'application/offset+octet-stream',
            'Upload-Offset': String(offset),
            'Upload-Checksum': `${alg} ${digest.toString('base64')}`,
          },
          body,
        });
      const { createHash } = await import('node:crypto');
      const wrong = createHash('sha256').update('other bytes').digest();
      const bad = await patch('sha256', wrong, first, 0);
      assert.equal(bad.status, 460);
      assert.equal((await bad.json()).code, 'checksum_mismatch');
      assert.equal((await head(url)).offset, 0, 'the refused body counts for nothing');
      const ok1 = await patch('sha1', createHash('sha1').update(first).digest(), first, 0);
      assert.equal(ok1.status, 204);
      assert.equal(ok1.headers.get('Upload-Offset'), String(MIB));
      const rest = file.data.subarray(MIB);
      const ok2 = await patch('sha256', createHash('sha256').update(rest).digest(), rest, MIB);
      assert.equal(ok2.status, 204);
      await expectDelivered(server, url, file, 'sum.bin');
    });

    test('connection cut mid-PATCH, resume from the offset HEAD reports', async () => {
      const file = randomFile(14 * MIB + 3);
      const res = await fetch(server.endpoint, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'X-API-Key': API_KEY,
          'Upload-Length': String(file.data.length),
          'Upload-Metadata': `filename ${Buffer.from('cut.bin').toString('base64')}`,
        },
      });
      assert.equal(res.status, 201);
      const url = new URL(res.headers.get('Location'), server.endpoint).href;
      // One PATCH announcing the whole file; 7 MiB + 11 bytes are sent, then the connection is
      // closed (FIN: the body ends early, as when a client process dies).
      const sent = 7 * MIB + 11;
      await new Promise((resolve) => {
        const req = request(url, {
          method: 'PATCH',
          headers: {
            'Tus-Resumable': '1.0.0',
            'Content-Type': 'application/offset+octet-stream',
            'Upload-Offset': '0',
            'Content-Length': String(file.data.length),
          },
        });
        req.on('error', () => {});
        req.on('close', resolve);
        req.on('socket', (sock) => {
          req.write(file.data.subarray(0, sent), () => sock.end());
        });
      });
      // Every byte that reached the server is kept: HEAD reaches the number sent once the
      // server saw the body break off (until then it reports what it has synced so far).
      let offset = -1;
      for (let i = 0; i < 300 && offset !== sent; i++) {
        const h = await head(url);
        assert.equal(h.status, 200);
        assert.ok(h.offset <= sent, `HEAD reports ${h.offset}, more than the ${sent} bytes sent`);
        offset = h.offset;
        if (offset !== sent) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(offset, sent, 'the bytes of the cut PATCH are all kept');
      let resumedFrom = -1;
      await upload(null, file.data, {
        uploadUrl: url,
        chunkSize: 4 * MIB,
        metadata: { filename: 'cut.bin' },
        onProgress: (s) => {
          if (resumedFrom < 0) resumedFrom = s;
        },
      });
      assert.ok(resumedFrom >= offset, `tus-js-client resumed from ${resumedFrom}, HEAD said ${offset}`);
      await expectDelivered(server, url, file, 'cut.bin');
    });
  });
}

test('protocol basics: OPTIONS advertises, Tus-Resumable enforced, creation needs the API key', async () => {
  const server = await startHost('local', { MAX_UPLOAD_SIZE: String(64 * MIB) });
  try {
    const opt = await fetch(server.endpoint, { method: 'OPTIONS' });
    assert.equal(opt.status, 204);
    assert.equal(opt.headers.get('Tus-Version'), '1.0.0');
    assert.equal(opt.headers.get('Tus-Extension'), 'creation,creation-with-upload,termination,expiration,checksum');
    assert.equal(opt.headers.get('Tus-Max-Size'), String(64 * MIB));
    assert.equal(opt.headers.get('Tus-Checksum-Algorithm'), 'sha1,sha256');
    const noVersion = await fetch(server.endpoint, { method: 'POST', headers: { 'X-API-Key': API_KEY, 'Upload-Length': '1' } });
    assert.equal(noVersion.status, 412);
    assert.equal(noVersion.headers.get('Tus-Version'), '1.0.0');
    const noKey = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1', 'Upload-Metadata': `filename ${Buffer.from('a').toString('base64')}` },
    });
    assert.equal(noKey.status, 401);
    const tooBig = await fetch(server.endpoint, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'X-API-Key': API_KEY,
        'Upload-Length': String(64 * MIB + 1),
        'Upload-Metadata': `filename ${Buffer.from('a').toString('base64')}`,
      },
    });
    assert.equal(tooBig.status, 413);
    assert.equal(sha256(Buffer.alloc(0)).length, 64);
  } finally {
    await server.stop();
  }
});
