/**
 * The label of a stored run as the history, its charts and the comparison show it: the
 * settings (the CLI's label, experiment/report.ts), then what else makes two runs differ —
 * the seed, the image counts, whether the analysis ran and the engine — so two runs never
 * look the same. Pure.
 */
import { configLabel } from '../experiment/report.ts';
import type { ExperimentResult } from '../protocol/results.ts';

/** "onnxruntime-web 1.30.0 wasm, 2 threads" → "wasm"; WebGPU and onnxruntime-node likewise. */
export function engineShort(description: string): string {
  const d = description.toLowerCase();
  if (d.includes('webgpu')) return 'WebGPU';
  if (d.includes('onnxruntime-node')) return 'node';
  if (d.includes('wasm')) return 'wasm';
  return description.split(/[ ,]/)[0] || description;
}

/** What sets a run apart beyond its quantization settings. */
export function runFacts(r: ExperimentResult): string {
  return [
    `seed ${r.config.seed}`,
    `${r.images.calib}/${r.images.eval} img`,
    ...(r.analysis ? ['analysed'] : []),
    engineShort(r.engine),
  ].join(' · ');
}

/** The full label: settings, then the facts. */
export function runLabel(r: ExperimentResult): string {
  return `${configLabel(r)} · ${runFacts(r)}`;
}
