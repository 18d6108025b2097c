// Deterministic test bytes, the same in Node and in the browser page: xorshift32, 4 bytes per step,
// little-endian. fillPrng(buf, seed, start) continues the stream at byte `start` (a multiple of 4)
// only when called with the state returned by the previous call, so callers fill sequentially.

/** Fills buf with the stream of seed, continuing from state (pass the returned state to go on). */
export function fillPrng(buf, state) {
  let x = state >>> 0 || 0x9e3779b9;
  let i = 0;
  const n = buf.length;
  while (i + 4 <= n) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
    buf[i + 1] = (x >>> 8) & 0xff;
    buf[i + 2] = (x >>> 16) & 0xff;
    buf[i + 3] = x >>> 24;
    i += 4;
  }
  if (i < n) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let k = 0; i < n; i++, k++) buf[i] = (x >>> (8 * k)) & 0xff;
  }
  return x;
}

/** size bytes of the stream of seed. */
export function prngBytes(size, seed) {
  const buf = new Uint8Array(size);
  fillPrng(buf, seed);
  return buf;
}
