// The default transport in Node.js: node:http / node:https with keep-alive, used instead of the
// global fetch so that a part's bytes go from the SDK's buffer to the socket without a copy (fetch
// copies every request body, and the copies of a fast upload pile up as garbage until V8 collects
// them). Only what the client reads of a Response is provided.

/** What the client needs of a fetch answer. */
export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface RequestInitLike {
  method?: string;
  headers?: Record<string, string>;
  body?: Blob | Uint8Array | string;
  signal?: AbortSignal;
}

export type FetchLike = (url: string, init: RequestInitLike) => Promise<ResponseLike>;

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
  end(data?: Uint8Array | string): void;
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

/** A fetch-like function over node:http and node:https, with one keep-alive agent per protocol. */
export async function createNodeHttpFetch(): Promise<FetchLike> {
  const load = (name: string): Promise<HttpModule> =>
    // Computed specifiers keep browser bundlers away from Node built-ins.
    import(/* webpackIgnore: true */ /* @vite-ignore */ ['node:', name].join('')) as Promise<HttpModule>;
  const [http, https] = await Promise.all([load('http'), load('https')]);
  const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

  return async (url, init) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
    if (!mod) throw new TypeError(`unsupported protocol ${u.protocol}`);
    let body: Uint8Array | string | undefined;
    if (init.body === undefined || typeof init.body === 'string' || init.body instanceof Uint8Array) {
      body = init.body;
    } else {
      body = new Uint8Array(await init.body.arrayBuffer());
    }
    const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
    if (body !== undefined) {
      headers['Content-Length'] = typeof body === 'string' ? new TextEncoder().encode(body).length : body.byteLength;
    }
    const signal = init.signal;
    return new Promise<ResponseLike>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const req = mod.request(u, { method: init.method ?? 'GET', headers, agent: agents[u.protocol as 'http:' | 'https:'] }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('error', fail);
        res.on('close', () => fail(new Error('the connection closed before the answer ended')));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          const status = res.statusCode ?? 0;
          resolve({
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
          });
        });
      });
      const onAbort = (): void => {
        const reason = signal?.reason ?? new Error('aborted');
        req.destroy(reason instanceof Error ? reason : new Error(String(reason)));
        fail(reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', fail);
      req.end(body);
    });
  };
}
