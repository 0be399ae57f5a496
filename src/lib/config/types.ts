/**
 * The config's types, for every layer that carries a config: ExperimentConfig and the
 * placement rules are derived from the schema (config/schema.ts); value types of single
 * fields from the name lists (config/names.ts).
 */
import type { BackendName } from './names.ts';
import type { PresetFields } from './schema.ts';

export { CONFIG_VERSION } from './schema.ts';
export type { ExperimentConfig, PlacementRules, PresetFields } from './schema.ts';
export type { ActivationSign } from './names.ts';

export interface BackendPreset extends PresetFields {
  name: BackendName;
  label: string;
  /** one sentence for the UI: what hardware, what the scheme is */
  description: string;
}
