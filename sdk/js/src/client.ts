import { ChunkedUploaderError, abortedError, isAbortedError, isRetryable } from './errors.js';
import {
  backoffDelay,
  isNode,
  nonNegative,
  parseRetryAfter,
  positiveInt,
  safeCall,
  sleep,
  canHash,
} from './internal.js';
import { createNodeHttpFetch, type FetchLike, type NodeFetch, type RequestInitLike, type ResponseLike } from './node-http.js';
import { openSource, ReadBuffers, type FetchBody, type PartBody, type PartReader } from './source.js';
import type {
  CancelUploadResponse,
  ChunkedUploaderConfig,
  CompleteUploadResponse,
  GetStatusOptions,
  HealthResponse,
  InitUploadResponse,
  PartStatus,
  PartTokens,
  PartUploadResponse,
  UploadOptions,
  UploadPartsResult,
  UploadPhase,
  UploadResult,
  UploadSource,
  UploadStatusResponse,
} from './types.js';

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_PART_TIMEOUT = 300_000;
const DEFAULT_CONCURRENCY = 3;
const DEFAULT_RETRY_ATTEMPTS = 3;
const DEFAULT_RETRY_DELAY = 1_000;
const DEFAULT_MAX_RETRY_DELAY = 30_000;
const DEFAULT_FINALIZE_POLL_MS = 2_000;
const DEFAULT_FINALIZE_TIMEOUT_MS = 3_600_000;

interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: PartBody | string;
  signal?: AbortSignal | undefined;
  /** Per-attempt timeout in ms; 0 for none. */
  timeout: number;
  retry: boolean;
  /** Called for every failed attempt (not for an abort). */
  onAttemptError?: (err: ChunkedUploaderError, attempt: number) => void;
}

interface HttpResult<T> {
  data: T;
  status: number;
  attempts: number;
}

/** Tokens and geometry of one upload, and what the current run has achieved. */
interface Job {
  fileId: string;
  filename: string;
  totalSize: number;
  chunkSize: number;
  totalParts: number;
  tokens: Map<number, string>;
  /** Parts to send, ascending. */
  pending: number[];
  uploadedParts: number;
  bytesUploaded: number;
  reader: PartReader;
  options: UploadOptions;
}

interface PartsOutcome {
  aborted: boolean;
  failures: Array<[number, ChunkedUploaderError]>;
}

