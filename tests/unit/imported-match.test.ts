/**
 * Matching an imported model to its float parent by topology (src/lib/imported/match.ts)
 * and laying its scheme onto the parent (resimulate.ts + the quantize step's fixed grids):
 * a parent whose every tensor and node was renamed still matches layer for layer and tensor
 * for tensor; what cannot be matched is listed; re-simulating our own export gives back the
 * simulated weights and quantizers bit for bit, and changing one field changes only that.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig, validateConfig } from '../../src/lib/config/resolve.ts';
import { configHash } from '../../src/lib/config/hash.ts';
import { buildQdq, toDeployable } from '../../src/lib/export/index.ts';
import { quantizeActivations, quantizeWeights } from '../../src/lib/experiment/quantize.ts';
import { comparisonTable, type LayerComparison, type ParentComparison } from '../../src/lib/imported/compare.ts';
import { matchGraphs } from '../../src/lib/imported/match.ts';
import type { ErrorMetrics, LayerAnalysis } from '../../src/lib/protocol/analysis.ts';
import { readImported } from '../../src/lib/imported/read.ts';
import { resimulationConfig, schemeOnParent } from '../../src/lib/imported/resimulate.ts';
import { foldBatchNorm } from '../../src/lib/onnx/fold-bn.ts';
import { type Graph, makeTensor } from '../../src/lib/onnx/ir.ts';
import { parseModel, serializeModel } from '../../src/lib/onnx/model.ts';
import { QpError } from '../../src/lib/util/errors.ts';
import { engineFreeRun, ortStyleQdq, qdqToQOperator, renameAll, smallRanges } from '../support/imported-fixtures.ts';
import { smallCnn } from '../support/onnx-helpers.ts';

const roundTrip = (g: Graph) => parseModel(serializeModel(g));
const SHA = 'ab'.repeat(32);

describe('topology matching', () => {
  const folded = foldBatchNorm(smallCnn()).graph;
  const names = new Map<string, string>();
  const parent = renameAll(folded, 'p', names);
  const forms = {
    'our export': roundTrip(buildQdq(toDeployable(engineFreeRun(resolveConfig({ backend: 'tensorrt' })))).graph),
    'onnxruntime QDQ': roundTrip(ortStyleQdq(folded, smallRanges())),
    QOperator: roundTrip(qdqToQOperator(ortStyleQdq(folded, smallRanges()))),
  };
  const nodeIndex = (name: string) => `node_${folded.nodes.findIndex((n) => n.name === name)}`;

  for (const [label, g] of Object.entries(forms)) {
    it(`${label}: every layer and quantized tensor finds its renamed parent`, () => {
      const m = readImported(g);
      const r = matchGraphs(m.skeleton, parent);
      expect(r.layers.map((l) => [l.imported, l.parent, l.how])).toEqual(
        ['conv1', 'dwconv', 'fc'].map((n) => [n, nodeIndex(n), 'topology']),
      );
      expect([r.unmatchedImported, r.unmatchedParent, r.unmatchedOther]).toEqual([[], [], []]);
      for (const a of m.activations) expect(r.tensors.get(a.tensor), a.tensor).toBeDefined();
      // the quantizers sit on the tensors of the parent they were made for
      if (label === 'our export')
        for (const a of m.activations) expect(r.tensors.get(a.tensor)).toBe(names.get(a.tensor));
    });
  }

  it('lists the layers it cannot match', () => {
    const other = renameAll(folded, 'q');
    const fc = other.nodes.find((n) => n.opType === 'Gemm')!;
    const w = other.initializers.get(fc.inputs[1])!;
    other.initializers.set(fc.inputs[1], makeTensor(w.name, [6, 4], new Float32Array(24).fill(0.1)));
    const r = matchGraphs(readImported(forms['our export']).skeleton, other);
    expect(r.layers.map((l) => l.imported)).toEqual(['conv1', 'dwconv']);
    expect(r.unmatchedImported).toEqual(['fc']);
    expect(r.unmatchedParent).toEqual([fc.name]);
  });
});

describe('the imported scheme on the parent', () => {
  const sim = engineFreeRun(resolveConfig({ backend: 'tensorrt' }));
  const imported = readImported(roundTrip(buildQdq(toDeployable(sim)).graph));
  const parent = renameAll(sim.graph, 'p');
  const scheme = schemeOnParent(imported, parent, matchGraphs(imported.skeleton, parent), SHA);
  const cfg = resimulationConfig(scheme, resolveConfig({ backend: 'academic', calib: 4, eval: 2 }));

  it('gives back the simulated weights and quantizers bit for bit', () => {
    expect(cfg).toMatchObject({ wObserver: 'imported', aObserver: 'imported', importedScheme: `sha256:${SHA}` });
    expect(cfg).toMatchObject({ wBits: 8, aBits: 8, aSign: 'signed', aNarrowRange: true, wNarrowRange: true });
    expect(scheme.layers.every((l) => l.codeAgreement === 1)).toBe(true);
    const weights = quantizeWeights(scheme.graph, scheme.points, cfg, undefined, scheme.fixed);
    expect(weights).toHaveLength(sim.weights.length);
    weights.forEach((w, i) => {
      expect(Array.from(w.values)).toEqual(Array.from(sim.weights[i].values));
      expect(Array.from(w.qparams.scale)).toEqual(Array.from(sim.weights[i].qparams.scale));
    });
    const acts = quantizeActivations(scheme.points, new Map(), cfg, scheme.fixed);
    expect(acts.map((a) => [a.qparams.scale[0], a.qparams.qmin, a.qparams.qmax])).toEqual(
      sim.activations.map((a) => [a.qparams.scale[0], a.qparams.qmin, a.qparams.qmax]),
    );
  });

  it('one changed field changes only what it names', () => {
    const perTensor = quantizeWeights(
      scheme.graph,
      scheme.points,
      { ...cfg, wGranularity: 'per-tensor' },
      undefined,
      scheme.fixed,
    );
    expect(perTensor.every((w) => w.qparams.axis === -1 && w.qparams.scale.length === 1)).toBe(true);
    const layer = scheme.points.weights[1].node;
    const four = quantizeWeights(
      scheme.graph,
      scheme.points,
      { ...cfg, layerBits: { [layer]: 4 } },
      undefined,
      scheme.fixed,
    );
    expect(four[1].qparams.qmax).toBe(7);
    expect(four[0].values).toEqual(sim.weights[0].values);
    const a4 = quantizeActivations(scheme.points, new Map(), { ...cfg, aBits: 4 }, scheme.fixed);
    expect(a4.every((a) => a.qparams.qmax === 7)).toBe(true);
  });

  it('the config names the scheme; the observer "imported" needs one; old hashes stay', async () => {
    expect(() => validateConfig(cfg)).not.toThrow();
    expect(() => resolveConfig({ backend: 'tensorrt', aObserver: 'imported' })).toThrow(/names none/);
    expect(() => resolveConfig({ backend: 'tensorrt', importedScheme: 'sha256:xyz' })).toThrow(QpError);
    const plain = resolveConfig({ backend: 'tensorrt' });
    expect(plain.importedScheme).toBe('none');
    const { importedScheme: _drop, ...older } = plain;
    void _drop;
    expect(await configHash(plain)).toBe(await configHash(older as typeof plain));
    expect(() => quantizeWeights(scheme.graph, scheme.points, cfg)).toThrow(/imported scheme has none/);
  });
});

describe('the comparison table', () => {
  it('writes an infinite SQNR as "inf" and an unmatched layer as "-"', () => {
    const metrics = (sqnrDb: number) => ({ sqnrDb }) as ErrorMetrics;
    const layer = (weightSqnrDb: number, matched: boolean): LayerComparison => ({
      parent: 'fc',
      imported: 'fc_q',
      label: 'classifier · fully connected',
      codeAgreement: 1,
      fileAccumulated: matched ? metrics(13.8) : null,
      simulated: { standalone: metrics(48.8), accumulated: metrics(Infinity), weightSqnrDb } as LayerAnalysis,
    });
    const text = comparisonTable({
      images: 4,
      tapAgreement: 1,
      tensors: [],
      layers: [layer(Infinity, true), layer(42.04, false)],
      analysis: {} as ParentComparison['analysis'],
    });
    const [first, second] = text.split('\n').filter((l) => /^\s+\d+\s/.test(l));
    expect(text).not.toMatch(/Infinity|NaN/);
    expect(
      first
        .trim()
        .split(/\s{2,}/)
        .slice(2),
    ).toEqual(['13.8', '48.8', 'inf', 'inf', '100.0%']);
    expect(
      second
        .trim()
        .split(/\s{2,}/)
        .slice(2),
    ).toEqual(['-', '48.8', 'inf', '42.0', '100.0%']);
  });
});
