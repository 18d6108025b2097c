import { ChunkedUploaderError } from './errors.js';
import { isNode } from './internal.js';
import type { FileHandleLike, PathSource, UploadSource } from './types.js';

/** Random access to the bytes of an upload source, one part at a time. */
export interface PartReader {
  readonly size: number;
  readonly name: string;
  /**
   * The bytes [offset, offset+length) as a fetch body. With wantBytes the result is always a
   * Uint8Array (to hash it); otherwise a Blob source answers a Blob slice, which a browser streams
   * from disk.
   */
  read(offset: number, length: number, wantBytes: boolean, scratch?: Uint8Array): Promise<Blob | Uint8Array>;
  /**
   * True when read copies the bytes from disk: a caller may then pass a scratch buffer of at least
   * `length` bytes to read into (reused part after part) instead of a new allocation per part.
   */
  readonly usesScratch: boolean;
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

function bytesReader(bytes: Uint8Array, name: string): PartReader {
  return {
    size: bytes.byteLength,
    name,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
    usesScratch: false,
    close: async () => undefined,
  };
}

/** Reads length bytes at position into a new buffer, failing if the file ends first. */
async function readFully(handle: FileHandleLike, position: number, length: number, scratch?: Uint8Array): Promise<Uint8Array> {
  const buf = scratch && scratch.length >= length ? scratch.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead <= 0) {
      throw invalidSource(`the file ended at byte ${position + done}, expected ${position + length}: did it change during the upload?`);
    }
    done += bytesRead;
  }
  return buf;
}

function handleReader(handle: FileHandleLike, size: number, name: string, close: () => Promise<void>): PartReader {
  return {
    size,
    name,
    read: (offset, length, _wantBytes, scratch) => readFully(handle, offset, length, scratch),
    usesScratch: true,
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
      read: async (offset, length, wantBytes) => {
        const slice = blob.slice(offset, offset + length);
        return wantBytes ? new Uint8Array(await slice.arrayBuffer()) : slice;
      },
      usesScratch: false,
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
