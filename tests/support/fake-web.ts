/**
 * A fake `fetch` that plays web hosts for download tests: each URL answers with bytes, a
 * status, a web page, a broken-off stream, a CORS refusal (a cors request throws a bare
 * TypeError while a no-cors one gets an opaque response, as browsers do), an unreachable
 * server (both throw), or a Node system error. Records every request and the most in
 * flight at once. Unknown URLs answer 404.
 */
export type Route =
  | { bytes: Uint8Array; type?: string; delayMs?: number; length?: number }
  | { status: number; statusText?: string }
  | { page: string }
  | { cutAfter: number; bytes: Uint8Array }
  | { cors: true }
  | { unreachable: true }
  | { systemError: string };

export interface FakeWeb {
  fetch: typeof fetch;
  /** "GET url" or "NO-CORS url", in order */
  seen: string[];
  maxInFlight: number;
  routes: Map<string, Route>;
}

const sleep = (ms: number, signal?: AbortSignal | null) =>
  new Promise<void>((res, rej) => {
    const stop = () => {
      clearTimeout(t);
      rej(signal?.reason ?? new DOMException('Aborted', 'AbortError'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      res();
    }, ms);
    signal?.addEventListener('abort', stop, { once: true });
  });

export function fakeWeb(routes: Record<string, Route> = {}): FakeWeb {
  const web: FakeWeb = { fetch: undefined as never, seen: [], maxInFlight: 0, routes: new Map(Object.entries(routes)) };
  let inFlight = 0;
  web.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const noCors = init?.mode === 'no-cors';
    web.seen.push(`${noCors ? 'NO-CORS' : 'GET'} ${url}`);
    if (init?.signal?.aborted) throw init.signal.reason ?? new DOMException('Aborted', 'AbortError');
    const r = web.routes.get(url) ?? { status: 404, statusText: 'Not Found' };
    inFlight++;
    web.maxInFlight = Math.max(web.maxInFlight, inFlight);
    try {
      if ('delayMs' in r && r.delayMs) await sleep(r.delayMs, init?.signal);
      else await Promise.resolve();
      if ('cors' in r) {
        if (noCors) return new Response(null, { status: 200 }); // stands for an opaque response
        throw new TypeError('Failed to fetch');
      }
      if ('unreachable' in r) throw new TypeError('Failed to fetch');
      if ('systemError' in r) throw new TypeError('fetch failed', { cause: { code: r.systemError } });
      if ('status' in r) return new Response('error', { status: r.status, statusText: r.statusText ?? '' });
      if ('page' in r) return new Response(r.page, { status: 200, headers: { 'content-type': 'text/html' } });
      if ('cutAfter' in r) {
        const head = r.bytes.slice(0, r.cutAfter);
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (!sent) {
              sent = true;
              c.enqueue(head);
            } else c.error(new TypeError('network error'));
          },
        });
        return new Response(body, { status: 200, headers: { 'content-length': String(r.bytes.byteLength) } });
      }
      const headers: Record<string, string> = { 'content-type': r.type ?? 'application/octet-stream' };
      headers['content-length'] = String(r.length ?? r.bytes.byteLength);
      return new Response(r.bytes as Uint8Array<ArrayBuffer>, { status: 200, headers });
    } finally {
      inFlight--;
    }
  }) as typeof fetch;
  return web;
}

/** Deterministic bytes of a length (a seeded pattern). */
export function someBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let a = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    a = (a * 1664525 + 1013904223) >>> 0;
    b[i] = a >>> 24;
  }
  return b;
}

/** A memory ByteStore that counts its reads and writes. */
export function memoryStore(): {
  map: Map<string, Uint8Array>;
  puts: number;
  get(sha: string): Promise<Uint8Array | undefined>;
  put(sha: string, b: Uint8Array): Promise<void>;
} {
  const s = {
    map: new Map<string, Uint8Array>(),
    puts: 0,
    async get(sha: string) {
      return s.map.get(sha);
    },
    async put(sha: string, b: Uint8Array) {
      s.puts++;
      s.map.set(sha, b);
    },
  };
  return s;
}
