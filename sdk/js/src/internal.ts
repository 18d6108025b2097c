import { abortedError } from './errors.js';

/** True in Node.js (and runtimes that imitate it, such as Bun and Deno's node mode). */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** Waits ms, or rejects with the aborted error as soon as signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff with jitter: base·2^(attempt-1), capped, then a random value in [half, whole]. */
export function backoffDelay(attempt: number, base: number, cap: number): number {
  const exp = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

const MAX_RETRY_AFTER_MS = 5 * 60 * 1000;

/** Parses Retry-After (delay-seconds or an HTTP date) into milliseconds, capped at 5 minutes. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) {
    ms = Number(v) * 1000;
  } else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = t - Date.now();
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** An incremental hash of node:crypto. */
export interface NodeHash {
  update(data: Uint8Array): NodeHash;
  digest(enc: 'hex'): string;
}
let nodeCrypto: Promise<{ createHash(alg: string): NodeHash } | undefined> | undefined;

function loadNodeCrypto(): Promise<{ createHash(alg: string): NodeHash } | undefined> {
  nodeCrypto ??= import(/* webpackIgnore: true */ /* @vite-ignore */ ['node:', 'crypto'].join('')).catch(() => undefined);
  return nodeCrypto;
}

/** A new incremental SHA-256 in Node.js (node:crypto), or undefined elsewhere (Web Crypto has none). */
export async function nodeSha256(): Promise<NodeHash | undefined> {
  if (!isNode()) return undefined;
  const c = await loadNodeCrypto();
  return c?.createHash('sha256');
}

/**
 * Lower-case hex SHA-256 of bytes, or undefined where no hash is available. Node.js: node:crypto
 * (hashes the bytes in place); elsewhere Web Crypto (crypto.subtle.digest, which copies them).
 */
export async function sha256Hex(data: Uint8Array): Promise<string | undefined> {
  if (isNode()) {
    const c = await loadNodeCrypto();
    if (c) return c.createHash('sha256').update(data).digest('hex');
  }
  const subtle = webCrypto();
  if (!subtle) return undefined;
  const digest = await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  const bytes = new Uint8Array(digest);
  let hex = '';
  for (let i = 0; i < bytes.length; i++) hex += (bytes[i] as number).toString(16).padStart(2, '0');
  return hex;
}

/** Whether sha256Hex can hash here. */
export function canHash(): boolean {
  return isNode() || webCrypto() !== undefined;
}

export function webCrypto(): SubtleCrypto | undefined {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c && c.subtle && typeof c.subtle.digest === 'function' ? c.subtle : undefined;
}

/** Calls a user callback; an exception it throws is ignored so that it cannot break the upload. */
export function safeCall<A extends unknown[]>(fn: ((...args: A) => void) | undefined, ...args: A): void {
  if (!fn) return;
  try {
    fn(...args);
  } catch {
    // A callback's own error is not the upload's business.
  }
}

/** Positive integer option, else the fallback. */
export function positiveInt(value: number | undefined, fallback: number): number {
  if (value === undefined || !Number.isFinite(value) || value < 1) return fallback;
  return Math.floor(value);
}

/** Non-negative number option, else the fallback. */
export function nonNegative(value: number | undefined, fallback: number): number {
  if (value === undefined || !Number.isFinite(value) || value < 0) return fallback;
  return value;
}
