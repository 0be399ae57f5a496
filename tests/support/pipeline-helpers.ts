/**
 * Helpers for integration tests that drive `runPipeline` end to end:
 * - a spying Engine that records every graph the pipeline hands to the runtime and the
 *   class scores each session produced, so tests can check what actually ran (BN folded,
 *   fake-quant nodes inserted, weights on the grid) and compare FP32 and quantized logits;
 * - an in-memory Dataset of seeded synthetic JPEGs (encoded with jpeg-js), so graph tests
 *   do not depend on ../shared/data.
 * Must not: change what the wrapped engine computes.
 */
import jpeg from 'jpeg-js';
import type { Dataset, ImageSource } from '../../src/lib/data/types.ts';
import type { Engine, EngineSession, FloatTensor } from '../../src/lib/engine/types.ts';
import type { Graph } from '../../src/lib/onnx/ir.ts';
import { parseModel } from '../../src/lib/onnx/model.ts';
import { mulberry32 } from '../../src/lib/util/random.ts';

export interface SessionRecord {
  bytes: Uint8Array;
  /** the graph as parsed back from the bytes the runtime received */
  graph(): Graph;
  /** the watched output of every run, in order (concatenate for all images) */
  outputs: Float32Array[];
  /** true when the graph contains fake-quant nodes (Round, or the QuantizeLinear of the evaluated Q/DQ form) */
  fakeQuant(): boolean;
}

/**
 * Wrap `base`; every session created is logged in `sessions` (in creation order). Only
 * the tensor named `watch` (the class-score output) is copied out of each run.
 */
export function spyEngine(base: Engine, watch: string): { engine: Engine; sessions: SessionRecord[] } {
  const sessions: SessionRecord[] = [];
  const engine: Engine = {
    kind: base.kind,
    description: base.description,
    async createSession(model, options) {
      const s = await base.createSession(model, options);
      let parsed: Graph | undefined;
      const rec: SessionRecord = {
        bytes: model,
        graph: () => (parsed ??= parseModel(model)),
        outputs: [],
        fakeQuant: () => rec.graph().nodes.some((n) => n.opType === 'Round' || n.opType === 'QuantizeLinear'),
      };
      sessions.push(rec);
      const wrapped: EngineSession = {
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        release: () => s.release(),
        async run(feeds: Record<string, FloatTensor>, fetches?: readonly string[]) {
          const r = await s.run(feeds, fetches);
          if (r[watch]) rec.outputs.push(r[watch].data.slice());
          return r;
        },
      };
      return wrapped;
    },
  };
  return { engine, sessions };
}

export function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let k = 0;
  for (const p of parts) {
    out.set(p, k);
    k += p.length;
  }
  return out;
}

/** Row-wise argmax of [rows, classes] scores. */
export function argmaxRows(scores: Float32Array, classes: number): Int32Array {
  const rows = scores.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[r * classes + c] > scores[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * A seeded w×h RGB JPEG: per-image random sinusoid mixtures per channel plus noise, so
 * images differ in colour, frequency and orientation (activations are not degenerate).
 */
export function syntheticJpeg(seed: number, w = 48, h = 40, quality = 90): Uint8Array {
  const rand = mulberry32(seed * 7919 + 1);
  const data = Buffer.alloc(w * h * 4);
  const waves = [0, 1, 2].map(() => ({
    fx: rand() * 0.5,
    fy: rand() * 0.5,
    ph: rand() * 6.28,
    amp: 40 + rand() * 80,
    base: 60 + rand() * 120,
  }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      for (let c = 0; c < 3; c++) {
        const wv = waves[c];
        const v = wv.base + wv.amp * Math.sin(wv.fx * x + wv.fy * y + wv.ph) + 20 * (rand() - 0.5);
        data[i + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
      data[i + 3] = 255;
    }
  }
  return new Uint8Array(jpeg.encode({ width: w, height: h, data }, quality).data);
}

/** Labelled image bytes, for in-memory data sets. */
export interface MemoryImage {
  id: string;
  label: number;
  bytes: Uint8Array;
}

/** An in-memory Dataset with `classes` classes (names c0, c1, …). */
export function memoryDataset(images: MemoryImage[], classes: number, name = 'memory'): Dataset {
  const items: ImageSource[] = images.map((im) => ({ id: im.id, label: im.label, read: async () => im.bytes }));
  const classNames = Array.from({ length: classes }, (_, i) => [`c${i}`, `class ${i}`] as [string, string]);
  return { name, classes, classNames, items, cacheNamespace: `test-${name}` };
}

/** n synthetic JPEGs labelled i mod classes. */
export function syntheticImages(n: number, classes: number, seed = 0): MemoryImage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `synthetic-${seed}-${i}.jpg`,
    label: i % classes,
    bytes: syntheticJpeg(seed * 1000 + i),
  }));
}
