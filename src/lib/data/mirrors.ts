/**
 * Where downloads may come from besides the public sources: the mirrors a site lists in
 * its `site.json` ({"mirrors": ["./mirror/", "http://10.0.0.5/qp/"]}) and those the CLI
 * and the dev server take from QP_MIRROR (comma-separated URLs or folders). This module
 * parses and checks both, with a sentence naming what is wrong, resolves them to absolute
 * base URLs, and names the connect-src sources a site's policy needs for them.
 *
 * A mirror is a folder laid out like `npm run mirror` writes it: `catalog.json`,
 * `models/<file>`, `<image set>/<public file name>`. Pure: no fetch of its own (loading
 * site.json takes an injected fetch), no file system (folders become URLs in Node code).
 */
import { QpError } from '../util/errors.ts';
import { extraConnectSource } from '../util/csp.ts';

export const SITE_CONFIG_FILE = 'site.json';
const EXAMPLE = '{"mirrors": ["./mirror/", "http://10.0.0.5/qp/"]}';

export interface SiteConfig {
  /** mirror folders as written (relative ones resolve against the site's root), in order */
  mirrors: string[];
}

const invalid = (where: string, what: string) =>
  new QpError('CONFIG_INVALID', `${where} ${what}. It must look like ${EXAMPLE}.`);

/** One mirror address: relative, or absolute http(s); a folder (a trailing "/" is added). */
export function checkMirrorUrl(raw: string, where: string): string {
  const s = raw.trim();
  if (!s) throw invalid(where, 'lists an empty mirror address');
  let u: URL;
  try {
    u = new URL(s, 'http://relative.invalid/');
  } catch {
    throw invalid(where, `lists "${s.slice(0, 100)}", which is not a URL`);
  }
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(s);
  if (absolute && u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw invalid(where, `lists "${s.slice(0, 100)}": a mirror must be an http: or https: address, not ${u.protocol}`);
  }
  if (u.username || u.password) {
    throw invalid(
      where,
      `lists "${u.host}" with a user name or password in the address; a public site cannot keep it secret, so leave it out`,
    );
  }
  if (u.search || u.hash) {
    throw invalid(where, `lists "${s.slice(0, 100)}" with a query or fragment; give the mirror's folder only`);
  }
  return s.endsWith('/') ? s : `${s}/`;
}

/** Reads site.json's text. Throws CONFIG_INVALID with a sentence naming the problem. */
export function parseSiteConfig(text: string, where = SITE_CONFIG_FILE): SiteConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalid(where, `is not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw invalid(where, 'is not a JSON object');
  const unknown = Object.keys(json).filter((k) => k !== 'mirrors');
  if (unknown.length) throw invalid(where, `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
  const m = (json as { mirrors?: unknown }).mirrors;
  if (m === undefined) return { mirrors: [] };
  if (!Array.isArray(m)) throw invalid(where, 'has "mirrors" that is not a list');
  const bad = m.findIndex((x) => typeof x !== 'string');
  if (bad >= 0) throw invalid(where, `has mirror number ${bad + 1} that is not a string`);
  return { mirrors: [...new Set((m as string[]).map((x) => checkMirrorUrl(x, where)))] };
}

/** The mirrors as absolute base URLs (ending in "/"), relative ones against the site's root. */
export function resolveMirrors(cfg: SiteConfig, siteRoot: string): string[] {
  return [...new Set(cfg.mirrors.map((m) => new URL(m, siteRoot).href))];
}

/**
 * The connect-src sources a site's policy must add for these mirrors: the origin of each
 * plain-http one (https: and the site's own origin are allowed already).
 */
export function mirrorConnectSources(mirrors: readonly string[]): string[] {
  return [...new Set(mirrors.map(extraConnectSource).filter((s): s is string => !!s))];
}

/**
 * The site's mirrors: `site.json` at `siteRoot`, absent → none. A site.json that exists
 * but is wrong throws CONFIG_INVALID (a teacher's typo must not silently send 30 students
 * to the public sources); a network failure gives none, with a notice.
 */
export async function loadSiteConfig(
  fetchFn: typeof fetch,
  siteRoot: string,
  signal?: AbortSignal,
): Promise<{ mirrors: string[]; notice?: string }> {
  const url = new URL(SITE_CONFIG_FILE, siteRoot).href;
  let res: Response;
  try {
    res = await fetchFn(url, { signal, cache: 'no-cache' });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    return {
      mirrors: [],
      notice: `${url} could not be read (${(e as Error).message}); only the public sources are used.`,
    };
  }
  if (res.status === 404) return { mirrors: [] };
  if (!res.ok) {
    return { mirrors: [], notice: `${url} answered ${res.status}; only the public sources are used.` };
  }
  const type = res.headers.get('content-type') ?? '';
  // a host's fallback page for a missing file is no site.json (SPA hosts answer 200 with index.html)
  if (type.includes('text/html')) return { mirrors: [] };
  return { mirrors: resolveMirrors(parseSiteConfig(await res.text(), url), siteRoot) };
}

export type MirrorSpec = { kind: 'url'; url: string } | { kind: 'folder'; path: string };

/**
 * QP_MIRROR: comma-separated mirror URLs (http, https, file) or folders, in order. Empty
 * entries are skipped. Throws ARG_INVALID naming the bad entry.
 */
export function parseMirrorList(value: string | undefined, name = 'QP_MIRROR'): MirrorSpec[] {
  if (!value) return [];
  const out: MirrorSpec[] = [];
  for (const raw of value.split(',')) {
    const s = raw.trim();
    if (!s) continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        throw new QpError(
          'ARG_INVALID',
          `${name} lists "${s}", which is not a valid URL. Give URLs or folders, separated by commas.`,
        );
      }
      if (u.protocol === 'file:') {
        out.push({ kind: 'folder', path: decodeURIComponent(u.pathname) });
        continue;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new QpError(
          'ARG_INVALID',
          `${name} lists "${s}": a mirror must be an http:, https: or file: URL or a folder, not ${u.protocol}.`,
        );
      }
      out.push({ kind: 'url', url: checkMirrorUrl(s, name) });
    } else {
      out.push({ kind: 'folder', path: s });
    }
  }
  return out;
}
