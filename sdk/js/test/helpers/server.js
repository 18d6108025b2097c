// Starts the REAL chunked-uploader host (and its local storage plugin) for the tests.
//
// Binaries come from CHUNKED_UPLOADER_BIN_DIR (the Makefile builds them into <repo>/bin), else are
// built with `go build` into sdk/js/.cache/bin (scripts/test.mjs does that once for all test files).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO_DIR = resolve(SDK_DIR, '..', '..');
export const API_KEY = 'js-sdk-test-api-key-0123456789';
export const JWT_SECRET = 'js-sdk-test-jwt-secret-0123456789abcdef-0123456789';
export const MIB = 1 << 20;

const HOST_BIN = 'chunked-uploader';
const PLUGIN_BIN = 'chunked-uploader-plugin-local';

/** Builds the host and the local plugin into dir (go's build cache makes a rebuild quick). */
export function buildServer(dir) {
  mkdirSync(dir, { recursive: true });
  const builds = [
    [HOST_BIN, 'github.com/chunked-uploader/chunked-uploader/cmd/chunked-uploader'],
    [PLUGIN_BIN, 'github.com/chunked-uploader/chunked-uploader/plugins/local'],
  ];
  for (const [name, pkg] of builds) {
    const r = spawnSync('go', ['build', '-trimpath', '-o', join(dir, name), pkg], {
      cwd: REPO_DIR,
      env: { ...process.env, CGO_ENABLED: '0' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.error) throw new Error(`go build ${pkg}: ${r.error.message} (is Go on PATH?)`);
    if (r.status !== 0) throw new Error(`go build ${pkg} failed with exit status ${r.status}`);
  }
  return dir;
}

let binDirCache;
/** Directory with chunked-uploader and chunked-uploader-plugin-local. */
export function binDir() {
  if (binDirCache) return binDirCache;
  const fromEnv = process.env.CHUNKED_UPLOADER_BIN_DIR;
  if (fromEnv) {
    const dir = resolve(fromEnv);
    for (const b of [HOST_BIN, PLUGIN_BIN]) {
      if (!existsSync(join(dir, b))) throw new Error(`CHUNKED_UPLOADER_BIN_DIR=${dir} has no ${b} (run make build)`);
    }
    binDirCache = dir;
  } else {
    binDirCache = buildServer(join(SDK_DIR, '.cache', 'bin'));
  }
  return binDirCache;
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

const live = new Set();
// Last resort: never leave a host (or its plugin, same process group) behind, nor its directory
// (a test file cancelled by the runner's timeout never runs its after hooks, and the memory test's
// directory holds gigabytes).
process.on('exit', () => {
  for (const s of live) {
    s.killNow();
    if (!process.env.KEEP_TEST_DIRS) rmSync(s.dir, { recursive: true, force: true });
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(130));
}

/**
 * Starts a host with a fresh data directory. overrides replace the default environment.
 * Returns {baseUrl, port, dir, env, storage, stop(), log()}.
 */
export async function startServer(overrides = {}) {
  const bins = binDir();
  let lastErr;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await tryStart(bins, overrides);
    } catch (err) {
      lastErr = err;
      if (!/address already in use/.test(String(err))) break;
    }
  }
  throw lastErr;
}

async function tryStart(bins, overrides) {
  const dir = mkdtempSync(join(tmpdir(), 'cu-js-sdk-'));
  const port = await freePort();
  const env = {
    API_KEY,
    JWT_SECRET,
    PLUGIN_DIR: bins,
    STORAGE_BACKEND: 'local',
    LOCAL_STORAGE_PATH: join(dir, 'uploads'),
    TEMP_STORAGE_PATH: join(dir, 'staging'),
    DATABASE_PATH: join(dir, 'uploads.db'),
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(port),
    CHUNK_SIZE_MB: '1',
    CORS_ALLOWED_ORIGINS: '*',
    LOG_FORMAT: 'json',
    // The tests' webhook receivers listen on loopback, which webhook_url refuses by default.
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    ...overrides,
  };
  mkdirSync(env.LOCAL_STORAGE_PATH, { recursive: true });
  mkdirSync(env.TEMP_STORAGE_PATH, { recursive: true });
  const logPath = join(dir, 'host.log');
  const logFd = openSync(logPath, 'a');
  // A minimal environment: nothing leaks in from the caller's (API_KEY, S3_*, ...); cwd is the
  // temporary directory, so no .env of the repository is read.
  const child = spawn(join(bins, HOST_BIN), [], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: tmpdir(), ...env },
    stdio: ['ignore', logFd, logFd],
    detached: true, // own process group: the plugin child can be killed with it
  });
  closeSync(logFd);
  let exited = false;
  let exitInfo = '';
  const exitPromise = new Promise((res) => {
    child.on('exit', (code, signal) => {
      exited = true;
      exitInfo = `exit code ${code}, signal ${signal}`;
      live.delete(server);
      res();
    });
    child.on('error', (err) => {
      exited = true;
      exitInfo = String(err);
      live.delete(server);
      res();
    });
  });
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const killGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        /* gone */
      }
    }
  };
  const server = {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    dir,
    env,
    storage: env.LOCAL_STORAGE_PATH,
    log,
    killNow: () => {
      if (!exited) killGroup('SIGKILL');
    },
    async stop({ keep = false } = {}) {
      if (!exited) {
        killGroup('SIGTERM');
        const t = setTimeout(() => killGroup('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(t);
        killGroup('SIGKILL'); // a plugin left in the group
      }
      if (!keep && !process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(server);

  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    if (exited) {
      const text = log();
      await server.stop({ keep: false });
      throw new Error(`host exited before it was healthy (${exitInfo}):\n${text}`);
    }
    try {
      const res = await fetch(`${server.baseUrl}/health`, { signal: AbortSignal.timeout(1000) });
      const body = await res.text();
      if (res.status === 200) return server;
      last = `${res.status} ${body}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const text = log();
  await server.stop();
  throw new Error(`GET /health not 200 within 30 s (last: ${last}); host log:\n${text}`);
}

/** sha256 hex of a file, streamed. */
export function sha256File(path) {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (d) => h.update(d))
      .on('end', () => res(h.digest('hex')));
  });
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

export function randomData(size) {
  return new Uint8Array(randomBytes(size));
}

/**
 * A fetch wrapper that records every call and lets a test rewrite answers:
 * hook({url, init, method, path, call}) may return a Response (sent instead of the real one),
 * 'lose' (forward, then throw a network error as if the answer was lost), 'hang' (never answer
 * until aborted), or undefined (pass through).
 */
export function recordingFetch(hook) {
  const calls = [];
  const f = async (url, init = {}) => {
    const u = new URL(String(url));
    const call = { method: (init.method ?? 'GET').toUpperCase(), path: u.pathname, search: u.search, headers: { ...(init.headers ?? {}) }, at: Date.now() };
    calls.push(call);
    const action = hook ? await hook({ url, init, method: call.method, path: call.path, call, calls }) : undefined;
    if (action instanceof Response) {
      call.status = action.status;
      call.synthetic = true;
      return action;
    }
    if (action === 'hang') {
      call.hung = true;
      return new Promise((_, reject) => {
        const sig = init.signal;
        if (sig?.aborted) reject(sig.reason ?? new DOMException('aborted', 'AbortError'));
        sig?.addEventListener('abort', () => reject(sig.reason ?? new DOMException('aborted', 'AbortError')), { once: true });
      });
    }
    const res = await fetch(url, init);
    call.status = res.status;
    if (action === 'lose') {
      await res.arrayBuffer();
      call.lost = true;
      throw new TypeError('fetch failed (test: answer lost)');
    }
    return res;
  };
  f.calls = calls;
  return f;
}

export function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

/**
 * A tiny HTTP proxy on 127.0.0.1 in front of target (the real server), for the default node:http
 * transport, which a fetch wrapper cannot reach. hook({method, path, count}) may return:
 * 'lose' (forward, read the real answer, then cut the connection without answering),
 * 'cut' (cut the connection once half of the request body has arrived, forwarding nothing),
 * 'hang' (never answer), {status, body, headers} (answer that instead), or undefined (forward).
 * count is the number of requests so far with the same method and path, this one included.
 */
export async function startProxy(target, hook) {
  const { createServer: createHttpServer, request } = await import('node:http');
  const counts = new Map();
  const log = [];
  const sockets = new Set();
  const srv = createHttpServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    const count = (counts.get(key) ?? 0) + 1;
    counts.set(key, count);
    const entry = { method: req.method, path: req.url, count };
    log.push(entry);
    const action = hook?.({ method: req.method, path: req.url, count });
    if (action === 'hang') {
      entry.action = 'hang';
      req.resume();
      return;
    }
    if (action === 'cut') {
      entry.action = 'cut';
      const half = Number(req.headers['content-length'] ?? 0) / 2;
      let got = 0;
      req.on('data', (c) => {
        got += c.length;
        if (got >= half) req.socket.destroy();
      });
      return;
    }
    if (action && typeof action === 'object') {
      entry.action = 'replaced';
      req.resume();
      req.on('end', () => {
        res.writeHead(action.status, { 'Content-Type': 'application/json', ...(action.headers ?? {}) }).end(JSON.stringify(action.body ?? {}));
      });
      return;
    }
    const up = request(new URL(req.url, target), { method: req.method, headers: req.headers }, (upRes) => {
      const chunks = [];
      upRes.on('data', (c) => chunks.push(c));
      upRes.on('end', () => {
        entry.status = upRes.statusCode;
        if (action === 'lose') {
          entry.action = 'lost';
          req.socket.destroy();
          return;
        }
        res.writeHead(upRes.statusCode, upRes.headers).end(Buffer.concat(chunks));
      });
    });
    up.on('error', (err) => {
      entry.error = String(err);
      req.socket.destroy();
    });
    req.pipe(up);
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    baseUrl: `http://127.0.0.1:${srv.address().port}`,
    log,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}
