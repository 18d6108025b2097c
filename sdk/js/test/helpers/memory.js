// Memory measurement and large test files for the Node tests (and scripts/memory.mjs).
//
// Peak RSS is the kernel's high-water mark: /proc/self/clear_refs ("5") resets VmHWM to the current
// RSS before the measured work and /proc/self/status VmHWM is read after it, so no peak between two
// samples is missed. Where /proc is missing (not Linux) process.memoryUsage().rss is sampled every
// 5 ms instead. Garbage is collected (and its memory freed) before the baseline so that it does not
// hide growth.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

import { fillPrng } from '../shared/prng.js';

const BLOCK = 1 << 20;

/**
 * Writes size bytes of the PRNG stream of seed to path, 1 MiB at a time (this process never holds
 * the file), and returns their sha256 in hex.
 */
export async function writePrngFile(path, size, seed) {
  const fh = await open(path, 'w');
  const hash = createHash('sha256');
  const buf = new Uint8Array(BLOCK);
  let state = seed;
  try {
    for (let off = 0; off < size; off += BLOCK) {
      const n = Math.min(BLOCK, size - off);
      state = fillPrng(buf.subarray(0, n), state);
      hash.update(buf.subarray(0, n));
      let done = 0;
      while (done < n) {
        const { bytesWritten } = await fh.write(buf, done, n - done, off + done);
        done += bytesWritten;
      }
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

let gcFn;
/** A full garbage collection (V8's gc, exposed at run time). */
export function collectGarbage() {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc');
  }
  gcFn();
}

function procStatusKiB(field) {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function resetHighWater() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return procStatusKiB('VmHWM') !== undefined;
  } catch {
    return false;
  }
}

/**
 * Runs fn and measures this process's peak RSS above the RSS just before it.
 * Returns {value, baseline, peak, growth, ms, method, detail} (bytes, milliseconds; detail: sampled
 * peaks of V8's heap, ArrayBuffers and external memory above their start, as text).
 */
export async function measurePeakRss(fn) {
  // V8 frees the memory of dead ArrayBuffers after the collection, concurrently: wait for it, so
  // that memory freed during the measured work does not make up for memory it takes.
  for (let i = 0; i < 2; i++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const kernel = resetHighWater();
  const baseline = kernel ? procStatusKiB('VmHWM') : process.memoryUsage().rss;
  let sampled = baseline;
  const start = process.memoryUsage();
  const anon0 = procStatusKiB('RssAnon');
  const file0 = procStatusKiB('RssFile');
  const peaks = { heapTotal: start.heapTotal, arrayBuffers: start.arrayBuffers, external: start.external };
  const sample = () => {
    const m = process.memoryUsage();
    sampled = Math.max(sampled, m.rss);
    for (const k of Object.keys(peaks)) peaks[k] = Math.max(peaks[k], m[k]);
  };
  const timer = setInterval(sample, 5);
  const t0 = performance.now();
  let value;
  try {
    value = await fn(sample);
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - t0;
  sample();
  const peak = Math.max(sampled, kernel ? (procStatusKiB('VmHWM') ?? 0) : 0);
  const mib = (n) => (n / (1 << 20)).toFixed(1);
  // Where the growth went, from the samples: V8's heap, ArrayBuffers (the read buffers), all external memory.
  const detail = Object.keys(peaks)
    .map((k) => `${k} +${mib(peaks[k] - start[k])}`)
    .join(', ');
  const anon1 = procStatusKiB('RssAnon');
  const file1 = procStatusKiB('RssFile');
  const rssParts = anon0 !== undefined && anon1 !== undefined && file0 !== undefined && file1 !== undefined
    ? `, at the end rss anon +${mib(anon1 - anon0)}, file +${mib(file1 - file0)}`
    : '';
  return { value, baseline, peak, growth: peak - baseline, ms, method: kernel ? 'VmHWM' : 'sampled rss', detail: detail + rssParts };
}
