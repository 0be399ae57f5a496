/**
 * What the ConfigPanel renders, derived from the config schema: for each field its
 * control (checkbox, number box, select with labelled options, or "set in the model /
 * data panel"), grouped as the panel shows them, plus the backend presets' labels and
 * descriptions. Components reach the schema and presets only through here.
 * Pure: no Svelte, no DOM.
 */
import { NO_IMPORTED_SCHEME, type BackendName } from '../config/names.ts';
import { CONFIG_FIELDS, FIELD_GROUPS, presetKey, type ConfigField, type FieldGroup } from '../config/schema.ts';
import type { PresetFields } from '../config/types.ts';
import { BACKEND_PRESETS } from '../config/presets.ts';

export type { ConfigField, FieldGroup } from '../config/schema.ts';
export { fieldText, getField } from '../config/schema.ts';
export type { BackendName } from '../config/names.ts';
export type { PresetFields } from '../config/types.ts';

export type ConfigControl =
  | { kind: 'checkbox' }
  | { kind: 'number'; min: number; max: number }
  | { kind: 'select'; options: { value: string; label: string }[] }
  /** string fields are set by loading a model or images in their own panels */
  | { kind: 'model-panel' }
  /** per-layer bit widths typed as NODE=BITS pairs */
  | { kind: 'bits-map' }
  | { kind: 'data-panel' };

/** The backend preset's name and one-sentence description, for the UI. */
export function backendInfo(b: BackendName): { label: string; description: string } {
  const p = BACKEND_PRESETS[b];
  return { label: p.label, description: p.description };
}

export function controlFor(f: ConfigField): ConfigControl {
  switch (f.type.kind) {
    case 'bool':
      return { kind: 'checkbox' };
    case 'int':
      return { kind: 'number', min: f.type.min, max: f.type.max };
    case 'enum': {
      const labels = f.type.labels ?? {};
      const label = (v: string) => (f.name === 'backend' ? backendInfo(v as BackendName).label : (labels[v] ?? v));
      return { kind: 'select', options: f.type.values.map((v) => ({ value: v, label: label(v) })) };
    }
    case 'string':
      // the model and an imported scheme are set by opening models; the images by the data panel
      return { kind: f.name === 'dataset' ? 'data-panel' : 'model-panel' };
    case 'bitsMap':
      return { kind: 'bits-map' };
  }
}

/** The value an observer field takes from an imported quantized model (config/names.ts OBSERVER_CHOICES). */
const IMPORTED_OBSERVER = 'imported';

/**
 * The options a select shows under `config`: the observers offer "imported model's ranges"
 * only while the config names an imported scheme (validation refuses it otherwise).
 */
export function selectOptions(
  control: Extract<ConfigControl, { kind: 'select' }>,
  field: ConfigField,
  config: { importedScheme: string },
): { value: string; label: string }[] {
  const observer = field.name === 'wObserver' || field.name === 'aObserver';
  if (!observer || config.importedScheme !== NO_IMPORTED_SCHEME) return control.options;
  return control.options.filter((o) => o.value !== IMPORTED_OBSERVER);
}

export interface PanelField {
  field: ConfigField;
  control: ConfigControl;
  /** PresetFields key whose override badge this control shows, if the preset sets it */
  presetKey?: keyof PresetFields;
}

/** The groups the ConfigPanel shows (the model and data panels own the 'source' group). */
export const PANEL_GROUPS: readonly { id: FieldGroup; label: string; fields: PanelField[] }[] = FIELD_GROUPS.filter(
  (g) => g.id !== 'source',
).map((g) => ({
  ...g,
  fields: CONFIG_FIELDS.filter((f) => f.group === g.id).map((f) => ({
    field: f,
    control: controlFor(f),
    presetKey: presetKey(f),
  })),
}));
