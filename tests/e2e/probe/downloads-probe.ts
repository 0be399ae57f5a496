/**
 * Test-only module the e2e tests load into the built app's page (served by the test
 * host, never part of the build): it runs the app's downloader (src/lib/data/downloads.ts)
 * in the page, under the page's real policy, service worker and CORS, wired as the app
 * will wire it: the meta policy for connect-src, securitypolicyviolation events,
 * navigator.onLine and the page's address.
 */
import {
  getFiles,
  violationLog,
  DownloadError,
  type DownloadEnv,
  type WantedFile,
} from '../../../src/lib/data/downloads.ts';
import { connectCheck } from '../../../src/lib/util/csp.ts';

export interface ProbeResult {
  ok: boolean;
  code?: string;
  message?: string;
  causes?: string[];
  /** bytes of each file when ok */
  sizes?: number[];
  controlled: boolean;
}

const violations = violationLog(document);

export async function download(wants: WantedFile[], opts: { useMeta?: boolean } = {}): Promise<ProbeResult> {
  const meta = document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content');
  const env: DownloadEnv = {
    fetch: globalThis.fetch.bind(globalThis),
    online: () => navigator.onLine,
    pageUrl: location.href,
    ...(opts.useMeta === false ? {} : { policyAllows: connectCheck(meta, location.href) }),
    ...violations,
  };
  const controlled = !!navigator.serviceWorker?.controller;
  try {
    const out = await getFiles(env, wants, { concurrency: 4 });
    return { ok: true, sizes: out.map((b) => b.byteLength), controlled };
  } catch (e) {
    const d = e as DownloadError;
    return { ok: false, code: d.code, message: d.message, causes: d.attempts?.map((a) => a.cause), controlled };
  }
}
