/**
 * The response headers the app needs, in one place for the dev server, the preview
 * server, the e2e tests and the README's static-hosting instructions.
 *
 * - Cross-origin isolation (COOP/COEP): wasm threads need it, else onnxruntime silently
 *   runs on one thread.
 * - A strict Content-Security-Policy: scripts and workers from this origin only, plus
 *   'wasm-unsafe-eval' so onnxruntime can compile its WebAssembly; no inline or eval'd
 *   script, no plugins, no framing. Fetches may go to this origin and to any https: URL,
 *   because users load models and images from URLs they type. Inline *styles* are allowed
 *   ('unsafe-inline' in style-src): Svelte style directives and the charts set them, and
 *   they cannot run code. The dev server also needs ws: for Vite's hot reload.
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
} as const;

/** The policy as one header value; `dev` adds what Vite's dev server needs (ws: for hot reload). */
export function contentSecurityPolicy(dev = false): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    `connect-src 'self' https:${dev ? ' ws: wss:' : ''}`,
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Everything the app's responses should carry. */
export function securityHeaders(dev = false): Record<string, string> {
  return { ...ISOLATION_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(dev) };
}
