// Real browser test: Debian's Chromium driven by playwright-core loads the SDK's ESM build from a
// page served on one localhost port and uploads to the real server on another port (cross-origin:
// CORS preflights for PUT with Authorization and for the API-key calls). The delivered file's
// sha256, read from final_path on disk, must equal the page's crypto.subtle digest and the digest
// of the same PRNG stream computed here.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { API_KEY, MIB, SDK_DIR, sha256, sha256File, startServer } from '../helpers/server.js';
import { prngBytes } from '../shared/prng.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const haveChromium = existsSync(CHROMIUM);
// CI installs chromium; elsewhere a missing browser skips this file with a message.
const skip = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

/** Serves the test page, the SDK's dist/esm and the PRNG module. */
function startPageServer() {
  const files = new Map([
    ['/', [join(SDK_DIR, 'test', 'browser', 'page.html'), 'text/html; charset=utf-8']],
    ['/prng.js', [join(SDK_DIR, 'test', 'shared', 'prng.js'), 'text/javascript']],
  ]);
  const srv = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    let entry = files.get(path);
    if (!entry && /^\/sdk\/[a-z0-9-]+\.js$/.test(path)) entry = [join(SDK_DIR, 'dist', 'esm', path.slice('/sdk/'.length)), 'text/javascript'];
    if (!entry || !existsSync(entry[0])) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' }).end(readFileSync(entry[0]));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('browser (Chromium + playwright-core)', { skip }, () => {
  let pageServer;
  let pageOrigin;
  let api;
  let blockedApi;
  let browser;
  let page;
  let cdp;
  const preflights = [];
  const consoleLines = [];

  before(async () => {
    assert.ok(haveChromium, `CI needs Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    assert.ok(existsSync(join(SDK_DIR, 'dist', 'esm', 'index.js')), 'build the SDK first (npm run build)');
    pageServer = await startPageServer();
    pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
    // The API allows exactly the page's origin; a second server allows another origin only.
    [api, blockedApi] = await Promise.all([
      startServer({ CORS_ALLOWED_ORIGINS: pageOrigin }),
      startServer({ CORS_ALLOWED_ORIGINS: 'https://app.example.com' }),
    ]);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 });
    const context = await browser.newContext();
    page = await context.newPage();
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    // Preflights are not page requests; the DevTools protocol reports them.
    cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => {
      if (e.request.method === 'OPTIONS' || e.type === 'Preflight') preflights.push({ url: e.request.url, headers: e.request.headers });
    });
    await page.goto(`${pageOrigin}/`, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForFunction(() => window.pageReady === true, null, { timeout: 30_000 });
  });

  after(async () => {
    if (consoleLines.length && process.env.DEBUG_BROWSER) console.log(consoleLines.join('\n'));
    await browser?.close().catch(() => undefined);
    await Promise.all([api?.stop(), blockedApi?.stop()]);
    await new Promise((r) => (pageServer ? pageServer.close(r) : r()));
  });

  test('uploads a 20 MiB + 1 B generated File cross-origin with concurrency 3; delivered bytes match', async (t) => {
    const size = 20 * MIB + 1;
    const seed = 20240611;
    const out = await page.evaluate((args) => window.runUpload(args), { baseUrl: api.baseUrl, apiKey: API_KEY, size, seed, concurrency: 3 });
    t.diagnostic(`browser upload of ${size} bytes in ${Math.round(out.ms)} ms, ${out.events.length} progress events, ${preflights.length} preflights seen`);
    assert.equal(out.result.success, true, `upload failed: ${JSON.stringify(out.result.error)}\n${consoleLines.join('\n')}`);
    assert.deepEqual(out.partErrors, []);
    assert.equal(out.result.totalSize, size);
    assert.equal(out.result.filename, `browser-${size}.bin`);

    // Progress: reached 100 % in bytes, phase complete last, never went backwards.
    const last = out.events.at(-1);
    assert.equal(last.phase, 'complete');
    assert.equal(last.overallProgress, 100);
    assert.equal(last.finalizingProgress, 100);
    assert.equal(last.bytesUploaded, size);
    assert.equal(last.totalParts, 21);
    assert.equal(last.uploadedParts, 21);
    assert.ok(out.events.filter((e) => e.phase === 'uploading' && e.currentPart !== undefined).length === 21);
    for (let i = 1; i < out.events.length; i++) assert.ok(out.events[i].bytesUploaded >= out.events[i - 1].bytesUploaded);

    // The same bytes everywhere: page digest, the PRNG stream here, the delivered file, the server.
    const expected = sha256(prngBytes(size, seed));
    assert.equal(out.sha256, expected, 'page and Node PRNG streams differ');
    assert.ok(out.result.finalPath.startsWith(api.storage + '/'));
    assert.equal(await sha256File(out.result.finalPath), expected);
    assert.equal(out.result.checksumSha256, expected);

    // Cross-origin PUTs with Authorization can only succeed after a preflight.
    assert.notEqual(new URL(api.baseUrl).origin, pageOrigin);
    const partPreflights = preflights.filter((p) => /\/part\/\d+$/.test(p.url));
    assert.ok(partPreflights.length >= 1, `no preflight seen for the part PUTs (${preflights.length} in all)`);
    assert.match(partPreflights[0].headers['Access-Control-Request-Method'] ?? '', /PUT/);
    assert.match((partPreflights[0].headers['Access-Control-Request-Headers'] ?? '').toLowerCase(), /authorization/);
  });

  test('with checksum: true the X-Checksum-SHA256 header passes CORS and the server verifies it', async () => {
    const size = 3 * MIB + 7;
    const out = await page.evaluate((args) => window.runUpload(args), { baseUrl: api.baseUrl, apiKey: API_KEY, size, seed: 7, concurrency: 2, checksum: true });
    assert.equal(out.result.success, true, JSON.stringify(out.result.error));
    assert.equal(await sha256File(out.result.finalPath), sha256(prngBytes(size, 7)));
    assert.ok(preflights.some((p) => (p.headers['Access-Control-Request-Headers'] ?? '').toLowerCase().includes('x-checksum-sha256')));
  });

  test('abort midway, then resume with tokens from include_tokens', async () => {
    const size = 6 * MIB + 3;
    const out = await page.evaluate((args) => window.runAbortResume(args), { baseUrl: api.baseUrl, apiKey: API_KEY, size, seed: 99, abortAfter: 2 });
    assert.equal(out.first.success, false);
    assert.equal(out.first.error.message, 'Upload aborted');
    assert.equal(out.first.error.code, 'aborted');
    assert.equal(out.first.error.isSdkError, true);
    assert.equal(out.statusAfterAbort.status, 'pending');
    assert.ok(out.statusAfterAbort.uploaded_parts < 7);
    assert.equal(out.resumed.success, true, JSON.stringify(out.resumed.error));
    assert.equal(await sha256File(out.resumed.finalPath), sha256(prngBytes(size, 99)));
    assert.equal(out.sha256, sha256(prngBytes(size, 99)));
  });

  test('a server that does not allow the page origin: the browser blocks it (network_error)', async () => {
    const out = await page.evaluate((args) => window.runBlocked(args), { baseUrl: blockedApi.baseUrl, apiKey: API_KEY });
    assert.equal(out.ok, false);
    assert.equal(out.error.code, 'network_error');
    assert.equal(out.error.statusCode, 0);
  });
});
