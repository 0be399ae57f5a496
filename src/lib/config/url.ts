/**
 * Shareable URL codec: ExperimentConfig <-> location.hash. Pure (no DOM, no Svelte).
 *
 * The fields, their URL keys and domains come from the config schema (config/schema.ts).
 * The hash is readable `key=value` pairs (tensorflow/playground style) so a teacher can
 * edit a link by hand and add `<field>_hide` keys that hide controls (teaching views).
 * Compactness comes from writing only fields that differ from the chosen backend
 * preset and the defaults; a deflate+base64url layer was tried and saves nothing on
 * such short strings while making links unreadable, so it is not used.
 *
 * `parse` never throws: unknown keys, old/new versions and garbled values fall back to
 * the defaults and are reported as notices (full sentences) for the UI to show.
 * Must not: touch window/location, import Svelte, or decide anything about runs.
 */
import { CONFIG_VERSION, type ExperimentConfig } from './types.ts';
import { BACKEND_NAMES, type BackendName } from './names.ts';
import {
  CONFIG_FIELDS,
  describeDomain,
  fieldText,
  getField,
  parseFieldText,
  sameFieldValue,
  type FieldKind,
} from './schema.ts';
import { defaultConfig, validateConfig } from './resolve.ts';

export interface FieldDef {
  /** key in the URL; `placement.x` for the nested placement rules */
  name: string;
  type: FieldKind;
  /** default when not given by the preset (preset fields take the backend's value) */
  default: (backend: BackendName) => unknown;
  get(c: ExperimentConfig): unknown;
  set(c: ExperimentConfig, v: unknown): void;
  /**
   * For a field added after links existed whose default is not its neutral value (the
   * behaviour before it existed): what a link without the key means, while the field is
   * in use. Such a field is written whenever it is in use and not neutral, so a link made
   * today never relies on the default and a link made before keeps its meaning.
   */
  absentMeans?: (c: ExperimentConfig) => unknown;
}

const DEFAULTS = new Map<BackendName, ExperimentConfig>();
/** defaultConfig per backend, computed once (serialize compares every field against it). */
function defaultsOf(b: BackendName): ExperimentConfig {
  let c = DEFAULTS.get(b);
  // Stryker disable next-line ConditionalExpression: recomputing the defaults every time gives the same config (the map is a cache)
  if (!c) DEFAULTS.set(b, (c = defaultConfig(b)));
  return c;
}

/** The serializable fields in URL order (`backend` first), derived from the schema. */
export const FIELDS: readonly FieldDef[] = CONFIG_FIELDS.map((f): FieldDef => ({
  name: f.url,
  type: f.type,
  default: (b) => getField(defaultsOf(b), f),
  get: (c) => getField(c, f),
  set: (c, v) => {
    if (f.path.length === 2) c.placement = { ...c.placement, [f.path[1]]: v as boolean };
    else (c as Record<string, unknown>)[f.path[0]] = v;
  },
  ...(f.since > 1 && f.neutral !== undefined && f.default !== 'preset' && !sameFieldValue(f.neutral, f.default)
    ? // Stryker disable next-line LogicalOperator,BooleanLiteral: every field of the table that takes this branch has usedWhen (url-codec.test checks it), so `?? true` is never reached
      { absentMeans: (c: ExperimentConfig) => ((f.usedWhen?.(c) ?? true) ? f.neutral : undefined) }
    : {}),
}));

const FIELD_BY_NAME = new Map(FIELDS.map((f) => [f.name, f]));

/** Controls that are not config fields but can still be hidden with `<name>_hide`. */
export const EXTRA_HIDEABLE = ['engine', 'history', 'chart', 'dataSource', 'modelSource', 'placement'] as const;

const VERSION_KEY = 'v';
const HIDE_SUFFIX = '_hide';

export interface ParsedHash {
  config: ExperimentConfig;
  /** full sentences for the UI: what was ignored or replaced by a default, and why */
  notices: string[];
  /** names of controls to hide (field names or EXTRA_HIDEABLE entries) */
  hidden: Set<string>;
}

function encodeValue(type: FieldKind, v: unknown): string {
  return fieldText(type, v);
}

function describe(type: FieldKind): string {
  return describeDomain(type, '1 or 0').replace('a whole number', 'an integer');
}

/** Shorten user-controlled text before quoting it in a notice. */
function clip(s: string, n = 40): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/**
 * Serialize a resolved config to a hash string (without '#'). Writes the version, then
 * only fields that differ from `defaultConfig(config.backend)` (preset + defaults),
 * then `<name>_hide=1` for hidden controls. Deterministic: same config, same string.
 */
