/**
 * The data-set fingerprint a shared link names: the image count and a hash of the sorted
 * (file name, label) pairs, e.g. "1000-3f2a9c0d17e4b6a1". The calibration/evaluation split
 * depends only on the image order and labels, so two data sets with the same fingerprint
 * give the same split for the same seed. Computed the same way in Node (CLI folders) and
 * in the worker (manifest URLs, picked folders): names are relative to the data set's
 * root with "/" separators. Pure; Web Crypto only.
 */
import type { Dataset } from './types.ts';
import { sha256Hex } from '../util/sha256.ts';

/** Hex digits of the hash kept in the fingerprint (64 bits: collisions are not a concern here). */
const HASH_HEX = 16;

/** "<images>-<16 hex digits>": count, then the sha256 of the sorted "name\tlabel\n" lines. */
export async function datasetFingerprint(items: readonly { id: string; label: number }[]): Promise<string> {
  const lines = items.map((i) => `${i.id.replace(/\\/g, '/')}\t${i.label}\n`).sort();
  const bytes = new TextEncoder().encode(lines.join(''));
  return `${items.length}-${(await sha256Hex(bytes)).slice(0, HASH_HEX)}`;
}

export function fingerprintOf(ds: Pick<Dataset, 'items'>): Promise<string> {
  return datasetFingerprint(ds.items);
}
