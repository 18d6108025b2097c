import type { ChunkedUploaderError } from './errors.js';

/** Options of {@link ChunkedUploader}. */
export interface ChunkedUploaderConfig {
  /** Base URL of the chunked upload server, such as `https://upload.example.com` (a trailing slash is fine). */
  baseUrl: string;
  /**
   * API key for the management endpoints (init, status, complete, cancel). Part uploads never send it,
   * so a browser that only uploads parts (see {@link ChunkedUploader.uploadParts}) needs none.
   */
  apiKey?: string;
  /** Timeout of one management request (init, status, complete, cancel, health) in milliseconds (default 30000). */
  timeout?: number;
  /** Timeout of one part upload attempt in milliseconds (default 300000, 0 for none). */
  partTimeout?: number;
  /** Number of parts uploaded at the same time (default 3). */
  concurrency?: number;
  /**
   * Attempts per request, the first included (default 3). Only network errors, timeouts, 408, 429
   * and 5xx are retried.
   */
  retryAttempts?: number;
  /** Base delay between attempts in milliseconds (default 1000); it doubles per attempt, with jitter. */
  retryDelay?: number;
  /** Longest delay between attempts in milliseconds (default 30000); a `Retry-After` is honoured up to 5 minutes. */
  maxRetryDelay?: number;
  /**
   * Send `X-Checksum-SHA256` with every part so the server verifies its bytes. Default: on in
   * Node.js (node:crypto hashes a part as it reads it from disk, in a first read before sending
   * it), off in browsers (Web Crypto `crypto.subtle.digest` needs the whole part in memory).
   * Ignored where no hash is available.
   */
  checksum?: boolean;
  /**
   * Custom fetch implementation. Default: the global fetch in browsers; in Node.js the SDK's own
   * node:http/https transport (see `nodeHttp`). A part of a file path or FileHandle reaches it as a
   * `ReadableStream` body with `duplex: 'half'` (and, in Node.js, `redirect: 'error'`); bytes as a
   * `Uint8Array`, a Blob as a Blob slice.
   */
  fetch?: typeof fetch;
  /**
   * Node.js only, when no `fetch` is given: send requests with node:http/https and keep-alive
   * (default true). A part read from disk then goes to the socket through two 512 KiB buffers
   * per part in flight, reused, whatever the chunk size. Set false to use the global fetch (for
   * example with an undici global dispatcher or proxy agent): parts are still streamed from disk,
   * in fresh chunks that V8 collects in its own time.
   */
  nodeHttp?: boolean;
}

/** A file-handle-like source (Node's `fs.promises.FileHandle` matches): read at a position, and stat for the size. */
export interface FileHandleLike {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
}

/** A file on disk in Node.js, read part by part (never whole). */
export interface PathSource {
  path: string;
  /** Name sent to init (default: the path's base name). */
  name?: string;
}

/**
 * What can be uploaded: a browser `File`/`Blob`, an `ArrayBuffer`, a `Uint8Array`/`Buffer` (or any
 * ArrayBufferView), and in Node.js a file path, a `{path}` object or an open `FileHandle`.
 */
export type UploadSource = Blob | ArrayBuffer | ArrayBufferView | string | PathSource | FileHandleLike;

/** Phase of an upload as seen by the progress events. */
export type UploadPhase = 'uploading' | 'finalizing' | 'complete';

/** Progress of an upload, in bytes and parts. */
export interface UploadProgressEvent {
  fileId: string;
  /** Parts on the server so far (including parts uploaded before a resume). */
  uploadedParts: number;
  totalParts: number;
  /** Bytes of the parts on the server so far. */
  bytesUploaded: number;
  /** Size of the file. */
  bytesTotal: number;
  /** `bytesUploaded / bytesTotal` in percent, 0–100 (100 for an empty file). */
  overallProgress: number;
  phase: UploadPhase;
  /** Delivery to the storage backend in percent, 0–100 (0 while uploading, 100 once complete). */
  finalizingProgress: number;
  /** The part whose upload caused this event, when there is one. */
  currentPart?: number;
}

/** Outcome of one part, passed to `onPartComplete`. */
export interface PartResult {
  partNumber: number;
  success: boolean;
  /** The server's answer when the part was stored. */
  response?: PartUploadResponse;
  error?: ChunkedUploaderError;
  /** Attempts made. */
  attempts: number;
}

/** Tokens of the parts, by part number: a Map, a plain object, or the init answer's `parts` array. */
export type PartTokens = Map<number, string> | Record<number | string, string> | ReadonlyArray<{ part: number; token?: string }>;

