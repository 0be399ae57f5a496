/**
 * Verified downloads of files whose size and sha256 are known in advance (registry images
 * and models): each file is tried at its URLs in order (configured mirrors, then public
 * sources), falling back to the next on any failure; its bytes must have the promised size
 * and sha256 (Web Crypto) or they are refused, naming both hashes; a verified file goes
 * into the injected store (IndexedDB in the app, a folder in the CLI) under its sha256, so
 * a second visit downloads nothing. Many files download in parallel with a bound, report
 * progress in bytes and files, and stop on an AbortSignal.
 *
 * A failed attempt is classified into one cause, because a browser reports most of them
 * alike (a bare TypeError): blocked by the site's policy (the URL is outside connect-src,
 * or a securitypolicyviolation event named it), no CORS header (a no-cors probe reaches
 * the server), not found (404), another HTTP status, a web page instead of the file,
 * wrong size or sha256, offline (navigator.onLine false), an interrupted transfer, or a
 * server that cannot be reached (Node names the system error).
 *
 * Pure apart from the injected fetch and store. Must not: touch the DOM, IndexedDB or the
 * file system itself, or keep bytes that were not verified.
 */
import { QpError, type ErrorCode } from '../util/errors.ts';
import { sha256Hex } from '../util/sha256.ts';

/** A file to download: what it must be, and where to try, in order. */
export interface WantedFile {
  /** shown in messages: the file name */
  name: string;
  bytes: number;
  /** 64 lowercase hex digits */
  sha256: string;
  urls: string[];
}

/** Verified bytes by sha256. put is only called with bytes that match their key. */
export interface ByteStore {
  get(sha256: string): Promise<Uint8Array | undefined>;
  put(sha256: string, bytes: Uint8Array, info: { name: string; url: string }): Promise<void>;
}

export interface DownloadEnv {
  fetch: typeof fetch;
  /** the page's address (location.href): an https page may not fetch plain http (mixed content) */
  pageUrl?: string;
  /** navigator.onLine in a browser; false means no network at all */
  online?: () => boolean;
  /** the site's connect-src check (csp.ts connectCheck); false: the policy forbids fetching the URL */
  policyAllows?: (url: string) => boolean;
  /** whether a securitypolicyviolation event named this URL's origin since `mark` (violationLog) */
  violated?: (url: string, mark: number) => boolean;
  /** a mark for `violated`: call before fetching */
  violationMark?: () => number;
}

export type FailureCause =
  | 'policy'
  | 'mixed-content'
  | 'cors'
  | 'not-found'
  | 'http'
  | 'web-page'
  | 'size'
  | 'sha256'
  | 'offline'
  | 'interrupted'
  | 'network';

export interface Attempt {
  url: string;
  cause: FailureCause;
  /** the cause as a clause: "the site's policy blocked it: …" */
  reason: string;
}

/** Every attempt at a file failed; `attempts` say why, one cause each. */
export class DownloadError extends QpError {
  readonly attempts: Attempt[];
  constructor(code: ErrorCode, message: string, attempts: Attempt[]) {
    super(code, message);
    this.name = 'DownloadError';
    this.attempts = attempts;
  }
}

export interface TransferProgress {
  /** files ready (downloaded or found in the store) of all wanted */
  files: number;
  totalFiles: number;
  /** bytes downloaded so far of those that must be downloaded */
  bytes: number;
  totalBytes: number;
  /** files that came from the store */
  cached: number;
}

const MB = (n: number) => `${(n / 1e6).toLocaleString('en', { maximumFractionDigits: 1 })} MB`;
/** a size in a message: kB below a megabyte, so a 100 kB image does not read "0.1 MB" */
const size = (n: number) => (n < 1e6 ? `${(n / 1e3).toLocaleString('en', { maximumFractionDigits: 1 })} kB` : MB(n));

/** "12.3 of 40.1 MB, 35 of 120 files" (what is left to download, and how far). */
export function progressText(p: TransferProgress, unit = 'files'): string {
  const files = `${p.files.toLocaleString('en')} of ${p.totalFiles.toLocaleString('en')} ${unit}`;
  if (p.totalBytes === 0) return `${files} (all stored in this browser already)`;
  return `${MB(p.bytes)} of ${MB(p.totalBytes)}, ${files}`;
}

