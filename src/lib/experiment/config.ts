/**
 * Building, validating and hashing ExperimentConfig. A config is resolved from a
 * backend preset plus the user's overrides; the resolved object (every field set)
 * is what runs, what is hashed, and what the URL carries.
 */
import { CONFIG_VERSION, PTQ_METHODS, type ExperimentConfig, type PresetFields } from '../protocol/config.ts';
import { QpError } from '../protocol/errors.ts';
import { BACKEND_PRESETS } from '../quant/presets.ts';
import { BACKEND_NAMES, OBSERVER_NAMES, type BackendName } from '../quant/types.ts';

export const PRESET_FIELDS: readonly (keyof PresetFields)[] = [
  'wBits', 'wGranularity', 'wSymmetric', 'wNarrowRange', 'wPowerOfTwo', 'wObserver',
  'aBits', 'aSymmetric', 'aNarrowRange', 'aPowerOfTwo', 'aSign', 'aObserver',
  'placement', 'firstLast8bit',
];

/** The fields a preset sets, copied (placement deep-copied) from the preset table. */
export function presetFields(backend: BackendName): PresetFields {
  const p = BACKEND_PRESETS[backend];
  const out = {} as Record<string, unknown>;
  for (const k of PRESET_FIELDS) out[k] = k === 'placement' ? { ...p.placement } : p[k];
  return out as unknown as PresetFields;
}

/** AdaRound steps per layer by default: see README (PTQ) for the accuracy/time trade-off. */
export const DEFAULT_PTQ_ITERS = 500;

export function defaultConfig(backend: BackendName = 'tensorrt'): ExperimentConfig {
  return {
    v: CONFIG_VERSION,
    model: 'mobilenet-v2',
    dataset: 'imagenet-sample',
    backend,
    ...presetFields(backend),
    foldBn: true,
    calib: 128,
    eval: 1000 - 128,
    seed: 0,
    biasCorrection: false,
    bnReestimate: false,
    ptq: 'none',
    ptqIters: DEFAULT_PTQ_ITERS,
  };
}

/**
 * A full config from a backend and overrides. Fields not given come from the backend
 * preset (or the defaults). Throws QpError('CONFIG_INVALID') on impossible values.
 */
export function resolveConfig(overrides: Partial<ExperimentConfig> & { backend?: BackendName }): ExperimentConfig {
  const backend = overrides.backend ?? 'tensorrt';
  if (!BACKEND_NAMES.includes(backend)) {
    throw new QpError('CONFIG_INVALID', `Unknown backend "${backend}". Choose one of: ${BACKEND_NAMES.join(', ')}.`);
  }
  const base = defaultConfig(backend);
  const cfg: ExperimentConfig = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = k === 'placement' ? { ...base.placement, ...(v as object) } : v;
  }
  validateConfig(cfg);
  return cfg;
}

/** Names of fields that differ from the backend preset (the user's custom overrides). */
export function overriddenFields(cfg: ExperimentConfig): (keyof PresetFields)[] {
  const p = presetFields(cfg.backend);
  return PRESET_FIELDS.filter((k) => JSON.stringify(cfg[k]) !== JSON.stringify(p[k]));
}

export function validateConfig(cfg: ExperimentConfig): void {
  const bad = (msg: string) => {
    throw new QpError('CONFIG_INVALID', msg);
  };
  if (cfg.v !== CONFIG_VERSION) bad(`Config version ${String(cfg.v)} is not supported (expected ${CONFIG_VERSION}).`);
  for (const k of ['wBits', 'aBits'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 2 || cfg[k] > 16) bad(`Bit width ${k} must be a whole number from 2 to 16, got ${cfg[k]}.`);
  }
  for (const k of ['wObserver', 'aObserver'] as const) {
    if (!OBSERVER_NAMES.includes(cfg[k])) bad(`Unknown ${k} "${cfg[k]}". Choose one of: ${OBSERVER_NAMES.join(', ')}.`);
  }
  if (cfg.wGranularity !== 'per-tensor' && cfg.wGranularity !== 'per-channel') bad(`Weight granularity must be per-tensor or per-channel, got ${String(cfg.wGranularity)}.`);
  if (!['signed', 'unsigned', 'auto'].includes(cfg.aSign)) bad(`Activation sign must be signed, unsigned or auto, got ${String(cfg.aSign)}.`);
  for (const k of ['calib', 'eval'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) bad(`The number of ${k === 'calib' ? 'calibration' : 'evaluation'} images must be a positive whole number, got ${cfg[k]}.`);
  }
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0 || cfg.seed > 0x7fffffff) bad(`The seed must be a whole number from 0 to 2147483647, got ${cfg.seed}.`);
  if (!PTQ_METHODS.includes(cfg.ptq)) bad(`Unknown weight rounding method "${String(cfg.ptq)}". Choose one of: ${PTQ_METHODS.join(', ')}.`);
  if (!Number.isInteger(cfg.ptqIters) || cfg.ptqIters < 1 || cfg.ptqIters > 100_000) bad(`The number of AdaRound iterations must be a whole number from 1 to 100000, got ${cfg.ptqIters}.`);
  if (typeof cfg.model !== 'string' || !cfg.model) bad('The config names no model: choose one from the model list or open an ONNX file.');
}

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
 * The config as hashed. Fields added after results were first stored are left out while
 * they hold their neutral value, so every config that existed before keeps its hash (and
 * its cached results): ptq when 'none', ptqIters whenever AdaRound is not the method.
 */
function hashedFields(cfg: ExperimentConfig): Partial<ExperimentConfig> {
  const out: Partial<ExperimentConfig> = { ...cfg };
  if (cfg.ptq === 'none') delete out.ptq;
  if (cfg.ptq !== 'adaround') delete out.ptqIters;
  return out;
}

/** Stable hash of a resolved config: first 16 hex digits of SHA-256 of its canonical JSON. */
export async function configHash(cfg: ExperimentConfig): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(hashedFields(cfg)));
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 16);
}
