import { ChunkedUploaderError } from './errors.js';
import { isNode, nodeSha256, sha256Hex } from './internal.js';
import type { FileHandleLike, PathSource, UploadSource } from './types.js';

/**
 * Bytes of a part read from disk per read call, and the size of each of a worker's two read
 * buffers: memory per worker is two of these, whatever the chunk size.
 */
export const READ_SIZE = 512 * 1024;

/**
 * The two read buffers of one upload worker, reused part after part and attempt after attempt. A
 * part read from a file goes through them READ_SIZE bytes at a time (two, so that the next read
 * overlaps the socket write of the previous one). Not shared between workers.
 */
export class ReadBuffers {
  private readonly bufs: [Uint8Array | undefined, Uint8Array | undefined] = [undefined, undefined];

  get(i: 0 | 1): Uint8Array {
    return (this.bufs[i] ??= new Uint8Array(READ_SIZE));
  }
}

/** A request body for fetch, made afresh for every attempt. */
export interface FetchBody {
  body: Blob | Uint8Array | ReadableStream<Uint8Array>;
  /** True for a ReadableStream, which fetch takes only with `duplex: 'half'`. */
  stream: boolean;
  /** The error that stopped reading the source, if one did (fetch reports only its own). */
  failure(): ChunkedUploaderError | undefined;
}

/**
 * One part of an upload source, read when needed and never held whole unless the source already
 * is bytes in memory: the checksum is computed by a first read of the part, and every attempt to
 * send it reads it again.
 */
export interface PartBody {
  readonly size: number;
  /**
   * SHA-256 (lower-case hex) of the part, or undefined where no hash is available. Node.js hashes
   * as it reads (a file through the worker's read buffers); a browser reads the part into memory
   * for Web Crypto, which has no incremental hash.
   */
  sha256(): Promise<string | undefined>;
  /**
   * The part's bytes in order, read anew on every call, for the node:http transport. The chunks of
   * a file are the worker's two read buffers taken in turn: chunk k is overwritten when chunk k+2
   * is read, so the consumer must be done with chunk k (written to the socket) before it asks for
   * chunk k+2, and must not start another iteration until this one has ended.
   */
  chunks(): AsyncIterable<Uint8Array>;
  /** A new body for fetch. Fetch may keep chunks as long as it wants, so none is reused. */
  fetchBody(): FetchBody;
}

/** Random access to the bytes of an upload source, one part at a time. */
export interface PartReader {
  readonly size: number;
  readonly name: string;
  /**
   * The bytes [offset, offset+length) as a part body. buffers are the calling worker's read
   * buffers (a new pair when absent), used by file sources only.
   */
  part(offset: number, length: number, buffers?: ReadBuffers): PartBody;
  /** Releases what open acquired (a file opened by path); a handle given by the caller stays open. */
  close(): Promise<void>;
}

interface NodeFsPromises {
  open(path: string, flags: string): Promise<FileHandleLike & { close(): Promise<void> }>;
}

function invalidSource(message: string): ChunkedUploaderError {
  return new ChunkedUploaderError(message, 0, 'invalid_source');
}

function isBlob(src: unknown): src is Blob {
  if (typeof Blob !== 'undefined' && src instanceof Blob) return true;
  const b = src as Partial<Blob> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.size === 'number' &&
    typeof b.slice === 'function' &&
    typeof b.arrayBuffer === 'function'
  );
}

function isArrayBuffer(src: unknown): src is ArrayBuffer {
  if (src instanceof ArrayBuffer) return true;
  const tag = Object.prototype.toString.call(src);
  return tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]';
}

function isFileHandle(src: unknown): src is FileHandleLike {
  const h = src as Partial<FileHandleLike> | null;
  return typeof h === 'object' && h !== null && typeof h.read === 'function' && typeof h.stat === 'function';
}

function isPathSource(src: unknown): src is PathSource {
  const p = src as Partial<PathSource> | null;
  return typeof p === 'object' && p !== null && typeof p.path === 'string';
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter((s) => s !== '');
  return parts[parts.length - 1] ?? 'file';
}

function bytesPart(bytes: Uint8Array): PartBody {
  return {
    size: bytes.byteLength,
    sha256: () => sha256Hex(bytes),
    chunks: async function* () {
      if (bytes.byteLength > 0) yield bytes;
    },
    fetchBody: () => ({ body: bytes, stream: false, failure: () => undefined }),
  };
}

function bytesReader(bytes: Uint8Array, name: string): PartReader {
  return {
    size: bytes.byteLength,
    name,
    part: (offset, length) => bytesPart(bytes.subarray(offset, offset + length)),
    close: async () => undefined,
  };
}

/** The chunks of a Blob in order: its stream, or slices of READ_SIZE for a Blob-like without stream(). */
async function* blobChunks(blob: Blob): AsyncGenerator<Uint8Array> {
  if (typeof blob.stream !== 'function') {
    for (let pos = 0; pos < blob.size; pos += READ_SIZE) {
      yield new Uint8Array(await blob.slice(pos, pos + READ_SIZE).arrayBuffer());
    }
    return;
  }
  const reader = blob.stream().getReader();
  let done = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
  }
}

