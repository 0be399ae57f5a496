/**
 * Verified downloads (src/lib/data/downloads.ts) against a fake web: size and sha256
 * verification, mirror order and fallback, the store (a second visit downloads nothing),
 * bounded parallel downloads with progress and cancellation, and one sentence per cause
 * of failure.
 */
import { describe, expect, it } from 'vitest';
import {
  DownloadError,
  downloadVerified,
  getFile,
  getFiles,
  isMixedContent,
  progressText,
  violationLog,
  type DownloadEnv,
  type TransferProgress,
  type WantedFile,
} from '../../src/lib/data/downloads.ts';
import { connectCheck } from '../../src/lib/util/csp.ts';
import { sha256Hex } from '../../src/lib/util/sha256.ts';
import { fakeWeb, memoryStore, someBytes, type Route } from '../support/fake-web.ts';

const M1 = 'http://10.0.0.5/qp/imagenet-sample/a.JPEG';
const M2 = 'https://mirror.example/imagenet-sample/a.JPEG';
const PUB = 'https://raw.githubusercontent.com/x/y/abc/a.JPEG';

async function wantOf(bytes: Uint8Array, urls: string[], name = 'a.JPEG'): Promise<WantedFile> {
  return { name, bytes: bytes.byteLength, sha256: await sha256Hex(bytes), urls };
}

async function failure(p: Promise<unknown>): Promise<DownloadError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DownloadError);
  return e as DownloadError;
}

const FILE = someBytes(5000, 7);

async function single(route: Route, env: Partial<DownloadEnv> = {}) {
  const web = fakeWeb({ [M2]: route });
  const want = await wantOf(FILE, [M2]);
  return { web, err: await failure(downloadVerified({ fetch: web.fetch, ...env }, want)) };
}

describe('verification', () => {
  it('returns the bytes when size and sha256 match', async () => {
    const web = fakeWeb({ [PUB]: { bytes: FILE } });
    const r = await downloadVerified({ fetch: web.fetch }, await wantOf(FILE, [PUB]));
    expect(r.url).toBe(PUB);
    expect(await sha256Hex(r.bytes)).toBe(await sha256Hex(FILE));
  });

  it('refuses a file whose bytes differ, naming both full hashes', async () => {
    const other = FILE.slice();
    other[100] ^= 1;
    const { err } = await single({ bytes: other });
    const got = await sha256Hex(other);
    const want = await sha256Hex(FILE);
    expect(err.code).toBe('DATA_SHA_MISMATCH');
    expect(err.attempts.map((a) => a.cause)).toEqual(['sha256']);
    expect(err.message).toContain(got);
    expect(err.message).toContain(want);
    expect(err.message).toMatch(
      /^Could not download the image "a\.JPEG": https:\/\/mirror\.example sent a file whose sha256 is [0-9a-f]{64}, not the expected [0-9a-f]{64}\./,
    );
  });

  it('refuses a file of another size before reading it (Content-Length), and a short or long body', async () => {
    const announced = await single({ bytes: FILE.slice(0, 4000) });
    expect(announced.err.attempts[0].cause).toBe('size');
    expect(announced.err.message).toContain('has a file of 4,000 bytes there, not the 5,000 bytes expected');
    // a body longer than the manifest's size is cut off as soon as it passes it
    const long = await single({ bytes: someBytes(9000, 7), length: 0 });
    expect(long.err.attempts[0].cause).toBe('size');
    expect(long.err.message).toContain('sent more than the 5,000 bytes');
  });

  it('says a transfer that broke off, with how far it got', async () => {
    const { err } = await single({ cutAfter: 1000, bytes: FILE });
    expect(err.attempts[0].cause).toBe('interrupted');
    expect(err.message).toContain(
      'the download from https://mirror.example broke off after 1 kB of 5 kB (network error)',
    );
  });
});

