import { ENGINE_KEEPER_FILE } from './src/lib/offline/engine-cache.ts';

/**
 * The response headers the app needs, in one place for the dev server, the preview
 * server, the production build (its `_headers` file and `<meta>` policy), the e2e tests
 * and docs/hosting.md.
 *
 * - Cross-origin isolation (COOP/COEP): wasm threads need it, else onnxruntime silently
 *   runs on one thread.
 * - A strict Content-Security-Policy: scripts and workers from this origin only, plus
 *   'wasm-unsafe-eval' so onnxruntime can compile its WebAssembly; no inline or eval'd
 *   script, no plugins, no framing. Fetches may go to this origin and to any https: URL,
 *   because users load models and images from URLs they type; a plain-http mirror (a
 *   classroom server) is added by its origin when it is configured (site.json, QP_MIRROR),
 *   never "http:" as a whole. Inline *styles* are allowed ('unsafe-inline' in style-src):
 *   Svelte style directives and the charts set them, and they cannot run code. The dev
 *   server also needs ws: for Vite's hot reload.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
} as const;

export interface PolicyOptions {
  /** what Vite's dev server needs (ws: for hot reload) */
  dev?: boolean;
  /** more connect-src sources: the origins of plain-http mirrors */
  connect?: readonly string[];
  /** the policy for a `<meta http-equiv>` tag, which ignores frame-ancestors: left out */
  meta?: boolean;
}

const options = (o: boolean | PolicyOptions): PolicyOptions => (typeof o === 'boolean' ? { dev: o } : o);

/** The policy as one header value; `true` stands for `{dev: true}`. */
export function contentSecurityPolicy(opts: boolean | PolicyOptions = false): string {
  const { dev = false, connect = [], meta = false } = options(opts);
  const extra = [...new Set(connect)].filter((s) => s !== "'self'" && s !== 'https:');
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    ["connect-src 'self' https:", ...extra, ...(dev ? ['ws:', 'wss:'] : [])].join(' '),
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    ...(meta ? [] : ["frame-ancestors 'none'"]),
  ].join('; ');
}

/** Everything the app's responses should carry. */
export function securityHeaders(opts: boolean | PolicyOptions = false): Record<string, string> {
  return { ...ISOLATION_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(opts) };
}

/**
 * The `_headers` file of a production build (the format of Netlify and Cloudflare Pages):
 * the security headers on every path; hashed assets cached for good (so the service
 * worker's precache and the page share one download); the service worker, the script it
 * imports to keep the engine (it names the engine's hashed files) and site.json revalidated
 * on every visit (so updates and new mirrors are seen).
 */
export function headersFile(opts: Omit<PolicyOptions, 'dev' | 'meta'> = {}): string {
  const block = (path: string, headers: Record<string, string>) =>
    [path, ...Object.entries(headers).map(([k, v]) => `  ${k}: ${v}`)].join('\n');
  return [
    '# Written by `npm run build` from security-headers.ts and site.json; do not edit by hand.',
    '# After changing site.json, rebuild or run `npm run site -- DIST` (docs/hosting.md).',
    block('/*', { ...securityHeaders({ connect: opts.connect }), 'X-Content-Type-Options': 'nosniff' }),
    block('/assets/*', { 'Cache-Control': 'public, max-age=31536000, immutable' }),
    block('/sw.js', { 'Cache-Control': 'no-cache' }),
    block(`/${ENGINE_KEEPER_FILE}`, { 'Cache-Control': 'no-cache' }),
    block('/site.json', { 'Cache-Control': 'no-cache' }),
    '',
  ].join('\n');
}

/**
 * The headers a `_headers` file gives `path` (blocks whose pattern matches, in order; a
 * later block's header of the same name wins). `*` matches any run of characters, as
 * Netlify's and Cloudflare's splats do. For the e2e static server and the tests.
 */
export function headersFor(file: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let active = false;
  for (const line of file.split(/\r?\n/)) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    if (!/^\s/.test(line)) {
      const re = new RegExp(
        `^${line
          .trim()
          .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')}$`,
      );
      active = re.test(path);
      continue;
    }
    if (!active) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

const META_POLICY = /<meta\s+http-equiv=["']Content-Security-Policy["'][^>]*>\s*/i;

/**
 * `html` with the policy as its first `<meta http-equiv="Content-Security-Policy">` (for
 * hosts that send no headers; a meta policy covers the page, not its workers), replacing
 * one already there. Written by the build and by `npm run site`.
 */
export function withMetaPolicy(html: string, opts: Omit<PolicyOptions, 'dev' | 'meta'> = {}): string {
  const tag = `<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy({ ...opts, meta: true })}" />`;
  if (META_POLICY.test(html)) return html.replace(META_POLICY, `${tag}\n    `);
  // after <meta charset>, which must come first
  const charset = /<meta\s+charset=[^>]*>\s*/i.exec(html);
  if (charset) {
    const end = charset.index + charset[0].length;
    return `${html.slice(0, end)}${tag}\n    ${html.slice(end)}`;
  }
  return html.replace(/<head[^>]*>/i, (h) => `${h}\n    ${tag}`);
}

/** The policy in a page's meta tag, if any. */
export function metaPolicyOf(html: string): string | undefined {
  const m = META_POLICY.exec(html);
  return m ? /content="([^"]*)"/i.exec(m[0])?.[1] : undefined;
}