function blobPart(slice: Blob): PartBody {
  return {
    size: slice.size,
    sha256: async () => {
      const hash = await nodeSha256();
      if (!hash) return sha256Hex(new Uint8Array(await slice.arrayBuffer()));
      for await (const chunk of blobChunks(slice)) hash.update(chunk);
      return hash.digest('hex');
    },
    chunks: () => blobChunks(slice),
    fetchBody: () => ({ body: slice, stream: false, failure: () => undefined }),
  };
}

function readError(err: unknown): ChunkedUploaderError {
  if (err instanceof ChunkedUploaderError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ChunkedUploaderError(`reading the file: ${message}`, 0, 'invalid_source', { cause: err });
}

/**
 * Reads length bytes at position into buf (a new buffer when absent), failing with invalid_source
 * if the file ends first or cannot be read.
 */
async function readFully(handle: FileHandleLike, position: number, length: number, buf?: Uint8Array): Promise<Uint8Array> {
  const out = buf ? buf.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, position + done);
      if (bytesRead <= 0) {
        throw invalidSource(`the file ended at byte ${position + done}, expected ${position + length}: did it change during the upload?`);
      }
      done += bytesRead;
    }
  } catch (err) {
    throw readError(err);
  }
  return out;
}

function handlePart(handle: FileHandleLike, offset: number, length: number, buffers: ReadBuffers): PartBody {
  const end = offset + length;
  return {
    size: length,
    sha256: async () => {
      const hash = await nodeSha256();
      if (!hash) return undefined;
      const buf = buffers.get(0);
      for (let pos = offset; pos < end; pos += READ_SIZE) {
        hash.update(await readFully(handle, pos, Math.min(READ_SIZE, end - pos), buf));
      }
      return hash.digest('hex');
    },
    chunks: async function* () {
      let i: 0 | 1 = 0;
      for (let pos = offset; pos < end; pos += READ_SIZE) {
        yield await readFully(handle, pos, Math.min(READ_SIZE, end - pos), buffers.get(i));
        i = i === 0 ? 1 : 0;
      }
    },
    fetchBody: () => {
      let failure: ChunkedUploaderError | undefined;
      let pos = offset;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (pos >= end) {
            controller.close();
            return;
          }
          const n = Math.min(READ_SIZE, end - pos);
          try {
            controller.enqueue(await readFully(handle, pos, n));
          } catch (err) {
            failure = readError(err);
            throw failure;
          }
          pos += n;
          if (pos >= end) controller.close();
        },
      });
      return { body, stream: true, failure: () => failure };
    },
  };
}

function handleReader(handle: FileHandleLike, size: number, name: string, close: () => Promise<void>): PartReader {
  return {
    size,
    name,
    part: (offset, length, buffers) => handlePart(handle, offset, length, buffers ?? new ReadBuffers()),
    close,
  };
}

async function importFs(): Promise<NodeFsPromises> {
  // A computed specifier keeps browser bundlers from resolving a Node built-in they do not have.
  const specifier = ['node:fs', 'promises'].join('/');
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as NodeFsPromises;
}

/** Opens an upload source for reading by parts. nameOverride replaces the derived file name. */
export async function openSource(src: UploadSource, nameOverride?: string): Promise<PartReader> {
  const named = (name: string): string => (nameOverride !== undefined && nameOverride !== '' ? nameOverride : name);

  if (typeof src === 'string' || isPathSource(src)) {
    const path = typeof src === 'string' ? src : src.path;
    if (!isNode()) throw invalidSource('a file path can only be uploaded in Node.js; pass a File or Blob in a browser');
    const fs = await importFs();
    const handle = await fs.open(path, 'r');
    try {
      const { size } = await handle.stat();
      const name = named(typeof src === 'string' ? baseName(path) : (src.name ?? baseName(path)));
      return handleReader(handle, size, name, () => handle.close());
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }
  if (isBlob(src)) {
    const blob = src;
    const fileName = (blob as Partial<File>).name;
    return {
      size: blob.size,
      name: named(typeof fileName === 'string' && fileName !== '' ? fileName : 'blob'),
      part: (offset, length) => blobPart(blob.slice(offset, offset + length)),
      close: async () => undefined,
    };
  }
  if (isArrayBuffer(src)) return bytesReader(new Uint8Array(src), named('file'));
  if (ArrayBuffer.isView(src)) {
    return bytesReader(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), named('file'));
  }
  if (isFileHandle(src)) {
    const { size } = await src.stat();
    return handleReader(src, size, named('file'), async () => undefined);
  }
  throw invalidSource('unsupported source: pass a File, Blob, ArrayBuffer, Uint8Array/Buffer, a file path, {path} or a FileHandle');
}