describe('mirror order and fallback', () => {
  it('tries the URLs in order and falls back to the next on any failure', async () => {
    const web = fakeWeb({
      [M1]: { status: 404 },
      [M2]: { status: 503, statusText: 'Service Unavailable' },
      [PUB]: { bytes: FILE },
    });
    const r = await downloadVerified({ fetch: web.fetch }, await wantOf(FILE, [M1, M2, PUB]));
    expect(r.url).toBe(PUB);
    expect(web.seen).toEqual([`GET ${M1}`, `GET ${M2}`, `GET ${PUB}`]);
  });

  it('stops at the first URL that gives the file', async () => {
    const web = fakeWeb({ [M1]: { bytes: FILE }, [PUB]: { bytes: FILE } });
    const r = await downloadVerified({ fetch: web.fetch }, await wantOf(FILE, [M1, PUB]));
    expect(r.url).toBe(M1);
    expect(web.seen).toEqual([`GET ${M1}`]);
  });

  it('falls back past a mirror with a wrong copy, and lists every cause when all fail', async () => {
    const bad = someBytes(5000, 8);
    const web = fakeWeb({ [M1]: { bytes: bad }, [PUB]: { bytes: FILE } });
    expect((await downloadVerified({ fetch: web.fetch }, await wantOf(FILE, [M1, PUB]))).url).toBe(PUB);
    const web2 = fakeWeb({ [M1]: { bytes: bad }, [M2]: { status: 404 } });
    const err = await failure(downloadVerified({ fetch: web2.fetch }, await wantOf(FILE, [M1, M2])));
    expect(err.attempts.map((a) => a.cause)).toEqual(['sha256', 'not-found']);
    expect(err.message).toMatch(
      /^Could not download the image "a\.JPEG" from any of its 2 sources: http:\/\/10\.0\.0\.5 sent a file whose sha256 is .*; https:\/\/mirror\.example\/imagenet-sample\/a\.JPEG was not found \(404\)\./,
    );
  });
});

