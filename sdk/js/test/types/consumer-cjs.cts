// The CommonJS side of the "exports" map.
import sdk = require('chunked-uploader-sdk');

export const uploader: sdk.ChunkedUploader = new sdk.ChunkedUploader({ baseUrl: 'http://localhost:3000', apiKey: 'key' });
export const isErr = (e: unknown): boolean => e instanceof sdk.ChunkedUploaderError && e.statusCode === 401;
