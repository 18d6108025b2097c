/**
 * Error thrown by every SDK call and carried in a failed {@link UploadResult}.
 *
 * For an HTTP error `message`, `code` and `statusCode` come from the server's JSON error body
 * (`{"error", "code", "status"}`, see docs/api.md). Errors raised on the client side have
 * `statusCode` 0 and one of the codes in {@link ClientErrorCode}.
 */
export class ChunkedUploaderError extends Error {
  /** HTTP status of the answer, or 0 when no answer was received (network error, timeout, abort, client-side check). */
  readonly statusCode: number;
  /** Stable error code: the server's `code` (such as `invalid_api_key`) or a {@link ClientErrorCode}. */
  readonly code: string | undefined;
  /** The server's `details` field when present, else the whole parsed error body (or client-side context). */
  readonly details: unknown;
  /** `X-Request-Id` of the failed answer, when the server sent one (quote it when reading the server log). */
  requestId?: string;
  /** Delay the server asked for with `Retry-After`, in milliseconds. */
  retryAfterMs?: number;

  constructor(message: string, statusCode: number, code?: string, details?: unknown) {
    super(message);
    this.name = 'ChunkedUploaderError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  /**
   * Whether the SDK retries a request that failed with this error: network errors, timeouts,
   * 408, 429 and 5xx. Every other 4xx is final.
   */
  get retryable(): boolean {
    return isRetryable(this);
  }
}

/** Codes of errors raised on the client side (`statusCode` 0). */
export type ClientErrorCode =
  | 'aborted'
  | 'invalid_config'
  | 'network_error'
  | 'timeout'
  | 'invalid_response'
  | 'invalid_source'
  | 'size_mismatch'
  | 'missing_part_tokens'
  | 'finalization_failed'
  | 'finalize_timeout';

/** Message of the error of an aborted upload (`result.error.message`). */
export const UPLOAD_ABORTED = 'Upload aborted';

export function abortedError(): ChunkedUploaderError {
  return new ChunkedUploaderError(UPLOAD_ABORTED, 0, 'aborted');
}

export function isAbortedError(err: unknown): boolean {
  return err instanceof ChunkedUploaderError && err.code === 'aborted';
}

/** Network errors, timeouts, 408, 429 and 5xx are retried; everything else is final. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof ChunkedUploaderError)) return false;
  if (err.statusCode === 0) return err.code === 'network_error' || err.code === 'timeout';
  return err.statusCode === 408 || err.statusCode === 429 || err.statusCode >= 500;
}