describe('one sentence per cause', () => {
  it('not found', async () => {
    const { err } = await single({ status: 404 });
    expect(err.code).toBe('DATA_NOT_FOUND');
    expect(err.message).toBe(
      `Could not download the image "a.JPEG": ${M2} was not found (404). The mirror lacks this file: rewrite it with \`npm run mirror\`, or remove it from the list.`,
    );
  });

  it('another status', async () => {
    const { err } = await single({ status: 500, statusText: 'Internal Server Error' });
    expect(err.message).toContain('https://mirror.example answered 500 Internal Server Error');
  });

  it('a web page instead of the file', async () => {
    const { err } = await single({ page: '<!doctype html><title>app</title>' });
    expect(err.attempts[0].cause).toBe('web-page');
    expect(err.message).toContain('answered with a web page instead of the file');
  });

  it("blocked by the site's policy: the URL is outside connect-src", async () => {
    const policy = "default-src 'self'; connect-src 'self' https:";
    const web = fakeWeb({ [M1]: { unreachable: true } });
    const env: DownloadEnv = { fetch: web.fetch, policyAllows: connectCheck(policy, 'https://site.example/app/') };
    const err = await failure(downloadVerified(env, await wantOf(FILE, [M1])));
    expect(err.code).toBe('DOWNLOAD_BLOCKED');
    expect(err.attempts[0].cause).toBe('policy');
    expect(err.message).toContain(
      "the download from http://10.0.0.5 was blocked by the site's policy: its Content-Security-Policy (connect-src) does not allow http://10.0.0.5",
    );
    expect(err.message).toContain('site.json');
    // a policy that lists the origin does not blame the policy
    const listed = connectCheck("connect-src 'self' https: http://10.0.0.5", 'https://site.example/app/');
    const err2 = await failure(downloadVerified({ fetch: web.fetch, policyAllows: listed }, await wantOf(FILE, [M1])));
    expect(err2.attempts[0].cause).toBe('network');
  });

  it("blocked by the site's policy: a securitypolicyviolation event named the origin", async () => {
    const target = new EventTarget();
    const log = violationLog(target);
    const web = fakeWeb();
    web.fetch = (async (url: string) => {
      // the browser refuses the request and queues the violation event
      setTimeout(() => {
        const ev = new Event('securitypolicyviolation') as Event & Record<string, string>;
        Object.assign(ev, { blockedURI: url, effectiveDirective: 'connect-src' });
        target.dispatchEvent(ev);
      }, 0);
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    const err = await failure(downloadVerified({ fetch: web.fetch, ...log }, await wantOf(FILE, [M1])));
    expect(err.attempts[0].cause).toBe('policy');
    expect(err.message).toContain("was blocked by the site's policy");
  });

  it('no CORS header: the no-cors probe reaches the server', async () => {
    const { web, err } = await single({ cors: true });
    expect(web.seen).toEqual([`GET ${M2}`, `NO-CORS ${M2}`]);
    expect(err.attempts[0].cause).toBe('cors');
    expect(err.message).toContain(
      'https://mirror.example answered without a CORS header (Access-Control-Allow-Origin), so the browser does not let the page read the file',
    );
  });

  it('unreachable in a browser: neither request gets through', async () => {
    const { err } = await single({ unreachable: true });
    expect(err.attempts[0].cause).toBe('network');
    expect(err.message).toContain('https://mirror.example could not be reached (Failed to fetch');
  });

  it("unreachable in Node: the system error's meaning", async () => {
    const { web, err } = await single({ systemError: 'ECONNREFUSED' });
    expect(web.seen).toEqual([`GET ${M2}`]); // no probe: Node says what happened
    expect(err.message).toContain(
      'https://mirror.example could not be reached: nothing answers there (connection refused)',
    );
  });

  it('offline: nothing is requested and no other source is tried', async () => {
    const web = fakeWeb({ [M1]: { bytes: FILE }, [PUB]: { bytes: FILE } });
    const err = await failure(
      downloadVerified({ fetch: web.fetch, online: () => false }, await wantOf(FILE, [M1, PUB])),
    );
    expect(web.seen).toEqual([]);
    expect(err.code).toBe('DOWNLOAD_OFFLINE');
    expect(err.message).toBe(
      'Could not download the image "a.JPEG": this device is offline. Connect to a network and try again; files downloaded before are kept.',
    );
  });

  it('offline found after a network error stops the fallback', async () => {
    let online = true;
    const web = fakeWeb({ [M1]: { unreachable: true }, [PUB]: { bytes: FILE } });
    const inner = web.fetch;
    web.fetch = (async (u: string, i?: RequestInit) => {
      online = false;
      return inner(u, i);
    }) as typeof fetch;
    const err = await failure(
      downloadVerified({ fetch: web.fetch, online: () => online }, await wantOf(FILE, [M1, PUB])),
    );
    expect(err.attempts.map((a) => a.cause)).toEqual(['offline']);
  });

  it('mixed content: an https page never fetches plain http (but loopback is allowed)', async () => {
    const web = fakeWeb({ [M1]: { bytes: FILE }, [PUB]: { bytes: FILE } });
    const r = await downloadVerified(
      { fetch: web.fetch, pageUrl: 'https://site.example/' },
      await wantOf(FILE, [M1, PUB]),
    );
    expect(r.url).toBe(PUB);
    expect(web.seen).toEqual([`GET ${PUB}`]);
    expect(isMixedContent('https://site.example/', 'http://127.0.0.1:8080/x')).toBe(false);
    expect(isMixedContent('https://site.example/', 'http://localhost/x')).toBe(false);
    expect(isMixedContent('http://10.0.0.5/', 'http://10.0.0.6/x')).toBe(false);
    const err = await failure(
      downloadVerified({ fetch: web.fetch, pageUrl: 'https://site.example/' }, await wantOf(FILE, [M1])),
    );
    expect(err.message).toContain('the browser refuses http://10.0.0.5 as mixed content');
  });

  it('models get their own codes', async () => {
    const web = fakeWeb();
    const err = await failure(
      downloadVerified({ fetch: web.fetch }, await wantOf(FILE, [M1], 'm.onnx'), { kind: 'model' }),
    );
    expect(err.code).toBe('MODEL_DOWNLOAD_FAILED');
    expect(err.message).toMatch(/^Could not download the model "m\.onnx"/);
    const web2 = fakeWeb({ [M1]: { bytes: someBytes(5000, 9) } });
    const err2 = await failure(
      downloadVerified({ fetch: web2.fetch }, await wantOf(FILE, [M1], 'm.onnx'), { kind: 'model' }),
    );
    expect(err2.code).toBe('MODEL_SHA_MISMATCH');
  });
});

describe('the store', () => {
  it('a second visit downloads nothing', async () => {
    const web = fakeWeb({ [PUB]: { bytes: FILE } });
    const store = memoryStore();
    const want = await wantOf(FILE, [PUB]);
    const a = await getFile({ fetch: web.fetch }, want, { store });
    expect(a.cached).toBe(false);
    expect(store.puts).toBe(1);
    const b = await getFile({ fetch: web.fetch }, want, { store });
    expect(b.cached).toBe(true);
    expect(web.seen).toEqual([`GET ${PUB}`]);
  });

  it('a damaged stored copy is downloaded again, never returned', async () => {
    const web = fakeWeb({ [PUB]: { bytes: FILE } });
    const store = memoryStore();
    const want = await wantOf(FILE, [PUB]);
    const damaged = FILE.slice();
    damaged[0] ^= 0xff;
    store.map.set(want.sha256, damaged);
    const r = await getFile({ fetch: web.fetch }, want, { store });
    expect(r.cached).toBe(false);
    expect(await sha256Hex(store.map.get(want.sha256)!)).toBe(want.sha256);
  });

  it('nothing that failed verification is stored', async () => {
    const web = fakeWeb({ [PUB]: { bytes: someBytes(5000, 3) } });
    const store = memoryStore();
    await failure(getFile({ fetch: web.fetch }, await wantOf(FILE, [PUB]), { store }));
    expect(store.puts).toBe(0);
  });
});

describe('many files', () => {
  async function files(n: number, delayMs = 5) {
    const routes: Record<string, Route> = {};
    const wants: WantedFile[] = [];
    for (let i = 0; i < n; i++) {
      const b = someBytes(1000 + i, i + 1);
      const url = `https://cdn.example/f${i}.JPEG`;
      routes[url] = { bytes: b, delayMs };
      wants.push(await wantOf(b, [url], `f${i}.JPEG`));
    }
    return { web: fakeWeb(routes), wants };
  }

  it('downloads in parallel with a bound, reports progress in bytes and files, and stores each', async () => {
    const { web, wants } = await files(20);
    const store = memoryStore();
    const seen: TransferProgress[] = [];
    const out = await getFiles({ fetch: web.fetch }, wants, { store, concurrency: 4, onProgress: (p) => seen.push(p) });
    expect(web.maxInFlight).toBeLessThanOrEqual(4);
    expect(web.maxInFlight).toBeGreaterThan(1);
    expect(out.map((b) => b.byteLength)).toEqual(wants.map((w) => w.bytes));
    const total = wants.reduce((s, w) => s + w.bytes, 0);
    const last = seen[seen.length - 1];
    expect(last).toEqual({ files: 20, totalFiles: 20, bytes: total, totalBytes: total, cached: 0 });
    expect(seen[0]).toEqual({ files: 0, totalFiles: 20, bytes: 0, totalBytes: total, cached: 0 });
    expect(progressText(last, 'images')).toBe('0 MB of 0 MB, 20 of 20 images');
    // second visit: all from the store, no request, nothing to download
    const before = web.seen.length;
    const again: TransferProgress[] = [];
    await getFiles({ fetch: web.fetch }, wants, { store, onProgress: (p) => again.push(p) });
    expect(web.seen.length).toBe(before);
    expect(again[again.length - 1]).toEqual({ files: 20, totalFiles: 20, bytes: 0, totalBytes: 0, cached: 20 });
    expect(progressText(again[0], 'images')).toBe('20 of 20 images (all stored in this browser already)');
  });

  it('stops on abort: the promise rejects with the abort and no new request starts', async () => {
    const { web, wants } = await files(30, 20);
    const ctl = new AbortController();
    const p = getFiles({ fetch: web.fetch }, wants, { concurrency: 3, signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 30));
    ctl.abort();
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect((e as Error).name).toBe('AbortError');
    const n = web.seen.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(web.seen.length).toBe(n);
    expect(n).toBeLessThan(30);
  });

  it('stops the others on the first failure and throws it', async () => {
    const { web, wants } = await files(12, 10);
    web.routes.set(wants[2].urls[0], { status: 404 });
    const err = await failure(getFiles({ fetch: web.fetch }, wants, { concurrency: 2 }));
    expect(err.message).toContain('f2.JPEG');
    expect(web.seen.length).toBeLessThan(12);
  });
});
