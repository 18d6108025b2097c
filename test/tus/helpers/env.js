// Shared helpers of the tus client tests: the real host (sdk/js/test/helpers/server.js starts it),
// its storage (local directory or a fresh S3 bucket on the test S3 server), and checks of what it
// delivered.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';

import { API_KEY, MIB, startServer } from '../../../sdk/js/test/helpers/server.js';

export { API_KEY, MIB };

/** The storage backends every test runs on. */
export const BACKENDS = ['local', 's3'];

function s3Env() {
  const { TEST_S3_ENDPOINT: endpoint, TEST_S3_ACCESS_KEY: accessKey, TEST_S3_SECRET_KEY: secretKey } = process.env;
  if (!endpoint || !accessKey || !secretKey) {
    throw new Error('TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY must be set (source the test services env: make services-start)');
  }
  return { endpoint, accessKey, secretKey, region: process.env.TEST_S3_REGION || 'us-east-1' };
}

/** A minimal AWS Signature V4 request to the test S3 server (path style, unsigned payload). */
async function s3Request(s3, method, path) {
  const url = new URL(path, s3.endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${s3.region}/s3/aws4_request`;
  const headers = { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-date': amzDate };
  const signed = Object.keys(headers).sort();
  const canonical = [
    method,
    url.pathname.split('/').map((s) => encodeURIComponent(decodeURIComponent(s))).join('/'),
    '',
    ...signed.map((k) => `${k}:${headers[k]}`),
    '',
    signed.join(';'),
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key = `AWS4${s3.secretKey}`;
  for (const part of [day, s3.region, 's3', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const res = await fetch(url, {
    method,
    headers: {
      'x-amz-content-sha256': headers['x-amz-content-sha256'],
      'x-amz-date': amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${s3.accessKey}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`,
    },
  });
  return res;
}

/**
 * Starts the host on backend ('local' or 's3', a fresh bucket), with overrides of its
 * environment. Returns the server of startServer with sha256Of(status) (the SHA-256 of the
 * file it delivered) and apiKeyHeaders.
 */
export async function startHost(backend, overrides = {}) {
  let extra = {};
  let s3;
  if (backend === 's3') {
    s3 = s3Env();
    const bucket = `tus-${randomBytes(6).toString('hex')}`;
    const res = await s3Request(s3, 'PUT', `/${bucket}`);
    if (res.status !== 200) throw new Error(`creating bucket ${bucket}: ${res.status} ${await res.text()}`);
    extra = {
      STORAGE_BACKEND: 's3',
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: bucket,
      S3_REGION: s3.region,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3.accessKey,
      AWS_SECRET_ACCESS_KEY: s3.secretKey,
    };
  }
  const server = await startServer({ CHUNK_SIZE_MB: '5', ...extra, ...overrides });
  server.endpoint = `${server.baseUrl}/files/`;
  /** GET /upload/{id}/status. */
  server.status = async (id) => {
    const res = await fetch(`${server.baseUrl}/upload/${id}/status?include_parts=false`, { headers: { 'X-API-Key': API_KEY } });
    return { http: res.status, body: await res.json() };
  };
  /** The SHA-256 (hex) of the file delivered for the upload of the given status body. */
  server.deliveredSHA256 = async (st) => {
    if (st.status !== 'complete') throw new Error(`upload ${st.file_id} is ${st.status}, not complete`);
    const h = createHash('sha256');
    if (backend === 's3') {
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(st.final_path);
      if (!m) throw new Error(`final_path ${st.final_path} is not s3://bucket/key`);
      const res = await s3Request(s3, 'GET', `/${m[1]}/${m[2]}`);
      if (res.status !== 200) throw new Error(`GET ${st.final_path}: ${res.status}`);
      for await (const chunk of res.body) h.update(chunk);
    } else {
      const path = st.final_path.startsWith('/') ? st.final_path : join(server.storage, st.final_path);
      for await (const chunk of createReadStream(path)) h.update(chunk);
    }
    return h.digest('hex');
  };
  return server;
}

/** The upload id in a tus upload URL (/files/<id>.<mac>). */
export function idOf(url) {
  return new URL(url).pathname.split('/').pop().split('.')[0];
}

/** A buffer of n pseudo-random bytes and its SHA-256. */
export function randomFile(n) {
  const data = randomBytes(n);
  return { data, sha256: createHash('sha256').update(data).digest('hex') };
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}
