/**
 * SHA-256 of bytes as hex: by Web Crypto where the context has it (Node, and a page or
 * worker in a secure context), else by @noble/hashes. A browser withholds Web Crypto
 * outside a secure context — a site a teacher serves over plain http on a classroom
 * network — and config hashes, dataset fingerprints and file checks must still work there
 * (that site runs on one thread and without its offline cache, but it runs). Both give the
 * same digest.
 */
import { sha256 } from '@noble/hashes/sha2';

const hex = (d: Uint8Array) => [...d].map((b) => b.toString(16).padStart(2, '0')).join('');

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return hex(sha256(bytes));
  return hex(new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}
