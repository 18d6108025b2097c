/**
 * chunked-uploader-sdk: browser and Node.js client of the chunked-uploader server
 * (resumable chunked uploads of very large files). See docs/js-sdk.md.
 */
export { ChunkedUploader } from './client.js';
export type { UploadTarget } from './client.js';
export { ChunkedUploaderError, UPLOAD_ABORTED, isRetryable } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export type {
  CancelUploadResponse,
  ChunkedUploaderConfig,
  CompleteUploadResponse,
  FileHandleLike,
  GetStatusOptions,
  HealthResponse,
  InitPartInfo,
  InitUploadResponse,
  PartResult,
  PartStatus,
  PartTokens,
  PartUploadResponse,
  PathSource,
  ServerPhase,
  StatusPartInfo,
  UploadOptions,
  UploadPartsResult,
  UploadPhase,
  UploadProgressEvent,
  UploadResult,
  UploadSource,
  UploadStatus,
  UploadStatusResponse,
} from './types.js';
