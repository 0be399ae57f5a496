/**
 * Building, validating and hashing ExperimentConfig. A config is resolved from a
 * backend preset plus the user's overrides; the resolved object (every field set)
 * is what runs, what is hashed, and what the URL carries. Defaults and domains come
 * from the config schema (config/schema.ts); preset values from config/presets.ts.
 */
import { CONFIG_VERSION, type ExperimentConfig, type PresetFields } from './types.ts';
import { QpError } from '../util/errors.ts';
import { BACKEND_NAMES, NO_IMPORTED_SCHEME, type BackendName } from './names.ts';
import { CONFIG_FIELDS, describeDomain, fieldTitle, getField, inDomain, presetKey } from './schema.ts';
import { BACKEND_PRESETS } from './presets.ts';

/** The fields a backend preset sets, in schema order (placement once, for all its rules). */
export const PRESET_FIELDS: readonly (keyof PresetFields)[] = [
  ...new Set(CONFIG_FIELDS.flatMap((f) => presetKey(f) ?? [])),
];

/** The fields a preset sets, copied (placement deep-copied) from the preset table. */
export function presetFields(backend: BackendName): PresetFields {
  const p = BACKEND_PRESETS[backend];
  const out = {} as Record<string, unknown>;
  for (const k of PRESET_FIELDS) out[k] = k === 'placement' ? { ...p.placement } : p[k];
  return out as PresetFields;
}

/** AdaRound steps per layer by default: docs/reconstruction.md has the accuracy/time trade-off. */
export { DEFAULT_PTQ_ITERS } from './names.ts';

export function defaultConfig(backend: BackendName = 'tensorrt'): ExperimentConfig {
  const out: Record<string, unknown> = { v: CONFIG_VERSION };
  for (const f of CONFIG_FIELDS) {
    // Stryker disable next-line ConditionalExpression,LogicalOperator,StringLiteral: a field skipped here (a preset field, or a placement rule) is then set by presetFields below
    if (f.default !== 'preset' && f.path.length === 1)
      // Stryker disable next-line ObjectLiteral: the one object default (layerBits) is empty, so a fresh {} is the same copy
      out[f.path[0]] = typeof f.default === 'object' ? { ...f.default } : f.default;
  }
  return { ...out, backend, ...presetFields(backend) } as ExperimentConfig;
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
  const values: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined)
      values[k] =
        k === 'placement' ? { ...base.placement, ...(v as object) } : k === 'layerBits' ? { ...(v as object) } : v;
  }
  const cfg = values as ExperimentConfig;
  validateConfig(cfg);
  return cfg;
}

/** Names of fields that differ from the backend preset (the user's custom overrides). */
export function overriddenFields(cfg: ExperimentConfig): (keyof PresetFields)[] {
  const p = presetFields(cfg.backend);
  return PRESET_FIELDS.filter((k) => JSON.stringify(cfg[k]) !== JSON.stringify(p[k]));
}

/** Throws QpError('CONFIG_INVALID') with a full sentence naming the first field outside its domain. */
export function validateConfig(cfg: ExperimentConfig): void {
  const bad = (msg: string) => {
    throw new QpError('CONFIG_INVALID', msg);
  };
  if (cfg.v !== CONFIG_VERSION) bad(`Config version ${String(cfg.v)} is not supported (expected ${CONFIG_VERSION}).`);
  if (!cfg.placement || typeof cfg.placement !== 'object')
    bad('The config has no placement rules; reset it to a backend preset.');
  for (const f of CONFIG_FIELDS) {
    const v = getField(cfg, f);
    if (inDomain(f.type, v)) continue;
    if (f.name === 'model') bad('The config names no model: choose one from the model list or open an ONNX file.');
    const shown = typeof v === 'string' ? `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"` : String(v);
    bad(`The ${fieldTitle(f)} (${f.name}) must be ${describeDomain(f.type)}, got ${shown}.`);
  }
  if ((cfg.wObserver === 'imported' || cfg.aObserver === 'imported') && cfg.importedScheme === NO_IMPORTED_SCHEME)
    bad(
      'The "imported" observer takes its ranges from an imported quantized model, but the config names none (importedScheme is "none"). Open the quantized model, or choose another observer.',
    );
}