export function serialize(config: ExperimentConfig, hidden: Iterable<string> = []): string {
  const parts: string[] = [`${VERSION_KEY}=${CONFIG_VERSION}`];
  for (const f of FIELDS) {
    const v = f.get(config);
    // backend is always written: it decides every other default, so links stay stable
    const absent = f.absentMeans?.(config);
    const implied = absent !== undefined ? absent : f.default(config.backend);
    if (f.name !== 'backend' && sameFieldValue(v, implied)) continue;
    parts.push(`${f.name}=${encodeURIComponent(encodeValue(f.type, v))}`);
  }
  for (const h of [...new Set(hidden)].sort()) parts.push(`${encodeURIComponent(h)}${HIDE_SUFFIX}=1`);
  return parts.join('&');
}

/** Split a hash into key/value pairs without throwing on malformed %-escapes. */
function pairs(hash: string): [string, string][] {
  const out: [string, string][] = [];
  for (const piece of hash.split('&')) {
    if (!piece) continue;
    const eq = piece.indexOf('=');
    const k = eq < 0 ? piece : piece.slice(0, eq);
    // Stryker disable next-line EqualityOperator: at eq = 0 the key is '', which names no field, so its value is never read
    const v = eq < 0 ? '' : piece.slice(eq + 1);
    out.push([safeDecode(k), safeDecode(v)]);
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * Parse a location hash (with or without '#'). Never throws. An empty hash gives the
 * defaults with no notice; anything unknown, garbled or invalid is replaced by its
 * default and named in `notices`.
 */
export function parse(hash: string): ParsedHash {
  const notices: string[] = [];
  const hidden = new Set<string>();
  let h = typeof hash === 'string' ? hash : '';
  if (h.startsWith('#')) h = h.slice(1);
  if (h.startsWith('/')) h = h.slice(1);
  if (!h.trim()) return { config: defaultConfig(), notices, hidden };

  try {
    const kv = pairs(h);
    const map = new Map<string, string>();
    for (const [k, v] of kv) {
      if (k.endsWith(HIDE_SUFFIX)) {
        const name = k.slice(0, -HIDE_SUFFIX.length);
        if (FIELD_BY_NAME.has(name) || (EXTRA_HIDEABLE as readonly string[]).includes(name)) {
          if (v !== '0' && v !== 'false') hidden.add(name);
        } else {
          notices.push(`The link asks to hide "${clip(name)}", which is not a control of this app; it was ignored.`);
        }
        continue;
      }
      if (map.has(k)) notices.push(`The link sets "${clip(k)}" more than once; the last value was used.`);
      map.set(k, v);
    }

    const version = map.get(VERSION_KEY);
    map.delete(VERSION_KEY);
    let readFields = true;
    if (version === undefined) {
      notices.push(
        `The link has no settings version; it was read as version ${CONFIG_VERSION}, and settings that could not be read use their defaults.`,
      );
    } else if (version !== String(CONFIG_VERSION)) {
      const n = Number(version);
      if (Number.isInteger(n) && n > CONFIG_VERSION) {
        notices.push(
          `The link was made by a newer version of the playground (settings version ${clip(version)}); the settings this version knows were read, check them before running.`,
        );
      } else {
        readFields = false;
        notices.push(
          `The link uses settings version "${clip(version)}", which this version of the playground cannot read; the default settings are shown instead.`,
        );
      }
    }
    if (!readFields) return { config: defaultConfig(), notices, hidden };

    let backend: BackendName = 'tensorrt';
    const rawBackend = map.get('backend');
    if (rawBackend !== undefined) {
      if ((BACKEND_NAMES as readonly string[]).includes(rawBackend)) backend = rawBackend as BackendName;
      else notices.push(`Unknown backend "${clip(rawBackend)}" in the link; the TensorRT preset was used instead.`);
    }
    map.delete('backend');
    const config = defaultConfig(backend);

    for (const [k, raw] of map) {
      const f = FIELD_BY_NAME.get(k);
      if (!f) {
        notices.push(`The link contains an unknown setting "${clip(k)}"; it was ignored.`);
        continue;
      }
      const v = parseFieldText(f.type, raw);
      if (v === undefined) {
        notices.push(
          `The link sets ${f.name} to "${clip(raw)}", but it must be ${describe(f.type)}; the default (${encodeValue(f.type, f.default(backend)) || 'none'}) was used.`,
        );
        continue;
      }
      f.set(config, v);
    }
    // fields the link does not set, where a missing key means what it meant before the field existed
    for (const f of FIELDS) {
      if (map.has(f.name) || !f.absentMeans) continue;
      const v = f.absentMeans(config);
      if (v !== undefined) f.set(config, v);
    }
    try {
      validateConfig(config);
    } catch (e) {
      notices.push(
        `The settings in the link do not form a valid experiment (${(e as Error).message}); the defaults are shown instead.`,
      );
      return { config: defaultConfig(), notices, hidden };
    }
    return { config, notices, hidden };
  } catch (e) {
    // Defensive: nothing above should throw, but a link must never break the page.
    // Stryker disable all: unreachable (nothing above throws for any text); kept so a future field's reader cannot break the page
    notices.push(
      `The link could not be read (${(e as Error)?.message ?? String(e)}); the default settings are shown instead.`,
    );
    return { config: defaultConfig(), notices, hidden: new Set() };
    // Stryker restore all
  }
}
