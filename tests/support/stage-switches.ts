/**
 * Every combination of the pipeline's stage switches that the config schema allows, for the
 * combination tests: fixes × rounding (and its inputs) × equalization (and its options) ×
 * per-layer bits × BN folding. Values come from the schema's domains, so a new rounding
 * method or equalization mode is covered without editing the tests; a field another field
 * makes irrelevant (`usedWhen`) keeps its default, as the hash does.
 */
import { configField, type ConfigField } from '../../src/lib/config/schema.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';

/** The fields that switch a pipeline step on or change how it runs. */
export const STAGE_SWITCHES = [
  'foldBn',
  'biasCorrection',
  'bnReestimate',
  'ptq',
  'ptqInputs',
  'cle',
  'cleRelu6',
  'cleAbsorb',
  'layerBits',
] as const;

function valuesOf(f: ConfigField, layer: string): unknown[] {
  switch (f.type.kind) {
    case 'bool':
      return [false, true];
    case 'enum':
      return [...f.type.values];
    case 'bitsMap':
      return [{}, { [layer]: 8 }];
    default:
      throw new Error(`${f.name} is not a switch`);
  }
}

/**
 * Each combination as overrides of `base`; `layer` is the node a per-layer bit width names.
 * Combinations that differ only in an unused field are produced once.
 */
export function stageCombinations(base: ExperimentConfig, layer: string): ExperimentConfig[] {
  let out: ExperimentConfig[] = [base];
  for (const name of STAGE_SWITCHES) {
    const f = configField(name)!;
    const values = valuesOf(f, layer);
    out = out.flatMap((c) => {
      if (f.usedWhen && !f.usedWhen(c)) return [c];
      return values.map((v) => ({ ...c, [name]: v }));
    });
  }
  return out;
}