function originOf(url: string): string {
  try {
    const u = new URL(url);
    return u.protocol === 'file:' ? url : u.origin;
  } catch {
    return url;
  }
}

const isAbort = (e: unknown) => (e as { name?: string } | null)?.name === 'AbortError';

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The download was cancelled.', 'AbortError');
}

class AttemptFailure extends Error {
  constructor(readonly attempt: Attempt) {
    super(attempt.reason);
  }
}

const fail = (url: string, cause: FailureCause, reason: string) => new AttemptFailure({ url, cause, reason });

/** The system error Node's fetch carries (ECONNREFUSED, ENOTFOUND, …), if any. */
function systemCause(e: unknown): string | undefined {
  const c = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (c && typeof c.code === 'string') return c.code;
  if (c && typeof c.message === 'string') return c.message;
  return undefined;
}

const SYSTEM_WORDS: Record<string, string> = {
  ECONNREFUSED: 'nothing answers there (connection refused)',
  ENOTFOUND: 'its host name does not resolve (ENOTFOUND)',
  EAI_AGAIN: 'its host name could not be resolved (EAI_AGAIN)',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed',
};

/** Loopback hosts are "potentially trustworthy": an https page may fetch them over http. */
const LOOPBACK = /^(localhost|.*\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether browsers block fetching `url` from `pageUrl` as mixed content. */
export function isMixedContent(pageUrl: string | undefined, url: string): boolean {
  if (!pageUrl) return false;
  try {
    const page = new URL(pageUrl);
    const u = new URL(url, page);
    return page.protocol === 'https:' && u.protocol === 'http:' && !LOOPBACK.test(u.hostname);
  } catch {
    return false;
  }
}

/** Why a fetch() that threw (not aborted) failed: policy, offline, CORS or network. */
async function classifyThrow(env: DownloadEnv, url: string, e: unknown, mark: number, signal: AbortSignal) {
  const origin = originOf(url);
  if (env.policyAllows && !env.policyAllows(url)) {
    return fail(
      url,
      'policy',
      `the download from ${origin} was blocked by the site's policy: its Content-Security-Policy (connect-src) does not allow ${origin}`,
    );
  }
  if (env.violated) {
    // the violation event is queued as a task: let it arrive before deciding
    await new Promise((r) => setTimeout(r, 0));
    if (env.violated(url, mark))
      return fail(
        url,
        'policy',
        `the download from ${origin} was blocked by the site's policy: its Content-Security-Policy (connect-src) refused ${origin}`,
      );
  }
  if (env.online && !env.online()) return fail(url, 'offline', 'this device is offline');
  const sys = systemCause(e);
  if (sys) return fail(url, 'network', `${origin} could not be reached: ${SYSTEM_WORDS[sys] ?? sys}`);
  // A browser: CORS refusals and unreachable servers both throw a bare TypeError. A no-cors
  // request reaches a live server and yields an opaque response: then CORS was the cause.
  // HEAD, so a large file is not sent a second time just to learn that.
  try {
    const probe = await env.fetch(url, { mode: 'no-cors', signal, method: 'HEAD' });
    if (probe.type === 'opaque' || probe.ok)
      return fail(
        url,
        'cors',
        `${origin} answered without a CORS header (Access-Control-Allow-Origin), so the browser does not let the page read the file`,
      );
  } catch (probeError) {
    if (isAbort(probeError)) throw probeError;
  }
  return fail(
    url,
    'network',
    `${origin} could not be reached (${(e as Error)?.message || 'network error'}: the server is down or the address is wrong, or it does not send CORS headers)`,
  );
}

/** Reads exactly `want.bytes` bytes, refusing more as soon as they arrive. */
async function readBody(
  res: Response,
  url: string,
  want: WantedFile,
  signal: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<Uint8Array> {
  const origin = originOf(url);
  const tooMany = (n: number) =>
    fail(
      url,
      'size',
      `${origin} sent more than the ${want.bytes.toLocaleString('en')} bytes the file has (${n.toLocaleString('en')} so far)`,
    );
  const announced = Number(res.headers.get('content-length'));
  // A compressed transfer announces the compressed size; only an identity length can be compared.
  if (announced && !res.headers.get('content-encoding') && announced !== want.bytes) {
    void res.body?.cancel().catch(() => undefined);
    throw fail(
      url,
      'size',
      `${origin} has a file of ${announced.toLocaleString('en')} bytes there, not the ${want.bytes.toLocaleString('en')} bytes expected`,
    );
  }
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    onBytes?.(all.byteLength);
    return all;
  }
  const reader = res.body.getReader();
  const out = new Uint8Array(want.bytes);
  let loaded = 0;
  try {
    for (;;) {
      if (signal.aborted) throw abortError(signal);
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        if (isAbort(e)) throw e;
        throw fail(
          url,
          'interrupted',
          `the download from ${origin} broke off after ${size(loaded)} of ${size(want.bytes)} (${(e as Error)?.message || 'connection lost'})`,
        );
      }
      if (step.done) break;
      if (loaded + step.value.byteLength > want.bytes) throw tooMany(loaded + step.value.byteLength);
      out.set(step.value, loaded);
      loaded += step.value.byteLength;
      onBytes?.(step.value.byteLength);
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  if (loaded < want.bytes)
    throw fail(
      url,
      'size',
      `${origin} sent ${loaded.toLocaleString('en')} bytes, not the ${want.bytes.toLocaleString('en')} bytes the file has`,
    );
  return out;
}

/** One attempt at one URL: the verified bytes, or an AttemptFailure naming the cause. */
async function attempt(
  env: DownloadEnv,
  want: WantedFile,
  url: string,
  signal: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<Uint8Array> {
  const origin = originOf(url);
  if (signal.aborted) throw abortError(signal);
  if (env.online && !env.online()) throw fail(url, 'offline', 'this device is offline');
  if (isMixedContent(env.pageUrl, url))
    throw fail(
      url,
      'mixed-content',
      `the browser refuses ${origin} as mixed content: a page served over https may not download from a plain-http address`,
    );
  const mark = env.violationMark?.() ?? 0;
  let res: Response;
  try {
    res = await env.fetch(url, { signal });
  } catch (e) {
    if (isAbort(e) || signal.aborted) throw signal.aborted ? abortError(signal) : e;
    throw await classifyThrow(env, url, e, mark, signal);
  }
  if (res.status === 404 || res.status === 410) {
    void res.body?.cancel().catch(() => undefined);
    throw fail(url, 'not-found', `${url} was not found (${res.status})`);
  }
  if (!res.ok) {
    void res.body?.cancel().catch(() => undefined);
    throw fail(url, 'http', `${origin} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  if ((res.headers.get('content-type') ?? '').includes('text/html') && !want.name.endsWith('.html')) {
    void res.body?.cancel().catch(() => undefined);
    throw fail(
      url,
      'web-page',
      `${origin} answered with a web page instead of the file (often a host's fallback page for a file it does not have)`,
    );
  }
  let got = 0;
  let bytes: Uint8Array;
  try {
    bytes = await readBody(res, url, want, signal, (n) => {
      got += n;
      onBytes?.(n);
    });
  } catch (e) {
    onBytes?.(-got); // progress counts only bytes that are kept
    throw e;
  }
  const sha = await sha256Hex(bytes);
  if (sha !== want.sha256) {
    onBytes?.(-got);
    throw fail(url, 'sha256', `${origin} sent a file whose sha256 is ${sha}, not the expected ${want.sha256}`);
  }
  return bytes;
}

const ADVICE: Record<FailureCause, string> = {
  'mixed-content':
    'Serve the mirror over https (or put it inside the site with `npm run mirror -- --out dist/mirror`); docs/hosting.md explains.',
  policy:
    "Add the mirror to the site's site.json and rebuild the site (or run `npm run site -- DIST`), or use an https: mirror.",
  cors: 'The server must send Access-Control-Allow-Origin (docs/hosting.md shows how), or use another mirror.',
  'not-found': 'The mirror lacks this file: rewrite it with `npm run mirror`, or remove it from the list.',
  http: 'Try again later, or use another mirror.',
  'web-page': 'The mirror lacks this file: rewrite it with `npm run mirror`, or remove it from the list.',
  size: 'The copy there is not the registry file; rewrite the mirror with `npm run mirror`.',
  sha256: 'The copy there is not the registry file; rewrite the mirror with `npm run mirror`.',
  offline: 'Connect to a network and try again; files downloaded before are kept.',
  interrupted: 'Try again; nothing partial was kept.',
  network: 'Check the address and the connection, then try again.',
};

/** The error for a file no URL gave: one sentence of causes, one of what to do. */
export function downloadError(want: WantedFile, attempts: Attempt[], kind: 'model' | 'image'): DownloadError {
  const causes = new Set(attempts.map((a) => a.cause));
  const only = (c: FailureCause) => causes.size === 1 && causes.has(c);
  const code: ErrorCode = only('policy')
    ? 'DOWNLOAD_BLOCKED'
    : only('offline')
      ? 'DOWNLOAD_OFFLINE'
      : causes.has('sha256') || causes.has('size')
        ? kind === 'model'
          ? 'MODEL_SHA_MISMATCH'
          : 'DATA_SHA_MISMATCH'
        : kind === 'model'
          ? 'MODEL_DOWNLOAD_FAILED'
          : 'DATA_NOT_FOUND';
  const what = `${kind === 'model' ? 'the model' : 'the image'} "${want.name}"`;
  const first = attempts[0];
  const body =
    attempts.length === 1
      ? `Could not download ${what}: ${first.reason}.`
      : attempts.every((a) => a.cause === 'offline')
        ? `Could not download ${what}: this device is offline.`
        : `Could not download ${what} from any of its ${attempts.length} sources: ${attempts.map((a) => a.reason).join('; ')}.`;
  // the advice for the first source's cause: the one the site meant to use
  return new DownloadError(code, `${body} ${ADVICE[first.cause]}`, attempts);
}

/**
 * The verified bytes of `want` from its first URL that gives them; falls back to the next
 * URL on any failure except cancellation and being offline (no URL can work then).
 * Throws DownloadError listing every attempt, or the abort reason.
 */
export async function downloadVerified(
  env: DownloadEnv,
  want: WantedFile,
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void; kind?: 'model' | 'image' } = {},
): Promise<{ bytes: Uint8Array; url: string }> {
  const signal = opts.signal ?? new AbortController().signal;
  const attempts: Attempt[] = [];
  if (!want.urls.length) throw new QpError('INTERNAL', `No address was given for "${want.name}".`);
  for (const url of want.urls) {
    try {
      return { bytes: await attempt(env, want, url, signal, opts.onBytes), url };
    } catch (e) {
      if (!(e instanceof AttemptFailure)) throw e;
      attempts.push(e.attempt);
      if (e.attempt.cause === 'offline') break;
    }
  }
  throw downloadError(want, attempts, opts.kind ?? 'image');
}

/** The stored bytes of `want` if the store has them intact (size and sha256 re-checked). */
async function fromStore(store: ByteStore | undefined, want: WantedFile): Promise<Uint8Array | undefined> {
  const b = await store?.get(want.sha256);
  if (!b || b.byteLength !== want.bytes) return undefined;
  return (await sha256Hex(b)) === want.sha256 ? b : undefined;
}

/** One file: from the store, else downloaded, verified and stored. */
export async function getFile(
  env: DownloadEnv,
  want: WantedFile,
  opts: { store?: ByteStore; signal?: AbortSignal; onBytes?: (n: number) => void; kind?: 'model' | 'image' } = {},
): Promise<{ bytes: Uint8Array; url?: string; cached: boolean }> {
  const stored = await fromStore(opts.store, want);
  if (stored) return { bytes: stored, cached: true };
  const { bytes, url } = await downloadVerified(env, want, opts);
  await opts.store?.put(want.sha256, bytes, { name: want.name, url });
  return { bytes, url, cached: false };
}

export interface GetFilesOptions {
  store?: ByteStore;
  signal?: AbortSignal;
  /** files in flight at once (default 6: a browser's connections per host) */
  concurrency?: number;
  onProgress?: (p: TransferProgress) => void;
  kind?: 'model' | 'image';
  /** receives each file's bytes as it is ready; without it the bytes are returned */
  onFile?: (index: number, bytes: Uint8Array) => void;
}

/**
 * Many files: those in the store are read first (nothing is downloaded for them), the rest
 * download `concurrency` at a time. Progress counts the bytes still to download. On the
 * first failure or on abort the others stop and the error is thrown. Returns the bytes in
 * order (empty entries when `onFile` takes them).
 */
export async function getFiles(
  env: DownloadEnv,
  wants: readonly WantedFile[],
  opts: GetFilesOptions = {},
): Promise<Uint8Array[]> {
  const outer = opts.signal;
  const inner = new AbortController();
  const stopOnOuter = () => inner.abort(outer?.reason);
  if (outer?.aborted) throw abortError(outer);
  outer?.addEventListener('abort', stopOnOuter, { once: true });
  const out: Uint8Array[] = new Array(wants.length);
  const deliver = (i: number, b: Uint8Array) => (opts.onFile ? opts.onFile(i, b) : (out[i] = b));
  const p: TransferProgress = { files: 0, totalFiles: wants.length, bytes: 0, totalBytes: 0, cached: 0 };
  const report = () => opts.onProgress?.({ ...p });
  try {
    const stored = await Promise.all(wants.map((w) => fromStore(opts.store, w)));
    const missing: number[] = [];
    stored.forEach((b, i) => {
      if (b) {
        deliver(i, b);
        p.files++;
        p.cached++;
      } else {
        missing.push(i);
        p.totalBytes += wants[i].bytes;
      }
    });
    report();
    let next = 0;
    let lastReport = 0;
    const worker = async () => {
      while (next < missing.length) {
        if (inner.signal.aborted) throw abortError(inner.signal);
        const i = missing[next++];
        const { bytes, url } = await downloadVerified(env, wants[i], {
          signal: inner.signal,
          kind: opts.kind,
          onBytes: (n) => {
            p.bytes += n;
            const now = Date.now();
            if (now - lastReport > 100) {
              lastReport = now;
              report();
            }
          },
        });
        await opts.store?.put(wants[i].sha256, bytes, { name: wants[i].name, url });
        deliver(i, bytes);
        p.files++;
        report();
      }
    };
    const n = Math.max(1, Math.min(opts.concurrency ?? 6, missing.length));
    const workers = Array.from({ length: n }, () => worker());
    try {
      await Promise.all(workers);
    } catch (e) {
      inner.abort(e);
      await Promise.allSettled(workers);
      throw outer?.aborted ? abortError(outer) : e;
    }
    return out;
  } finally {
    outer?.removeEventListener('abort', stopOnOuter);
  }
}

/**
 * Records securitypolicyviolation events (connect-src) on `target` (a worker's global or a
 * document) so a failed fetch can be attributed to the site's policy.
 */
export function violationLog(target: {
  addEventListener(type: 'securitypolicyviolation', fn: (e: Event) => void): void;
}): Pick<DownloadEnv, 'violated' | 'violationMark'> {
  const seen: { n: number; origin: string }[] = [];
  let n = 0;
  target.addEventListener('securitypolicyviolation', (e) => {
    const ev = e as Event & { blockedURI?: string; effectiveDirective?: string; violatedDirective?: string };
    const dir = ev.effectiveDirective ?? ev.violatedDirective ?? '';
    if (!dir.startsWith('connect-src') && !dir.startsWith('default-src')) return;
    seen.push({ n: ++n, origin: originOf(ev.blockedURI ?? '') });
    if (seen.length > 200) seen.shift();
  });
  return {
    violationMark: () => n,
    violated: (url, mark) => seen.some((s) => s.n > mark && s.origin === originOf(url)),
  };
}
