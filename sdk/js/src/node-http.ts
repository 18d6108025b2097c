// The default transport in Node.js: node:http / node:https with keep-alive, used instead of the
// global fetch so that a part goes from the worker's two read buffers to the socket: each chunk is
// written, and the buffer it came from is read into again only once the socket has taken it (fetch
// takes a body without saying when it is done with a chunk, so its chunks cannot be reused). Only
// what the client reads of a Response is provided.

/** What the client needs of a fetch answer. */
export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** What the client passes to a fetch implementation. */
export interface RequestInitLike {
  method?: string;
  headers?: Record<string, string>;
  body?: Blob | Uint8Array | string | ReadableStream<Uint8Array>;
  /** Required by fetch for a ReadableStream body. */
  duplex?: 'half';
  redirect?: 'error';
  window?: null;
  signal?: AbortSignal;
}

export type FetchLike = (url: string, init: RequestInitLike) => Promise<ResponseLike>;

/**
 * A request body of known size produced chunk by chunk. Chunk k may be overwritten when chunk k+2
 * is produced, so it must be on the socket before chunk k+2 is asked for (see PartBody.chunks).
 */
export interface StreamingBody {
  readonly size: number;
  chunks(): AsyncIterable<Uint8Array>;
}

/** What the client passes to the node:http transport. */
export interface NodeRequestInit {
  method: string;
  headers?: Record<string, string>;
  body?: string | StreamingBody;
  signal?: AbortSignal;
}

export type NodeFetch = (url: string, init: NodeRequestInit) => Promise<ResponseLike>;

interface IncomingLike {
  statusCode?: number;
  statusMessage?: string;
  headers: Record<string, string | string[] | undefined>;
  setEncoding(enc: string): void;
  on(event: 'data', fn: (chunk: string) => void): IncomingLike;
  on(event: 'end', fn: () => void): IncomingLike;
  on(event: 'error', fn: (err: Error) => void): IncomingLike;
  on(event: 'close', fn: () => void): IncomingLike;
}

interface ClientRequestLike {
  on(event: 'error', fn: (err: Error) => void): ClientRequestLike;
  write(chunk: Uint8Array, cb: (err?: Error | null) => void): boolean;
  end(data?: string): void;
  destroy(err?: Error): void;
}

interface HttpModule {
  Agent: new (opts: { keepAlive: boolean }) => unknown;
  request(
    url: URL,
    opts: { method: string; headers: Record<string, string | number>; agent: unknown },
    cb: (res: IncomingLike) => void,
  ): ClientRequestLike;
}

/**
 * Writes body to req chunk by chunk, then ends it. Before asking for chunk k+2 it waits until chunk
 * k has been handed to the socket (its write callback), which also bounds what waits in user space
 * to two chunks. Rejects with stopped (the request ended otherwise) or a read error of the source.
 */
async function pump(req: ClientRequestLike, body: StreamingBody, stopped: Promise<never>): Promise<void> {
  let previous: Promise<void> = Promise.resolve();
  let sent = 0;
  for await (const chunk of body.chunks()) {
    if (chunk.byteLength === 0) continue;
    const written = new Promise<void>((resolve, reject) => {
      req.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
    written.catch(() => undefined); // awaited below, or moot once the request has ended
    sent += chunk.byteLength;
    await Promise.race([previous, stopped]);
    previous = written;
  }
  await Promise.race([previous, stopped]);
  if (sent !== body.size) throw new Error(`the body has ${sent} bytes, ${body.size} were announced`);
  req.end();
}

/**
 * A fetch-like function over node:http and node:https, with one keep-alive agent per protocol. A
 * StreamingBody is pumped to the socket with backpressure; the returned promise settles only after
 * the pump has stopped, so the caller may reuse the body's buffers for its next request.
 */
export async function createNodeHttpFetch(): Promise<NodeFetch> {
  const load = (name: string): Promise<HttpModule> =>
    // Computed specifiers keep browser bundlers away from Node built-ins.
    import(/* webpackIgnore: true */ /* @vite-ignore */ ['node:', name].join('')) as Promise<HttpModule>;
  const [http, https] = await Promise.all([load('http'), load('https')]);
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

  return async (url, init) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!mod) throw new TypeError(`unsupported protocol ${u.protocol}`);
    const body = init.body;
    const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
    if (body !== undefined) {
      headers['Content-Length'] = typeof body === 'string' ? new TextEncoder().encode(body).length : body.size;
    }
    const signal = init.signal;
    return new Promise<ResponseLike>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      let settled = false;
      let stop: (err: Error) => void = () => undefined;
      const stopped = new Promise<never>((_, rej) => {
        stop = rej;
      });
      stopped.catch(() => undefined);
      let pumped: Promise<void> = Promise.resolve();
      // Settles once: stops the pump and waits for it (it may be in the middle of a read into a
      // buffer the next request will use), then resolves or rejects.
      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        stop(new Error('the request ended'));
        void pumped.then(settle, settle);
      };
      const fail = (err: unknown): void => finish(() => reject(err));
      const req = mod.request(u, { method: init.method, headers, agent: agents[u.protocol as 'http:' | 'https:'] }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('error', fail);
        res.on('close', () => fail(new Error('the connection closed before the answer ended')));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const answer: ResponseLike = {
            ok: status >= 200 && status < 300,
            status,
            statusText: res.statusMessage ?? '',
            headers: {
              get: (name) => {
                const v = res.headers[name.toLowerCase()];
                return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
              },
            },
            text: async () => text,
          };
          finish(() => resolve(answer));
        });
      });
      const onAbort = (): void => {
        const reason = signal?.reason ?? new Error('aborted');
        req.destroy(reason instanceof Error ? reason : new Error(String(reason)));
        fail(reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', fail);
      if (body === undefined || typeof body === 'string') {
        req.end(body);
        return;
      }
      const pumping = pump(req, body, stopped);
      pumped = pumping.then(
        () => undefined,
        (err: unknown) => {
          // Not all of the body went out (an early answer, an abort, a read error): the
          // connection cannot carry another request.
          req.destroy();
          fail(err);
        },
      );
    });
  };
}
