// `npm run memory -- [options]`: peak RSS growth and throughput of one upload from disk against the
// real server (the figures of docs/js-sdk.md, Memory). Needs `npm run build` and the server binaries
// (CHUNKED_UPLOADER_BIN_DIR, else built with go build).
//
//   --size MiB (600)  --chunk MiB (50)  --concurrency N (3)  --source path|handle|blob (path)
//   --transport node|fetch (node)  --checksum on|off (on)
//
// The file is generated from a seeded PRNG into the server's temporary directory and removed with it;
// the delivered file's sha256 is checked.
import { openAsBlob } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { measurePeakRss, writePrngFile } from '../test/helpers/memory.js';
import { API_KEY, MIB, sha256File, startServer } from '../test/helpers/server.js';

const { values: o } = parseArgs({
  options: {
    size: { type: 'string', default: '600' },
    chunk: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '3' },
    source: { type: 'string', default: 'path' },
    transport: { type: 'string', default: 'node' },
    checksum: { type: 'string', default: 'on' },
  },
});
// SDK_ENTRY: another build of the SDK to compare with (path of its dist/esm/index.js).
const { ChunkedUploader } = await import(process.env.SDK_ENTRY ? pathToFileURL(process.env.SDK_ENTRY).href : 'chunked-uploader-sdk');
const size = Number(o.size) * MIB;
const server = await startServer({ CHUNK_SIZE_MB: o.chunk, MAX_UPLOAD_SIZE: String(size + MIB) });
try {
  const path = join(server.dir, 'memory.bin');
  const want = await writePrngFile(path, size, 0x5eed);
  const uploader = new ChunkedUploader({
    baseUrl: server.baseUrl,
    apiKey: API_KEY,
    concurrency: Number(o.concurrency),
    checksum: o.checksum === 'on',
    nodeHttp: o.transport === 'node',
  });
  const warm = join(server.dir, 'warm.bin');
  await writePrngFile(warm, Number(o.chunk) * MIB + 1, 1);
  const w = await uploader.uploadFile(warm);
  if (!w.success) throw w.error;

  const handle = o.source === 'handle' ? await open(path, 'r') : undefined;
  const source = handle ?? (o.source === 'blob' ? await openAsBlob(path) : path);
  const m = await measurePeakRss(() => uploader.uploadFile(source));
  await handle?.close();
  const r = m.value;
  if (!r.success) throw r.error;
  const ok = (await sha256File(r.finalPath)) === want;
  const s = m.ms / 1000;
  console.log(
    `${o.size} MiB by ${o.source}, ${o.chunk} MiB chunks, concurrency ${o.concurrency}, transport ${o.transport}, checksum ${o.checksum}: ` +
      `peak rss ${(m.peak / MIB).toFixed(0)} MiB, growth ${(m.growth / MIB).toFixed(1)} MiB (${m.method}, baseline ${(m.baseline / MIB).toFixed(0)} MiB), ` +
      `${s.toFixed(1)} s, ${(size / MIB / s).toFixed(0)} MiB/s, sha256 ${ok ? 'ok' : 'MISMATCH'}`,
  );
  if (!ok) process.exitCode = 1;
} finally {
  await server.stop();
}
