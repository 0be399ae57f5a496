/**
 * `npx tsx scripts/ptq-diag.ts`: per-layer check of the reconstruction solvers on the real
 * MobileNet-V2 (Academic preset, FP32 inputs): for each layer below 8 bits, the relative
 * error ‖ΔW·X‖²/‖W·X‖² on the calibration images of round-to-nearest, GPTQ, AdaRound before
 * and after its final polish, and for layers with K ≤ 12 (depthwise 3×3) the optimum over
 * all 2^K floor/ceil roundings per channel. A layer where AdaRound ends above
 * round-to-nearest is marked WORSE.
 * Options (`--help`; scripts/cli-specs.ts): [--calib N] [--engine node|wasm] [--w-bits N]
 *   [--ptq-iters N] [--lr X] [--lambda X]
 *   [--layers N (first N layers)] [--only NODE,…] [--runs ITERS:LR[:LAMBDA],… (more AdaRound
 *   settings per layer, polished)]
 */
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { TORCHVISION_SPEC } from '../src/lib/data/preprocess.ts';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { loadSplitCrops } from '../src/lib/experiment/inputs.ts';
import { quantizeWeights } from '../src/lib/experiment/quantize.ts';
import { foldBatchNorm } from '../src/lib/onnx/fold-bn.ts';
import { parseModel } from '../src/lib/onnx/model.ts';
import { findQuantPoints } from '../src/lib/onnx/placement.ts';
import { collectGrams } from '../src/lib/ptq/reconstruct.ts';
import { codesError, layerProblem, nearestCodes, outputEnergy } from '../src/lib/ptq/problem.ts';
import { gptq } from '../src/lib/ptq/gptq.ts';
import { adaroundWith, polishCodes } from '../src/lib/ptq/adaround.ts';
import { gramProduct } from '../src/lib/ptq/gram-matmul.ts';
import { configValue, parseCliOrExit } from '../src/cli/options.ts';
import { PTQ_DIAG_CLI } from './cli-specs.ts';