/** Options of uploadFile, resumeUpload and uploadParts. */
export interface UploadOptions {
  /** Called after every stored part and during finalization. */
  onProgress?: (event: UploadProgressEvent) => void;
  /** Called once per part when it is stored or has finally failed. */
  onPartComplete?: (result: PartResult) => void;
  /** Called for every failed attempt of a part (also the ones that are retried). */
  onPartError?: (partNumber: number, error: ChunkedUploaderError, attempt: number) => void;
  /** Called with the init answer (file id and part tokens) before any part is sent: keep it to resume later. */
  onInit?: (init: InitUploadResponse) => void;
  /** Aborts the upload: in-flight requests stop, nothing is deleted on the server, the upload stays resumable. */
  signal?: AbortSignal;
  /** Parts uploaded at the same time (default: the config's `concurrency`). */
  concurrency?: number;
  /** Webhook URL sent to init (uploadFile only). */
  webhookUrl?: string;
  /** Name sent to init, may include a directory path such as `videos/2024/movie.mp4` (uploadFile only; default: the file's name). */
  filename?: string;
  /** Whole-file SHA-256 (64 hex) sent to init; the server refuses delivery on a mismatch (uploadFile only). */
  checksumSha256?: string;
  /** Tokens of the parts still to upload (resumeUpload). Without them the SDK asks status with `include_tokens=true`. */
  partTokens?: PartTokens;
  /** Send `X-Checksum-SHA256` with every part (default: the config's `checksum`). */
  checksum?: boolean;
  /** Interval of status polls while the server delivers the file (default 2000 ms). */
  finalizePollIntervalMs?: number;
  /** Give up waiting for the delivery after this long (default 3600000 ms; 0 waits for ever). The upload goes on on the server. */
  finalizeTimeoutMs?: number;
}

/** Result of uploadFile and resumeUpload. */
export interface UploadResult {
  success: boolean;
  fileId: string;
  /** Name of the file as given to init (with its directory path, if any). */
  filename: string;
  totalSize: number;
  /** Where the backend keeps the file (an absolute path for the local backend). */
  finalPath?: string;
  storageBackend?: string;
  /** SHA-256 (hex) of the delivered file. */
  checksumSha256?: string;
  /** Why the upload failed; `error.message` is `'Upload aborted'` (code `aborted`) after an abort. */
  error?: ChunkedUploaderError;
  /** The server's `finalization_error` when the delivery failed. */
  finalizationError?: string;
  /** Parts that failed for good. */
  failedParts?: number[];
}

/** Result of uploadParts (parts only, no complete). */
export interface UploadPartsResult {
  success: boolean;
  fileId: string;
  uploadedParts: number;
  totalParts: number;
  error?: ChunkedUploaderError;
  failedParts?: number[];
}

// ---- server answers (docs/api.md) ----

export type PartStatus = 'pending' | 'uploaded';
export type UploadStatus = 'pending' | 'finalizing' | 'complete' | 'failed';
export type ServerPhase = 'uploading' | 'finalizing' | 'complete' | 'failed';

export interface InitPartInfo {
  part: number;
  token: string;
  status: PartStatus;
}

/** `POST /upload/init` answer. */
export interface InitUploadResponse {
  file_id: string;
  total_parts: number;
  chunk_size: number;
  parts: InitPartInfo[];
  expires_at: string;
}

/** `PUT /upload/{id}/part/{n}` answer. */
export interface PartUploadResponse {
  upload_id: string;
  part_number: number;
  status: 'uploaded';
  checksum_sha256: string;
  uploaded_parts: number;
  total_parts: number;
}

export interface StatusPartInfo {
  part: number;
  status: PartStatus;
  checksum_sha256?: string;
  /** Only with `include_tokens=true`, for pending parts. */
  token?: string;
}

/** `GET /upload/{id}/status` answer. */
export interface UploadStatusResponse {
  file_id: string;
  filename: string;
  path: string;
  total_size: number;
  chunk_size: number;
  total_parts: number;
  uploaded_parts: number;
  progress_percent: number;
  upload_progress_percent: number;
  status: UploadStatus;
  phase: ServerPhase;
  finalizing_progress_percent: number;
  bytes_delivered: number;
  final_path?: string | null;
  finalization_error?: string | null;
  checksum_sha256?: string | null;
  storage_backend?: string | null;
  created_at: string;
  expires_at: string;
  /** Listed unless `includeParts: false`. */
  parts?: StatusPartInfo[] | null;
}

/** Options of getStatus. */
export interface GetStatusOptions {
  /** List the parts (default true, the server's default). */
  includeParts?: boolean;
  /** Give every pending part its token again (to resume without the init answer). */
  includeTokens?: boolean;
  signal?: AbortSignal;
}

/** `POST /upload/{id}/complete` answer (200 complete, 202 finalizing). */
export interface CompleteUploadResponse {
  file_id: string;
  filename: string;
  total_size: number;
  status: UploadStatus;
  phase: ServerPhase;
  final_path?: string | null;
  storage_backend?: string | null;
  checksum_sha256?: string | null;
  finalizing_progress_percent: number;
}

/** `DELETE /upload/{id}` answer. */
export interface CancelUploadResponse {
  file_id: string;
  status: 'cancelled';
  message: string;
}

/** `GET /health` answer. */
export interface HealthResponse {
  status: 'ok' | 'degraded';
  storage: { backend_type: string; status: string; message?: string };
}
