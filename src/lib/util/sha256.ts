/**
 * SHA-256 of bytes as hex, by Web Crypto (the same in Node and in a page or worker). A
 * browser withholds Web Crypto outside a secure context (a site opened over plain http
 * from another machine); that is said in one sentence instead of a TypeError.
 */
import { QpError } from './errors.ts';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle)
    throw new QpError(
      'ENGINE_FAILED',
      'This page is not a secure context (it was opened over plain http from another machine), so the browser withholds Web Crypto, which checks every file. Open the site over https, or from localhost.',
    );
  const d = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