const shared = resolve(import.meta.dirname, '../../shared/data');
const cli = parseCliOrExit(PTQ_DIAG_CLI);
const v = cli.values as { lr: string; lambda: string; layers: number; only?: string[]; runs?: string[] };
const engine = await createNodeEngine(cli.values.engine as 'wasm' | 'node', 2);
const cfg = resolveConfig({
  backend: 'academic',
  wBits: configValue(cli, 'wBits') as number,
  aBits: 8,
  calib: configValue(cli, 'calib') as number,
  eval: 1,
  seed: 0,
});
const dataset = await loadImageFolder(resolve(shared, 'imagenet-sample'), resolve(shared, 'imagenet_class_index.json'));
const inputs = {
  engine,
  modelBytes: new Uint8Array(readFileSync(resolve(shared, 'models/mobilenetv2-7-fp32.onnx'))),
  model: { id: 'mobilenet-v2', label: 'MobileNet-V2', preprocess: TORCHVISION_SPEC, classes: 1000 },
  dataset,
  cropStore: new DiskCropStore(),
};
const { calibCrops } = await loadSplitCrops(inputs, cfg);
const graph = foldBatchNorm(parseModel(inputs.modelBytes)).graph;
const points = findQuantPoints(graph, cfg.placement);
const weights = quantizeWeights(graph, points, cfg);
let t = performance.now();
const grams = await collectGrams(engine, graph, points, calibCrops, TORCHVISION_SPEC, { batchSize: 4 });
console.log(`grams ${((performance.now() - t) / 1000).toFixed(1)} s`);
let n = 0;
const only = v.only ? new Set(v.only) : undefined;
const tot = { rtn: 0, gptq: 0, ada: 0, ada0: 0 };
for (const wq of weights) {
  const bits = Math.round(Math.log2(wq.qparams.qmax - wq.qparams.qmin + 1));
  const lg = grams.get(wq.point.initializer);
  if (!lg || bits >= 8) continue;
  if (only && !only.has(wq.point.node)) continue;
  if (n++ >= v.layers) break;
  const init = graph.initializers.get(wq.point.initializer)!;
  const p = layerProblem(
    init.data as Float32Array,
    init.dims,
    wq.point.axis,
    lg.layout.groups,
    lg.gram,
    lg.positions,
    wq.qparams,
  );
  const e = outputEnergy(p) || 1;
  const rtn = codesError(p, nearestCodes(p)) / e;
  t = performance.now();
  const g = codesError(p, gptq(p)) / e;
  const tg = (performance.now() - t) / 1000;
  t = performance.now();
  const { product, release } = await gramProduct(engine, p);
  const codes = await adaroundWith(
    p,
    { iters: configValue(cli, 'ptqIters') as number, lr: Number(v.lr), lambda: Number(v.lambda) },
    product,
  );
  await release();
  const a0 = codesError(p, codes) / e;
  const moved = polishCodes(p, codes);
  const a = codesError(p, codes) / e;
  const ta = (performance.now() - t) / 1000;
  const extra: string[] = [];
  for (const run of v.runs ?? []) {
    const [it, lr, lam] = run.split(':').map(Number);
    const t2 = performance.now();
    const pr = await gramProduct(engine, p);
    const c2 = await adaroundWith(
      p,
      { iters: it, lr, ...(lam !== undefined && !Number.isNaN(lam) ? { lambda: lam } : {}) },
      pr.product,
    );
    await pr.release();
    polishCodes(p, c2);
    extra.push(`${run} ${(codesError(p, c2) / e).toExponential(2)} (${((performance.now() - t2) / 1000).toFixed(1)}s)`);
  }
  if (p.cols <= 12) {
    // exhaustive: best floor/ceil choice per row
    const K = p.cols;
    const best = nearestCodes(p);
    const perRow = p.rows / p.groups;
    for (let r = 0; r < p.rows; r++) {
      const s = Math.fround(p.scale[r]);
      const zp = p.zeroPoint[r];
      const g = Math.floor(r / perRow) * K * K;
      const fl = new Float64Array(K);
      for (let c = 0; c < K; c++) fl[c] = Math.floor(Math.fround(p.w[r * K + c]) / s);
      let bestE = Infinity,
        bestM = 0;
      const d = new Float64Array(K);
      for (let m = 0; m < 1 << K; m++) {
        for (let c = 0; c < K; c++) {
          let q = fl[c] + ((m >> c) & 1) + zp;
          q = Math.min(p.qmax, Math.max(p.qmin, q));
          d[c] = (q - zp) * s - p.w[r * K + c];
        }
        let err = 0;
        for (let a2 = 0; a2 < K; a2++) {
          let x = 0;
          for (let b = 0; b < K; b++) x += p.gram[g + a2 * K + b] * d[b];
          err += d[a2] * x;
        }
        if (err < bestE) {
          bestE = err;
          bestM = m;
        }
      }
      for (let c = 0; c < K; c++) best[r * K + c] = Math.min(p.qmax, Math.max(p.qmin, fl[c] + ((bestM >> c) & 1) + zp));
    }
    extra.push(`exhaustive ${(codesError(p, best) / e).toExponential(2)}`);
  }
  tot.rtn += rtn;
  tot.gptq += g;
  tot.ada += a;
  tot.ada0 += a0;
  console.log(
    `${wq.point.node.padEnd(12)} ${String(p.rows).padStart(4)}x${String(p.cols).padEnd(4)} g${p.groups} rtn ${rtn.toExponential(2)} gptq ${g.toExponential(2)} (${tg.toFixed(2)}s) ada ${a0.toExponential(2)} polished ${a.toExponential(2)} (${moved}) (${ta.toFixed(2)}s)${a > rtn ? '  WORSE' : ''} ${extra.join(' | ')}`,
  );
}
console.log(
  `sum rtn ${tot.rtn.toExponential(3)} gptq ${tot.gptq.toExponential(3)} ada ${tot.ada0.toExponential(3)} polished ${tot.ada.toExponential(3)}`,
);