/** Accepted by {@link ChunkedUploader.uploadParts}: the init answer, or a status answer fetched with `include_tokens`. */
export interface UploadTarget {
  file_id: string;
  chunk_size: number;
  total_parts: number;
  parts?: ReadonlyArray<{ part: number; token?: string; status?: PartStatus }> | null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toError(err: unknown): ChunkedUploaderError {
  if (err instanceof ChunkedUploaderError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ChunkedUploaderError(message, 0, 'invalid_source', { cause: err });
}

function tokenMap(tokens: PartTokens | undefined): Map<number, string> {
  const out = new Map<number, string>();
  if (!tokens) return out;
  if (tokens instanceof Map) {
    for (const [k, v] of tokens) if (typeof v === 'string' && v !== '') out.set(Number(k), v);
  } else if (Array.isArray(tokens)) {
    for (const p of tokens as ReadonlyArray<{ part: number; token?: string }>) {
      if (p && typeof p.token === 'string' && p.token !== '') out.set(Number(p.part), p.token);
    }
  } else {
    for (const [k, v] of Object.entries(tokens as Record<string, string>)) {
      if (typeof v === 'string' && v !== '' && /^\d+$/.test(k)) out.set(Number(k), v);
    }
  }
  return out;
}

function partCount(totalSize: number, chunkSize: number): number {
  return totalSize === 0 ? 0 : Math.ceil(totalSize / chunkSize);
}

function joinName(path: string | undefined, name: string): string {
  return path ? `${path.replace(/\/+$/, '')}/${name}` : name;
}

/**
 * Client of the chunked-uploader HTTP API (docs/api.md): uploads files of any size in parts, in
 * parallel, with retries, resume, abort and progress. Works in browsers and Node.js.
 */
export class ChunkedUploader {
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly timeout: number;
  private readonly partTimeout: number;
  private readonly concurrency: number;
  private readonly retryAttempts: number;
  private readonly retryDelay: number;
  private readonly maxRetryDelay: number;
  private readonly checksum: boolean;
  private readonly fetchImpl: FetchLike | undefined;
  private nodeFetch: Promise<NodeFetch> | undefined;

  constructor(config: ChunkedUploaderConfig) {
    if (!config || typeof config.baseUrl !== 'string' || config.baseUrl.trim() === '') {
      throw new ChunkedUploaderError('baseUrl is required', 0, 'invalid_config');
    }
    this.baseUrl = config.baseUrl.trim().replace(/\/+$/, '');
    this.apiKey = config.apiKey || undefined;
    this.timeout = nonNegative(config.timeout, DEFAULT_TIMEOUT);
    this.partTimeout = nonNegative(config.partTimeout, DEFAULT_PART_TIMEOUT);
    this.concurrency = positiveInt(config.concurrency, DEFAULT_CONCURRENCY);
    this.retryAttempts = positiveInt(config.retryAttempts, DEFAULT_RETRY_ATTEMPTS);
    this.retryDelay = nonNegative(config.retryDelay, DEFAULT_RETRY_DELAY);
    this.maxRetryDelay = nonNegative(config.maxRetryDelay, DEFAULT_MAX_RETRY_DELAY);
    this.checksum = config.checksum ?? isNode();
    if (config.fetch) {
      this.fetchImpl = config.fetch as unknown as FetchLike;
    } else if (isNode() && config.nodeHttp !== false) {
      this.fetchImpl = undefined; // node:http, created on first use
    } else if (typeof globalThis.fetch === 'function') {
      this.fetchImpl = globalThis.fetch.bind(globalThis) as unknown as FetchLike;
    } else {
      throw new ChunkedUploaderError('no fetch implementation: pass config.fetch', 0, 'invalid_config');
    }
  }

  private nodeTransport(): Promise<NodeFetch> {
    this.nodeFetch ??= createNodeHttpFetch();
    return this.nodeFetch;
  }

  // ------------------------------------------------------------------ low-level API

  /** `POST /upload/init`: creates an upload and returns its id, chunk size and one token per part. */
  async initUpload(
    filename: string,
    totalSize: number,
    webhookUrl?: string,
    options: { checksumSha256?: string; signal?: AbortSignal } = {},
  ): Promise<InitUploadResponse> {
    const body: Record<string, unknown> = { filename, total_size: totalSize };
    if (options.checksumSha256) body['checksum_sha256'] = options.checksumSha256;
    if (webhookUrl) body['webhook_url'] = webhookUrl;
    const r = await this.request<InitUploadResponse>({
      method: 'POST',
      path: '/upload/init',
      headers: { ...this.keyHeader(), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: options.signal,
      timeout: this.timeout,
      retry: true,
    });
    return r.data;
  }

  /**
   * `PUT /upload/{id}/part/{n}`: uploads one part with its token (no API key). Retried on network
   * errors, timeouts, 408, 429 and 5xx; re-sending a part the server already holds is fine while the
   * upload is pending.
   */
  async uploadPart(
    uploadId: string,
    partNumber: number,
    token: string,
    data: Blob | ArrayBuffer | ArrayBufferView,
    signal?: AbortSignal,
  ): Promise<PartUploadResponse> {
    const reader = await openSource(data);
    const r = await this.putPart(uploadId, partNumber, token, reader.part(0, reader.size), {
      signal,
      checksum: this.checksum,
    });
    return r.data;
  }

  /** `GET /upload/{id}/status`, optionally without the part list or with fresh part tokens. */
  async getStatus(uploadId: string, options: GetStatusOptions = {}): Promise<UploadStatusResponse> {
    const q: string[] = [];
    if (options.includeParts === false) q.push('include_parts=false');
    if (options.includeTokens) q.push('include_tokens=true');
    const r = await this.request<UploadStatusResponse>({
      method: 'GET',
      path: `/upload/${encodeURIComponent(uploadId)}/status${q.length ? `?${q.join('&')}` : ''}`,
      headers: this.keyHeader(),
      signal: options.signal,
      timeout: this.timeout,
      retry: true,
    });
    return r.data;
  }

  /**
   * `POST /upload/{id}/complete`: starts the delivery. The answer's `status` is `complete` (200) or
   * `finalizing` (202: poll getStatus). uploadFile and resumeUpload do the polling themselves.
   */
  async completeUpload(uploadId: string, signal?: AbortSignal): Promise<CompleteUploadResponse> {
    const r = await this.request<CompleteUploadResponse>({
      method: 'POST',
      path: `/upload/${encodeURIComponent(uploadId)}/complete`,
      headers: this.keyHeader(),
      signal,
      timeout: this.timeout,
      retry: true,
    });
    return r.data;
  }

  /** `DELETE /upload/{id}`: cancels the upload and removes its staged parts. */
  async cancelUpload(uploadId: string, signal?: AbortSignal): Promise<CancelUploadResponse> {
    let failedBefore = false;
    try {
      const r = await this.request<CancelUploadResponse>({
        method: 'DELETE',
        path: `/upload/${encodeURIComponent(uploadId)}`,
        headers: this.keyHeader(),
        signal,
        timeout: this.timeout,
        retry: true,
        onAttemptError: (err) => {
          if (err.code !== 'upload_not_found') failedBefore = true;
        },
      });
      return r.data;
    } catch (err) {
      // A retry after a lost answer finds the upload gone: the first attempt did cancel it.
      if (failedBefore && err instanceof ChunkedUploaderError && err.code === 'upload_not_found') {
        return { file_id: uploadId, status: 'cancelled', message: 'upload cancelled' };
      }
      throw err;
    }
  }

  /** `GET /health` (not retried). A degraded server (503) throws with the health body in `details`. */
  async healthCheck(signal?: AbortSignal): Promise<HealthResponse> {
    const r = await this.request<HealthResponse>({ method: 'GET', path: '/health', signal, timeout: this.timeout, retry: false });
    return r.data;
  }

  // ------------------------------------------------------------------ high-level API

  /**
   * Uploads a whole file: init, all parts in parallel (with retries), complete, and waits for the
   * delivery. Init errors throw; later failures (and an abort at any point) are returned as
   * `{success: false, error}`. An aborted upload is left on the server and can be resumed.
   */
  async uploadFile(file: UploadSource, options: UploadOptions = {}): Promise<UploadResult> {
    const signal = options.signal;
    const reader = await openSource(file, options.filename);
    try {
      if (signal?.aborted) return this.abortedResult('', reader.name, reader.size);
      let init: InitUploadResponse;
      try {
        const initOpts: { checksumSha256?: string; signal?: AbortSignal } = {};
        if (options.checksumSha256) initOpts.checksumSha256 = options.checksumSha256;
        if (signal) initOpts.signal = signal;
        init = await this.initUpload(reader.name, reader.size, options.webhookUrl, initOpts);
      } catch (err) {
        if (isAbortedError(err)) return this.abortedResult('', reader.name, reader.size);
        throw err;
      }
      safeCall(options.onInit, init);
      const job: Job = {
        fileId: init.file_id,
        filename: reader.name,
        totalSize: reader.size,
        chunkSize: init.chunk_size,
        totalParts: init.total_parts,
        tokens: tokenMap(init.parts),
        pending: (init.parts ?? []).map((p) => p.part).sort((a, b) => a - b),
        uploadedParts: 0,
        bytesUploaded: 0,
        reader,
        options,
      };
      return await this.run(job);
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  /**
   * Resumes an upload: reads `chunk_size`, `total_size` and the part states from the server, sends
   * the parts still pending (tokens from `options.partTokens`, else fetched with
   * `include_tokens=true`), completes and waits for the delivery. Returns at once with the result
   * if the upload is already complete. Errors of the status lookup and a size mismatch throw.
   */
  async resumeUpload(uploadId: string, file: UploadSource, options: UploadOptions = {}): Promise<UploadResult> {
    const signal = options.signal;
    const reader = await openSource(file);
    try {
      if (signal?.aborted) return this.abortedResult(uploadId, reader.name, reader.size);
      const tokens = tokenMap(options.partTokens);
      let status: UploadStatusResponse;
      try {
        status = await this.getStatus(uploadId, { includeTokens: !options.partTokens, ...(signal ? { signal } : {}) });
      } catch (err) {
        if (isAbortedError(err)) return this.abortedResult(uploadId, reader.name, reader.size);
        throw err;
      }
      const filename = joinName(status.path, status.filename);
      if (status.status !== 'complete' && reader.size !== status.total_size) {
        throw new ChunkedUploaderError(
          `the file has ${reader.size} bytes, the upload expects ${status.total_size}`,
          0,
          'size_mismatch',
          { expected: status.total_size, actual: reader.size },
        );
      }
      const parts = status.parts ?? [];
      if ((status.status === 'pending' || status.status === 'failed') && parts.length !== status.total_parts) {
        throw new ChunkedUploaderError(
          `the status answer lists ${parts.length} of ${status.total_parts} parts`,
          0,
          'invalid_response',
          status,
        );
      }
      const pending = parts.filter((p) => p.status !== 'uploaded').map((p) => p.part).sort((a, b) => a - b);
      for (const p of parts) if (p.token && !tokens.has(p.part)) tokens.set(p.part, p.token);
      const job: Job = {
        fileId: uploadId,
        filename,
        totalSize: status.total_size,
        chunkSize: status.chunk_size,
        totalParts: status.total_parts,
        tokens,
        pending: status.status === 'pending' || status.status === 'failed' ? pending : [],
        uploadedParts: 0,
        bytesUploaded: 0,
        reader,
        options,
      };
      const pendingSet = new Set(job.pending);
      for (let n = 0; n < job.totalParts; n++) {
        if (!pendingSet.has(n)) {
          job.uploadedParts++;
          job.bytesUploaded += this.partSize(job, n);
        }
      }
      if (status.status === 'complete') {
        this.emit(job, 'complete', 100);
        return this.successResult(job, status);
      }
      if (status.status === 'finalizing') {
        return await this.pollDelivery(job, status, Date.now());
      }
      if (job.pending.some((n) => !job.tokens.has(n))) {
        // Some tokens were not given: ask the server for them.
        let fresh: UploadStatusResponse;
        try {
          fresh = await this.getStatus(uploadId, { includeTokens: true, ...(signal ? { signal } : {}) });
        } catch (err) {
          if (isAbortedError(err)) return this.abortedResult(uploadId, filename, job.totalSize);
          throw err;
        }
        for (const p of fresh.parts ?? []) if (p.token && !job.tokens.has(p.part)) job.tokens.set(p.part, p.token);
        const missing = job.pending.filter((n) => !job.tokens.has(n));
        if (missing.length > 0) {
          throw new ChunkedUploaderError(`no token for part(s) ${missing.join(', ')}`, 0, 'missing_part_tokens', { parts: missing });
        }
      }
      return await this.run(job);
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  /**
   * Completes an upload whose parts are all on the server and waits for the delivery (status polls
   * after a 202), without the file: for a backend that lets browsers send the parts (see
   * {@link uploadParts}). Returns the result at once if the upload is already complete. Errors of the
   * first status lookup throw; later failures and an abort resolve with `success: false`.
   */
  async finishUpload(
    uploadId: string,
    options: Pick<UploadOptions, 'onProgress' | 'signal' | 'finalizePollIntervalMs' | 'finalizeTimeoutMs'> = {},
  ): Promise<UploadResult> {
    const signal = options.signal;
    if (signal?.aborted) return this.abortedResult(uploadId, '', 0);
    let status: UploadStatusResponse;
    try {
      status = await this.getStatus(uploadId, { includeParts: false, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (isAbortedError(err)) return this.abortedResult(uploadId, '', 0);
      throw err;
    }
    const filename = joinName(status.path, status.filename);
    const job: Job = {
      fileId: uploadId,
      filename,
      totalSize: status.total_size,
      chunkSize: status.chunk_size,
      totalParts: status.total_parts,
      tokens: new Map(),
      pending: [],
      uploadedParts: status.uploaded_parts,
      bytesUploaded: status.uploaded_parts >= status.total_parts ? status.total_size : Math.min(status.total_size, status.uploaded_parts * status.chunk_size),
      reader: {
        size: status.total_size,
        name: filename,
        part: () => {
          throw new ChunkedUploaderError('finishUpload has no file to read', 0, 'invalid_source');
        },
        close: async () => undefined,
      },
      options,
    };
    if (status.status === 'complete') {
      this.emit(job, 'complete', 100);
      return this.successResult(job, status);
    }
    if (status.status === 'finalizing') return this.pollDelivery(job, status, Date.now());
    return this.finalize(job);
  }

  /**
   * Uploads the parts of an upload initialized elsewhere (typically by your backend, which keeps
   * the API key) with their tokens: no API key is sent and complete is NOT called (the backend
   * does it). Parts whose `status` is `uploaded` are skipped.
   */
  async uploadParts(target: UploadTarget, file: UploadSource, options: UploadOptions = {}): Promise<UploadPartsResult> {
    const reader = await openSource(file);
    try {
      const expected = partCount(reader.size, target.chunk_size);
      if (expected !== target.total_parts) {
        throw new ChunkedUploaderError(
          `the file (${reader.size} bytes) has ${expected} parts of ${target.chunk_size} bytes, the upload has ${target.total_parts}`,
          0,
          'size_mismatch',
        );
      }
      const parts = target.parts ?? [];
      const pending = parts.filter((p) => p.status !== 'uploaded').map((p) => p.part).sort((a, b) => a - b);
      const job: Job = {
        fileId: target.file_id,
        filename: reader.name,
        totalSize: reader.size,
        chunkSize: target.chunk_size,
        totalParts: target.total_parts,
        tokens: tokenMap(options.partTokens ?? parts),
        pending,
        uploadedParts: 0,
        bytesUploaded: 0,
        reader,
        options,
      };
      const pendingSet = new Set(pending);
      for (let n = 0; n < job.totalParts; n++) {
        if (!pendingSet.has(n)) {
          job.uploadedParts++;
          job.bytesUploaded += this.partSize(job, n);
        }
      }
      const missing = pending.filter((n) => !job.tokens.has(n));
      if (missing.length > 0) {
        throw new ChunkedUploaderError(`no token for part(s) ${missing.join(', ')}`, 0, 'missing_part_tokens', { parts: missing });
      }
      const base = { fileId: job.fileId, totalParts: job.totalParts };
      if (options.signal?.aborted) return { ...base, success: false, uploadedParts: job.uploadedParts, error: abortedError() };
      this.emit(job, 'uploading', 0);
      const outcome = await this.uploadPending(job);
      if (outcome.aborted) return { ...base, success: false, uploadedParts: job.uploadedParts, error: abortedError() };
      if (outcome.failures.length > 0) {
        return {
          ...base,
          success: false,
          uploadedParts: job.uploadedParts,
          error: this.partsError(outcome.failures),
          failedParts: outcome.failures.map(([n]) => n),
        };
      }
      return { ...base, success: true, uploadedParts: job.uploadedParts };
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  // ------------------------------------------------------------------ internals

  private keyHeader(): Record<string, string> {
    return this.apiKey ? { 'X-API-Key': this.apiKey } : {};
  }

  private partSize(job: Pick<Job, 'chunkSize' | 'totalSize'>, n: number): number {
    return Math.max(0, Math.min(job.chunkSize, job.totalSize - n * job.chunkSize));
  }

  private abortedResult(fileId: string, filename: string, totalSize: number): UploadResult {
    return { success: false, fileId, filename, totalSize, error: abortedError() };
  }

  private failureResult(job: Job, error: ChunkedUploaderError, extra: Partial<UploadResult> = {}): UploadResult {
    return { success: false, fileId: job.fileId, filename: job.filename, totalSize: job.totalSize, error, ...extra };
  }

  private successResult(job: Job, r: CompleteUploadResponse | UploadStatusResponse): UploadResult {
    const out: UploadResult = { success: true, fileId: job.fileId, filename: job.filename, totalSize: job.totalSize };
    if (r.final_path != null) out.finalPath = r.final_path;
    if (r.storage_backend != null) out.storageBackend = r.storage_backend;
    if (r.checksum_sha256 != null) out.checksumSha256 = r.checksum_sha256;
    return out;
  }

  private partsError(failures: Array<[number, ChunkedUploaderError]>): ChunkedUploaderError {
    const [, first] = failures[0] as [number, ChunkedUploaderError];
    const list = failures.map(([n]) => n).join(', ');
    const err = new ChunkedUploaderError(
      `Upload failed: part(s) ${list} failed. First error: ${first.message}`,
      first.statusCode,
      first.code,
      { failedParts: failures.map(([n]) => n), cause: first },
    );
    if (first.requestId !== undefined) err.requestId = first.requestId;
    return err;
  }

  private emit(job: Job, phase: UploadPhase, finalizingProgress: number, currentPart?: number): void {
    if (!job.options.onProgress) return;
    const overall = job.totalSize === 0 ? 100 : Math.min(100, (job.bytesUploaded / job.totalSize) * 100);
    safeCall(job.options.onProgress, {
      fileId: job.fileId,
      uploadedParts: job.uploadedParts,
      totalParts: job.totalParts,
      bytesUploaded: job.bytesUploaded,
      bytesTotal: job.totalSize,
      overallProgress: overall,
      phase,
      finalizingProgress,
      ...(currentPart !== undefined ? { currentPart } : {}),
    });
  }

  /** Uploads the job's pending parts, completes and waits for the delivery; never throws. */
  private async run(job: Job): Promise<UploadResult> {
    const signal = job.options.signal;
    try {
      const expected = partCount(job.totalSize, job.chunkSize);
      if (job.totalSize > 0 && !(job.chunkSize > 0)) {
        return this.failureResult(job, new ChunkedUploaderError(`the server answered chunk_size ${job.chunkSize}`, 0, 'invalid_response'));
      }
      if (expected !== job.totalParts) {
        return this.failureResult(
          job,
          new ChunkedUploaderError(
            `the server expects ${job.totalParts} parts, ${job.totalSize} bytes in chunks of ${job.chunkSize} make ${expected}`,
            0,
            'invalid_response',
          ),
        );
      }
      if (signal?.aborted) return this.failureResult(job, abortedError());
      this.emit(job, 'uploading', 0);
      const outcome = await this.uploadPending(job);
      if (outcome.aborted) return this.failureResult(job, abortedError());
      if (outcome.failures.length > 0) {
        return this.failureResult(job, this.partsError(outcome.failures), { failedParts: outcome.failures.map(([n]) => n) });
      }
      return await this.finalize(job);
    } catch (err) {
      if (isAbortedError(err) || signal?.aborted) return this.failureResult(job, abortedError());
      return this.failureResult(job, toError(err));
    }
  }

  /** Sends the pending parts with a pool of workers. Stops taking new parts after the first final failure. */
  private async uploadPending(job: Job): Promise<PartsOutcome> {
    const { options } = job;
    const signal = options.signal;
    const checksum = options.checksum ?? this.checksum;
    const concurrency = positiveInt(options.concurrency, this.concurrency);
    const failures: Array<[number, ChunkedUploaderError]> = [];
    let next = 0;

    const worker = async (): Promise<void> => {
      // The worker's read buffers for sources read from disk, used by one request at a time (the
      // transport returns only after it has stopped reading the body).
      const buffers = new ReadBuffers();
      while (failures.length === 0 && !signal?.aborted && next < job.pending.length) {
        const n = job.pending[next++] as number;
        const size = this.partSize(job, n);
        const token = job.tokens.get(n) ?? '';
        let attempts = 0;
        try {
          const r = await this.putPart(job.fileId, n, token, job.reader.part(n * job.chunkSize, size, buffers), {
            signal,
            checksum,
            onAttemptError: (err, attempt) => {
              attempts = attempt;
              safeCall(options.onPartError, n, err, attempt);
            },
          });
          job.uploadedParts++;
          job.bytesUploaded += size;
          safeCall(options.onPartComplete, { partNumber: n, success: true, response: r.data, attempts: r.attempts });
          this.emit(job, 'uploading', 0, n);
        } catch (err) {
          if (isAbortedError(err) || signal?.aborted) return;
          const e = toError(err);
          failures.push([n, e]);
          safeCall(options.onPartComplete, { partNumber: n, success: false, error: e, attempts: Math.max(1, attempts) });
        }
      }
    };
    const workers = Math.min(concurrency, job.pending.length);
    await Promise.all(Array.from({ length: workers }, () => worker()));
    return { aborted: signal?.aborted === true, failures };
  }

  /** Calls complete; on 202 (or a complete that timed out) polls status until the delivery ends. */
  private async finalize(job: Job): Promise<UploadResult> {
    const signal = job.options.signal;
    const started = Date.now();
    this.emit(job, 'finalizing', 0);
    let answer: CompleteUploadResponse | UploadStatusResponse;
    try {
      answer = await this.completeUpload(job.fileId, signal);
    } catch (err) {
      if (isAbortedError(err)) return this.failureResult(job, abortedError());
      const e = toError(err);
      if (e.code !== 'timeout') {
        const extra: Partial<UploadResult> = {};
        if (e.statusCode >= 500 || e.code === 'checksum_mismatch') extra.finalizationError = e.message;
        return this.failureResult(job, e, extra);
      }
      // The server is still delivering: follow it with status.
      try {
        answer = await this.getStatus(job.fileId, { includeParts: false, ...(signal ? { signal } : {}) });
      } catch (err2) {
        if (isAbortedError(err2)) return this.failureResult(job, abortedError());
        return this.failureResult(job, toError(err2));
      }
    }
    return this.pollDelivery(job, answer, started);
  }

  private async pollDelivery(job: Job, first: CompleteUploadResponse | UploadStatusResponse, started: number): Promise<UploadResult> {
    const { options } = job;
    const signal = options.signal;
    const interval = nonNegative(options.finalizePollIntervalMs, DEFAULT_FINALIZE_POLL_MS);
    const limit = nonNegative(options.finalizeTimeoutMs, DEFAULT_FINALIZE_TIMEOUT_MS);
    let answer: CompleteUploadResponse | UploadStatusResponse = first;
    for (;;) {
      if (answer.status === 'complete') {
        this.emit(job, 'complete', 100);
        return this.successResult(job, answer);
      }
      if (answer.status === 'failed' || answer.status === 'pending') {
        const reason =
          ('finalization_error' in answer && answer.finalization_error) ||
          (answer.status === 'pending' ? 'the upload is pending again: parts are missing' : 'the delivery failed');
        return this.failureResult(job, new ChunkedUploaderError(reason, 0, 'finalization_failed', answer), {
          finalizationError: reason,
        });
      }
      this.emit(job, 'finalizing', Number(answer.finalizing_progress_percent) || 0);
      if (limit > 0 && Date.now() - started >= limit) {
        return this.failureResult(
          job,
          new ChunkedUploaderError(`the delivery did not end within ${limit} ms; it goes on on the server`, 0, 'finalize_timeout'),
        );
      }
      try {
        await sleep(limit > 0 ? Math.min(interval, Math.max(0, started + limit - Date.now())) : interval, signal);
        answer = await this.getStatus(job.fileId, { includeParts: false, ...(signal ? { signal } : {}) });
      } catch (err) {
        if (isAbortedError(err)) return this.failureResult(job, abortedError());
        return this.failureResult(job, toError(err));
      }
    }
  }

  private async putPart(
    uploadId: string,
    partNumber: number,
    token: string,
    part: PartBody,
    o: {
      signal?: AbortSignal | undefined;
      checksum: boolean;
      onAttemptError?: (err: ChunkedUploaderError, attempt: number) => void;
    },
  ): Promise<HttpResult<PartUploadResponse>> {
    if (o.signal?.aborted) throw abortedError();
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/octet-stream',
    };
    if (o.checksum && canHash()) {
      // A first read of the part, from disk for a file (no memory); each attempt reads it again.
      const hex = await part.sha256();
      if (hex) headers['X-Checksum-SHA256'] = hex;
    }
    const spec: RequestSpec = {
      method: 'PUT',
      path: `/upload/${encodeURIComponent(uploadId)}/part/${partNumber}`,
      headers,
      body: part,
      signal: o.signal,
      timeout: this.partTimeout,
      retry: true,
    };
    if (o.onAttemptError) spec.onAttemptError = o.onAttemptError;
    return this.request<PartUploadResponse>(spec);
  }

  /** One request with retries (network errors, timeouts, 408, 429, 5xx) and exponential backoff. */
  private async request<T>(spec: RequestSpec): Promise<HttpResult<T>> {
    const max = spec.retry ? this.retryAttempts : 1;
    for (let attempt = 1; ; attempt++) {
      if (spec.signal?.aborted) throw abortedError();
      try {
        const r = await this.attempt<T>(spec);
        return { ...r, attempts: attempt };
      } catch (err) {
        const e = toError(err);
        if (isAbortedError(e)) throw e;
        safeCall(spec.onAttemptError, e, attempt);
        if (attempt >= max || !isRetryable(e)) throw e;
        const delay = e.retryAfterMs ?? backoffDelay(attempt, this.retryDelay, this.maxRetryDelay);
        await sleep(delay, spec.signal);
      }
    }
  }

  private async attempt<T>(spec: RequestSpec): Promise<{ data: T; status: number }> {
    const ctrl = new AbortController();
    let timedOut = false;
    const onAbort = (): void => ctrl.abort();
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      spec.timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            ctrl.abort();
          }, spec.timeout)
        : undefined;
    let fetchBody: FetchBody | undefined;
    const transportError = (err: unknown): ChunkedUploaderError => {
      if (spec.signal?.aborted) return abortedError();
      if (timedOut) {
        return new ChunkedUploaderError(`${spec.method} ${spec.path} timed out after ${spec.timeout} ms`, 0, 'timeout');
      }
      // The source could not be read (the node:http transport passes its error on; fetch does not).
      const failure = fetchBody?.failure() ?? (err instanceof ChunkedUploaderError ? err : undefined);
      if (failure) return failure;
      const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
      const cause = e?.cause?.code ?? e?.cause?.message ?? (e?.code && !e.message?.includes(e.code) ? e.code : undefined);
      const msg = `${spec.method} ${spec.path}: network error: ${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
      return new ChunkedUploaderError(msg, 0, 'network_error', { cause: err });
    };
    try {
      const url = `${this.baseUrl}${spec.path}`;
      let res: ResponseLike;
      let text: string;
      try {
        if (this.fetchImpl) {
          const init: RequestInitLike = { method: spec.method, signal: ctrl.signal };
          if (spec.headers) init.headers = spec.headers;
          if (typeof spec.body === 'string') {
            init.body = spec.body;
          } else if (spec.body !== undefined) {
            fetchBody = spec.body.fetchBody();
            init.body = fetchBody.body;
            if (fetchBody.stream) init.duplex = 'half';
            if (isNode()) {
              // Node's fetch (undici) clones a request whose redirects it would follow, and the
              // clone tees the body: the branch nobody reads keeps every chunk, the whole part.
              // A request with no window that refuses redirects is sent as it is.
              init.redirect = 'error';
              init.window = null;
            }
          }
          res = await this.fetchImpl(url, init);
        } else {
          // A PartBody is a StreamingBody: its chunks go to the socket from the worker's buffers.
          const init = { method: spec.method, signal: ctrl.signal, ...(spec.headers ? { headers: spec.headers } : {}) };
          res = await (await this.nodeTransport())(url, spec.body !== undefined ? { ...init, body: spec.body } : init);
        }
        text = await res.text();
      } catch (err) {
        throw transportError(err);
      }
      let data: unknown;
      let parsed = false;
      if (text !== '') {
        try {
          data = JSON.parse(text);
          parsed = true;
        } catch {
          parsed = false;
        }
      }
      if (!res.ok) {
        const body = parsed && isObject(data) ? data : undefined;
        const message =
          typeof body?.['error'] === 'string' && body['error'] !== ''
            ? body['error']
            : `${spec.method} ${spec.path}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
        const code = typeof body?.['code'] === 'string' ? body['code'] : undefined;
        const details = body && body['details'] !== undefined ? body['details'] : (body ?? (text || undefined));
        const err = new ChunkedUploaderError(message, res.status, code, details);
        const requestId = res.headers.get('X-Request-Id');
        if (requestId) err.requestId = requestId;
        const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
        if (retryAfter !== undefined) err.retryAfterMs = retryAfter;
        throw err;
      }
      if (!parsed) {
        throw new ChunkedUploaderError(`${spec.method} ${spec.path}: the answer is not JSON`, res.status, 'invalid_response', text.slice(0, 200));
      }
      return { data: data as T, status: res.status };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    }
  }
}
