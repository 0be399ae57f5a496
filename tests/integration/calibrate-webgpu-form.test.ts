/**
 * The calibration graphs a WebGPU engine gets (no Shape outputs; element counts from one
 * image beforehand, experiment/calibrate.ts) give the statistics of the CPU engines' graphs
 * exactly: min, max, Σx, Σx², element counts and histograms per observer batch, in the
 * two-pass, single-pass and MinMax forms, fed in batches and image by image (and the
 * single-pass form's samples taken in the graph on the CPU engines, also after raising an
 * opset-7 model, against the whole tensors sampled in JS). The "WebGPU"
 * engine here is onnxruntime-web's wasm under a WebGPU kind, so only the graphs differ.
 */
import { describe, expect, it } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import { createNodeWasmEngine } from '../../src/lib/engine/node.ts';
import type { Engine } from '../../src/lib/engine/types.ts';
import { collectActivationStats, type CalibrationOptions } from '../../src/lib/experiment/calibrate.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const spec = { ...TORCHVISION_SPEC, crop: 8, resizeShorter: 8 };
const crops = Array.from({ length: 10 }, (_, k) =>
  Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37 + k * 101 + ((i * k) % 13)) % 256),
);
const TENSORS = ['input', 'r1', 'sum', 'flat'];

async function engines(): Promise<{ cpu: Engine; gpuForm: Engine; created: Uint8Array[] }> {
  const cpu = await createNodeWasmEngine(2);
  const created: Uint8Array[] = [];
  const gpuForm: Engine = {
    kind: 'webgpu',
    description: 'wasm under a WebGPU kind',
    createSession: (m, o) => (created.push(m), cpu.createSession(m, o)),
  };
  return { cpu, gpuForm, created };
}

const base: CalibrationOptions = { batchSize: 4, histBatchSize: 2, bins: 64, histogram: false, moments: true };
const cases: [string, Partial<CalibrationOptions>][] = [
  ['MinMax with moments', {}],
  ['MinMax fed image by image', { feedBatchSize: 1 }],
  ['two-pass histograms', { histogram: true, histogramMode: 'exact' }],
  ['single-pass histograms', { histogram: true }],
];

describe('calibration graphs for WebGPU', () => {
  const all: [string, Partial<CalibrationOptions>, number][] = [
    ...cases.map(([l, o]): [string, Partial<CalibrationOptions>, number] => [l, o, 13]),
    // the CPU graph takes its strided samples after raising an opset-7 model to 11 (Slice
    // steps); the WebGPU form samples the whole tensors of the model as it is
    ['single-pass histograms, an opset-7 model with ReLU6 as Clip', { histogram: true }, 7],
  ];
  for (const [label, over, opset] of all) {
    it(`${label}: the same statistics as the CPU graphs`, async () => {
      const g = foldBatchNorm(smallCnn({ seed: 4, opset, relu6Clip: opset < 11 })).graph;
      const { cpu, gpuForm, created } = await engines();
      const cpuModels: Uint8Array[] = [];
      const cpuRec: Engine = {
        ...cpu,
        kind: cpu.kind,
        createSession: (m, o) => (cpuModels.push(m), cpu.createSession(m, o)),
      };
      const want = await collectActivationStats(cpuRec, g, TENSORS, crops, spec, { ...base, ...over });
      // the single-pass form samples in the CPU graph (a strided Slice per tensor), the opset-7 model too
      const sliced = cpuModels.some((m) => parseModel(m).nodes.some((n) => n.opType === 'Slice'));
      expect(sliced, 'samples taken in the graph').toBe(label.startsWith('single-pass'));
      const got = await collectActivationStats(gpuForm, g, TENSORS, crops, spec, { ...base, ...over });
      expect(created.length).toBeGreaterThan(0);
      for (const t of TENSORS) {
        const [a, b] = [got.get(t)!, want.get(t)!];
        expect(a.batches.length, t).toBe(b.batches.length);
        expect([a.histLo, a.histHi]).toEqual([b.histLo, b.histHi]);
        a.batches.forEach((x, i) => {
          const y = b.batches[i];
          expect([x.min, x.max, x.sum, x.sumSq, x.count], `${t} batch ${i}`).toEqual([
            y.min,
            y.max,
            y.sum,
            y.sumSq,
            y.count,
          ]);
          expect(x.hist ? [...x.hist] : undefined, `${t} batch ${i} histogram`).toEqual(
            y.hist ? [...y.hist] : undefined,
          );
        });
        expect(a.batches[0].count).toBeGreaterThan(0);
      }
    });
  }
});
