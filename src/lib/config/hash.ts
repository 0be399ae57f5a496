/**
 * The config hash: results are stored and compared by it, and links name runs by it. Taken
 * over the canonical JSON of the config's hashed form (config/schema.ts hashedForm), so
 * fields added later leave the hash of older configs unchanged.
 */
import type { ExperimentConfig } from './types.ts';
import { hashedForm } from './schema.ts';
import { sha256Hex } from '../util/sha256.ts';

/** JSON with sorted keys at every level: the canonical form that is hashed. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x && typeof x === 'object') {
    const keys = Object.keys(x as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

/**
 * Stable hash of a resolved config: first 16 hex digits of SHA-256 of the canonical JSON
 * of its hashed form (fields added after the first release are left out while neutral,
 * so adding a field does not change the hash of existing configs; see config/schema.ts).
 */
export async function configHash(cfg: ExperimentConfig): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(hashedForm(cfg)));
  return (await sha256Hex(bytes)).slice(0, 16);
}
