/**
 * Content-Security-Policy text: parse a policy into directives, write one back, and decide
 * whether a policy's connect-src lets the page fetch a URL. The build uses it to write the
 * policy (with the origins of configured mirrors); the downloader uses it to tell "blocked
 * by the site's policy" from a network or CORS failure, which a fetch reports alike (a
 * bare TypeError).
 *
 * The matching follows CSP Level 3 "Does url match expression in origin with redirect
 * count?" for what this app's policies use: 'self', 'none', *, scheme sources (https:,
 * http: also admits https:), host sources with optional scheme, wildcard subdomain, port
 * and path. Nonces, hashes and 'strict-dynamic' do not apply to fetches and never match.
 * Pure: no DOM, no fetch.
 */

export type Policy = Map<string, string[]>;

/** Directives in order of appearance; names lower-cased, the first of a repeated name wins (as browsers do). */
export function parsePolicy(text: string): Policy {
  const out: Policy = new Map();
  for (const raw of text.split(';')) {
    const tokens = raw.trim().split(/\s+/).filter(Boolean);
    if (!tokens.length) continue;
    const name = tokens[0].toLowerCase();
    if (!out.has(name)) out.set(name, tokens.slice(1));
  }
  return out;
}

export function serializePolicy(p: Policy): string {
  return [...p].map(([k, v]) => [k, ...v].join(' ')).join('; ');
}

/** The sources that govern fetch(): connect-src, else default-src, else undefined (no restriction). */
export function connectSources(p: Policy): string[] | undefined {
  return p.get('connect-src') ?? p.get('default-src');
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

function schemeMatches(source: string, url: string): boolean {
  // CSP3 "scheme-part match": an insecure scheme also admits its secure upgrade
  if (source === url) return true;
  return (source === 'http:' && url === 'https:') || (source === 'ws:' && url === 'wss:');
}

const HOST_SOURCE = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(\*|(?:\*\.)?[^:/]+)(?::(\d+|\*))?(\/.*)?$/i;

function hostSourceMatches(source: string, url: URL, self: URL): boolean {
  const m = HOST_SOURCE.exec(source);
  if (!m) return false;
  const [, scheme, host, port, path] = m;
  if (scheme) {
    if (!schemeMatches(`${scheme.toLowerCase()}:`, url.protocol)) return false;
  } else if (!schemeMatches(self.protocol, url.protocol)) {
    return false;
  }
  const h = host.toLowerCase();
  const uh = url.hostname.toLowerCase();
  if (h === '*') {
    // a bare "*" host source is handled by the caller; "*:port" etc. are not used here
  } else if (h.startsWith('*.')) {
    if (!uh.endsWith(h.slice(1))) return false;
  } else if (h !== uh) {
    return false;
  }
  // URL normalizes a default port to '': a source without a port admits only the default
  // one (of the URL's scheme, so an http: source still admits its https: upgrade)
  const urlPort = url.port || DEFAULT_PORT[url.protocol] || '';
  if (port && port !== '*') {
    if (port !== urlPort && !(port === '80' && urlPort === '443' && url.protocol === 'https:')) return false;
  } else if (!port && url.port !== '') {
    return false;
  }
  if (path && path !== '/') {
    const p = decodeURIComponent(url.pathname);
    const sp = decodeURIComponent(path);
    return sp.endsWith('/') ? p.startsWith(sp) : p === sp;
  }
  return true;
}

/**
 * Whether `sources` (a directive's source list) allow a fetch of `url` from a page at
 * `selfUrl`. Undefined sources (no connect-src and no default-src) allow everything.
 */
export function sourcesAllow(sources: readonly string[] | undefined, url: string, selfUrl: string): boolean {
  if (!sources) return true;
  let u: URL;
  let self: URL;
  try {
    self = new URL(selfUrl);
    u = new URL(url, self);
  } catch {
    return false;
  }
  for (const raw of sources) {
    const s = raw.toLowerCase();
    if (s === "'none'") continue;
    if (s === "'self'") {
      if (u.origin === self.origin) return true;
      // CSP3: the same host and port over https:/wss: (or http:/ws: from an http: page)
      const securePair = u.protocol === 'https:' || u.protocol === 'wss:';
      const plainPair = self.protocol === 'http:' && (u.protocol === 'http:' || u.protocol === 'ws:');
      const port = (x: URL) => x.port || DEFAULT_PORT[x.protocol] || '';
      const samePort = port(u) === port(self) || (u.port === '' && self.port === '');
      if (u.hostname === self.hostname && samePort && (securePair || plainPair)) return true;
      continue;
    }
    if (s.startsWith("'")) continue; // nonces, hashes, 'unsafe-*', 'strict-dynamic'
    if (s === '*') {
      // "*" matches every network scheme (not data:, blob:, filesystem:)
      if (/^(https?|wss?|ftp):$/.test(u.protocol)) return true;
      continue;
    }
    if (/^[a-z][a-z0-9+.-]*:$/.test(s)) {
      if (schemeMatches(s, u.protocol)) return true;
      continue;
    }
    if (hostSourceMatches(raw, u, self)) return true;
  }
  return false;
}

/** Whether the policy text lets a page at `selfUrl` fetch `url`. */
export function policyAllowsConnect(policyText: string, url: string, selfUrl: string): boolean {
  return sourcesAllow(connectSources(parsePolicy(policyText)), url, selfUrl);
}

/**
 * The connect-src source expression that admits a mirror at `url` when https: does not
 * (plain http): its origin. Undefined when the URL is relative (the site's own origin,
 * admitted by 'self') or https: (admitted by the app's base policy).
 */
export function extraConnectSource(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined; // relative: same origin
  }
  return u.protocol === 'https:' ? undefined : u.origin;
}

/**
 * A connect-src check for the downloader: `(url) => allowed` under the policy text (the
 * page's `<meta http-equiv="Content-Security-Policy">` content, which the build writes
 * equal to the header), or undefined when there is no policy to check against.
 */
export function connectCheck(
  policyText: string | undefined | null,
  selfUrl: string,
): ((url: string) => boolean) | undefined {
  if (!policyText) return undefined;
  const sources = connectSources(parsePolicy(policyText));
  return (url) => sourcesAllow(sources, url, selfUrl);
}
