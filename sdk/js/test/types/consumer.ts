// Compiled (not run) by the build: the public API as the docs use it, through the package's
// own "exports" map (ESM side).
import {
  ChunkedUploader,
  ChunkedUploaderError,
  type InitUploadResponse,
  type UploadProgressEvent,
  type UploadResult,
} from 'chunked-uploader-sdk';

declare const file: File;

export async function example(): Promise<UploadResult> {
  const uploader = new ChunkedUploader({ baseUrl: 'https://upload.example.com/', apiKey: 'k'.repeat(16), concurrency: 5 });
  const controller = new AbortController();
  const progress: UploadProgressEvent[] = [];
  let init: InitUploadResponse | undefined;
  const result = await uploader.uploadFile(file, {
    signal: controller.signal,
    onInit: (i) => {
      init = i;
    },
    onProgress: (e) => {
      progress.push(e);
      const pct: number = e.overallProgress;
      const phase: 'uploading' | 'finalizing' | 'complete' = e.phase;
      void pct;
      void phase;
    },
    onPartComplete: (r) => {
      if (!r.success) console.error(`Part ${r.partNumber} failed:`, r.error?.message);
    },
    onPartError: (part, err, attempt) => console.warn(part, err.code, err.statusCode, attempt),
  });
  if (!result.success && result.error?.message === 'Upload aborted' && init) {
    const tokenMap = new Map<number, string>();
    init.parts.forEach((p) => tokenMap.set(p.part, p.token));
    return uploader.resumeUpload(init.file_id, file, { partTokens: tokenMap });
  }
  try {
    await uploader.getStatus(result.fileId, { includeParts: false, includeTokens: true });
  } catch (err) {
    if (err instanceof ChunkedUploaderError && err.code === 'upload_not_found') return result;
    throw err;
  }
  await uploader.uploadPart('id', 0, 'token', new Uint8Array(4));
  await uploader.uploadParts({ file_id: 'id', chunk_size: 1, total_parts: 1, parts: [{ part: 0, token: 't' }] }, new Blob(['x']));
  await uploader.uploadFile('/tmp/big.bin');
  await uploader.uploadFile({ path: '/tmp/big.bin', name: 'videos/big.bin' });
  const finished: UploadResult = await uploader.finishUpload(result.fileId, { finalizeTimeoutMs: 0 });
  void finished;
  await uploader.cancelUpload(result.fileId);
  await uploader.healthCheck();
  return result;
}
