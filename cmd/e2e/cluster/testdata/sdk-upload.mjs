// Uploads files with the TypeScript SDK in Node, one after the other, and prints one JSON line
// per file: {file, success, fileId, finalPath, checksumSha256, error}.
//
//   API_KEY=... node sdk-upload.mjs <sdk entry (dist/esm/index.js)> <base URL> <remote dir> FILE...
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entry, baseUrl, dir, ...files] = process.argv.slice(2);
const { ChunkedUploader } = await import(pathToFileURL(entry).href);
const uploader = new ChunkedUploader({ baseUrl, apiKey: process.env.API_KEY });
for (const file of files) {
  const r = await uploader.uploadFile(file, { filename: `${dir}/${basename(file)}` });
  console.log(JSON.stringify({
    file,
    success: r.success,
    fileId: r.fileId,
    finalPath: r.finalPath,
    checksumSha256: r.checksumSha256,
    error: r.error?.message,
  }));
}
