// The CommonJS build, loaded with require() through the package's "exports" map, uploads a file
// from disk by path (the Node-only code path that loads node:fs lazily).
const assert = require('node:assert/strict');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { after, before, test } = require('node:test');

const sdk = require('chunked-uploader-sdk');

let helpers;
let server;
before(async () => {
  helpers = await import('../helpers/server.js');
  server = await helpers.startServer();
});
after(async () => {
  await server?.stop();
});

test('require("chunked-uploader-sdk") resolves to the CommonJS build and works', async () => {
  assert.match(require.resolve('chunked-uploader-sdk'), /dist[\\/]cjs[\\/]index\.js$/);
  assert.equal(typeof sdk.ChunkedUploader, 'function');
  assert.equal(sdk.UPLOAD_ABORTED, 'Upload aborted');
  const bytes = helpers.randomData(2 * helpers.MIB + 3);
  const path = join(server.dir, 'cjs.bin');
  writeFileSync(path, bytes);
  const u = new sdk.ChunkedUploader({ baseUrl: server.baseUrl, apiKey: helpers.API_KEY });
  const result = await u.uploadFile(path);
  assert.equal(result.success, true, result.error && result.error.message);
  assert.equal(await helpers.sha256File(result.finalPath), helpers.sha256(bytes));
  await assert.rejects(u.getStatus('nope'), (err) => err instanceof sdk.ChunkedUploaderError && err.statusCode === 404);
});
