/**
 * `npm run test:mutants`: a check on the checks. Applies each deliberate bug of MUTANTS
 * below, one at a time, to a scratch copy of the repository (node_modules symlinked),
 * runs the unit tests that guard that code, and reports which bugs the tests catch
 * ("killed") and which slip through ("survived"), with the score killed / total.
 *
 * Exits 2 when a mutant's search text is not found exactly once in its file (the list
 * must follow the code), 3 when the unmutated tests fail in the scratch copy, and 1 when
 * a mutant survives. Options: `--only a,b` runs the mutants whose id or description
 * contains one of the comma-separated substrings; `--keep` leaves the scratch copy in place.
 * Only unit tests run (fast); no real data is needed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Mutant {
  id: string;
  /** the file to mutate, or candidates of which exactly one holds the search text (for a module that moved) */
  file: string | string[];
  search: string;
  replace: string;
  description: string;
  /** unit test files (under tests/unit) that should catch it */
  tests: string[];
}

const Q = ['quant-round', 'quant-quantizer', 'quant-presets', 'quant-observers'];

export const MUTANTS: Mutant[] = [
  {
    id: 'round-ties-up',
    file: 'src/lib/quant/round.ts',
    search: 'else r = f % 2 === 0 ? f : f + 1;',
    replace: 'else r = f + 1;',
    description: 'rounding ties: half away from zero/up instead of half to even',
    tests: ['quant-round', 'quant-quantizer'],
  },
  {
    id: 'narrow-range-ignored',
    file: 'src/lib/quant/quantizer.ts',
    search: 'return { qmin: spec.narrowRange ? -(half - 1) : -half, qmax: half - 1 };',
    replace: 'return { qmin: -half, qmax: half - 1 };',
    description: 'narrow range ignored: signed range always [-128, 127]',
    tests: Q,
  },
  {
    id: 'zero-point-sign',
    file: 'src/lib/quant/quantizer.ts',
    search: 'let zp = qmin - roundHalfToEven(Math.fround(minNeg / sf));',
    replace: 'let zp = qmin + roundHalfToEven(Math.fround(minNeg / sf));',
    description: 'zero-point sign flipped',
    tests: Q,
  },
  {
    id: 'symmetric-scale-127',
    file: 'src/lib/quant/quantizer.ts',
    search: 's = spec.signed ? Math.max(-minNeg, maxPos) / ((qmax - qmin) / 2) : maxPos / qmax;',
    replace: 's = spec.signed ? Math.max(-minNeg, maxPos) / qmax : maxPos / qmax;',
    description: 'symmetric scale divides by qmax (127) instead of (qmax - qmin) / 2 (127.5)',
    tests: Q,
  },
  {
    // (the lower clamp cannot bind: the range always includes 0, so zp >= qmin; an
    // unreachable branch makes an equivalent mutant, so the upper one is mutated)
    id: 'zero-point-unclamped',
    file: 'src/lib/quant/quantizer.ts',
    search: 'else if (zp > qmax) zp = qmax;',
    replace: 'else if (zp > qmax + 1000) zp = qmax;',
    description: 'zero point not clamped to qmax (power-of-two scales push it above)',
    tests: Q,
  },
  {
    id: 'bn-fold-no-sqrt',
    file: 'src/lib/onnx/fold-bn.ts',
    search: 'k[c] = gamma[c] / Math.sqrt(variance[c] + eps);',
    replace: 'k[c] = gamma[c] / (variance[c] + eps);',
    description: 'BN folding: scale by 1/var instead of 1/sqrt(var)',
    tests: ['onnx-fold-bn'],
  },
  {
    id: 'bn-fold-no-eps',
    file: 'src/lib/onnx/fold-bn.ts',
    search: 'k[c] = gamma[c] / Math.sqrt(variance[c] + eps);',
    replace: 'k[c] = gamma[c] / Math.sqrt(variance[c]);',
    description: 'BN folding: epsilon dropped',
    tests: ['onnx-fold-bn'],
  },
  {
    id: 'bn-fold-bias',
    file: 'src/lib/onnx/fold-bn.ts',
    search: 'newB[c] = (bias[c] - mean[c]) * k[c] + beta[c];',
    replace: 'newB[c] = (bias[c] - mean[c]) + beta[c];',
    description: 'BN folding: bias not scaled by gamma/std',
    tests: ['onnx-fold-bn'],
  },
  {
    id: 'placement-matmul',
    file: 'src/lib/onnx/placement.ts',
    search: "} else if ((op === 'Gemm' || op === 'MatMul') && rules.gemm) {",
    replace: "} else if (op === 'Gemm' && rules.gemm) {",
    description: 'placement: MatMul weights never quantized',
    tests: ['onnx-placement', 'analysis-fixes-edges'],
  },
  {
    id: 'placement-model-input',
    file: 'src/lib/onnx/placement.ts',
    search: "if (rules.modelInput) for (const v of g.inputs) add(v.name, null, 'modelInput', 'model input');",
    replace: '',
    description: 'placement: the model input is never quantized',
    tests: ['onnx-placement'],
  },
  {
    id: 'placement-filter-every',
    file: 'src/lib/experiment/quantize.ts',
    search: 'return p.rules.some((rule) => cfg.placement[rule]);',
    replace: 'return p.rules.every((rule) => cfg.placement[rule]);',
    description: 'placement filter: a point found by two rules needs both switched on',
    tests: ['experiment-quantize', 'onnx-placement', 'experiment-pipeline', 'quant-presets'],
  },
  {
    id: 'histogram-top-edge',
    file: 'src/lib/quant/histogram.ts',
    search:
      '// Same comparisons as accumulateHistogram: NaN fails both, huge values never reach `| 0`.\n    if (t < bins) counts[t >= 0 ? t | 0 : 0]++;\n    else if (t >= bins) counts[last]++;',
    replace:
      '// Same comparisons as accumulateHistogram: NaN fails both, huge values never reach `| 0`.\n    if (t < bins) counts[t >= 0 ? t | 0 : 0]++;\n    else if (t > bins) counts[last]++;',
    description: 'histogram edges: a value exactly at hi is dropped',
    tests: ['quant-histogram', 'quant-observers'],
  },
  {
    id: 'ema-momentum-swapped',
    file: 'src/lib/quant/observers.ts',
    search: 'lo = lo * r + batches[k][0] * (1 - r);',
    replace: 'lo = lo * (1 - r) + batches[k][0] * r;',
    description: 'EMA momentum swapped for the minimum (new batch weighted 0.9)',
    tests: ['quant-observers'],
  },
  {
    id: 'percentile-default',
    file: 'src/lib/quant/observers.ts',
    search: 'percentile: 0.9999,',
    replace: 'percentile: 0.999,',
    description: 'percentile observer default 99.9% instead of 99.99%',
    tests: ['quant-observers'],
  },
  {
    id: 'sqnr-20log',
    file: 'src/lib/quant/metrics.ts',
    search: 'return 10 * Math.log10(signal / noise);',
    replace: 'return 20 * Math.log10(signal / noise);',
    description: 'SQNR formula: 20·log10 of a power ratio',
    tests: ['quant-metrics', 'analysis-metrics'],
  },
  {
    id: 'activation-sign-auto',
    file: 'src/lib/quant/spec.ts',
    search: "const signed = cfg.aSign === 'signed' || (cfg.aSign === 'auto' && !nonNegative);",
    replace: "const signed = cfg.aSign === 'signed' || (cfg.aSign === 'auto' && nonNegative);",
    description: "activation sign choice: 'auto' picks signed for non-negative ranges",
    tests: ['experiment-quantize', 'quant-presets', 'experiment-pipeline'],
  },
  {
    id: 'activation-non-negative',
    file: 'src/lib/experiment/quantize.ts',
    search: 'const nonNegative = Math.min(...s.batches.map((b) => b.min)) >= 0;',
    replace: 'const nonNegative = Math.max(...s.batches.map((b) => b.min)) >= 0;',
    description: 'activation sign choice: a range is called non-negative when one batch is',
    tests: ['experiment-quantize', 'quant-presets', 'experiment-pipeline'],
  },
  {
    id: 'stats-merge-min',
    file: 'src/lib/experiment/calibrate.ts',
    search: 'into.min = Math.min(into.min, part.min);',
    replace: 'into.min = part.min;',
    description: 'statistics merging: the minimum of a batch fed in parts is the last part',
    tests: ['experiment-pipeline'],
  },
  {
    id: 'stats-merge-count',
    file: 'src/lib/experiment/calibrate.ts',
    search:
      'into.min = Math.min(into.min, part.min);\n          into.max = Math.max(into.max, part.max);\n          into.sum += part.sum;\n          into.sumSq += part.sumSq;\n          into.count += part.count;',
    replace:
      'into.min = Math.min(into.min, part.min);\n          into.max = Math.max(into.max, part.max);\n          into.sum += part.sum;\n          into.sumSq += part.sumSq;\n          into.count = part.count;',
    description: 'statistics merging: element count of a batch fed in parts is the last part',
    tests: ['experiment-pipeline'],
  },
  {
    id: 'stats-merge-batch-index',
    file: 'src/lib/experiment/calibrate.ts',
    search:
      'const batchIndex = Math.floor(b.rows[0] / opts.batchSize);\n      for (const t of tensors) {\n        const o = outputs.get(t)!;',
    replace:
      'const batchIndex = Math.floor(b.rows[0] / feed);\n      for (const t of tensors) {\n        const o = outputs.get(t)!;',
    description: 'statistics merging: batch-1 feeds each become an observer batch',
    tests: ['experiment-pipeline'],
  },
  {
    id: 'top5-count',
    file: 'src/lib/quant/metrics.ts',
    search: 'const top = topK(logits, this.classes, 5, r);',
    replace: 'const top = topK(logits, this.classes, 4, r);',
    description: 'top-5 counts only the best 4 classes',
    tests: ['quant-metrics', 'experiment-evaluate', 'experiment-pipeline'],
  },
  {
    id: 'topk-ties',
    file: 'src/lib/quant/metrics.ts',
    search: 'while (p > 0 && v > val[p - 1]) {',
    replace: 'while (p > 0 && v >= val[p - 1]) {',
    description: 'top-k ties go to the higher class index',
    tests: ['quant-metrics', 'experiment-evaluate'],
  },
  {
    id: 'agreement-self',
    file: 'src/lib/pipeline/config-run.ts',
    search: 'agreement: agreement(group.fp32.preds, q.preds),',
    replace: 'agreement: agreement(group.fp32.preds, group.fp32.preds),',
    description: 'agreement compares FP32 with itself',
    tests: ['experiment-pipeline', 'pipeline-combinations'],
  },
  {
    id: 'eval-labels-in-batch',
    file: 'src/lib/experiment/evaluate.ts',
    search: 'counter.add(out.data, b.rows.map((r) => labels[r]), b.rows.length);',
    replace: 'counter.add(out.data, b.rows.map((_, i) => labels[i]), b.rows.length);',
    description: 'evaluation reads labels by position in the batch, not in the data set',
    tests: ['experiment-evaluate'],
  },
  {
    id: 'split-overlap',
    file: 'src/lib/data/dataset.ts',
    search: 'const calibIdx = Array.from(perm.subarray(n - calib, n)).sort((a, b) => a - b);',
    replace: 'const calibIdx = Array.from(perm.subarray(0, calib)).sort((a, b) => a - b);',
    description: 'split: calibration images drawn from the evaluation images',
    tests: ['data-dataset', 'experiment-pipeline'],
  },
  {
    id: 'split-boundary',
    file: 'src/lib/experiment/inputs.ts',
    search: 'if (i < split.calib.length) calibCrops.push(c);',
    replace: 'if (i <= split.calib.length) calibCrops.push(c);',
    description: 'split handling: the first evaluation image goes to calibration',
    tests: ['experiment-pipeline'],
  },
  {
    id: 'weights-requantized',
    file: 'src/lib/pipeline/run.ts',
    search: 'if (!w) {',
    replace: 'if (w || !w) {',
    description: 'weight quantization redone for every config',
    tests: ['experiment-pipeline'],
  },
  {
    id: 'weight-key-bits',
    file: 'src/lib/experiment/quantize.ts',
    search: 'return JSON.stringify([cfg.wBits, cfg.wGranularity,',
    replace: 'return JSON.stringify([cfg.wGranularity,',
    description: 'weight reuse key ignores the weight bits (W4 configs reuse W8 weights)',
    tests: ['experiment-quantize', 'experiment-pipeline'],
  },
  {
    id: 'weight-memo-key-spec',
    file: 'src/lib/experiment/quantize.ts',
    search: 'const key = memo && JSON.stringify([point.initializer, cfg.wObserver, spec]);',
    replace: 'const key = memo && JSON.stringify([point.initializer, cfg.wObserver, spec.bits]);',
    description:
      "the estimate's per-layer weight memo keys on the bits alone (a new granularity or symmetry reuses stale weights)",
    tests: ['experiment-quantize'],
  },
  {
    id: 'quant-key-observer',
    file: 'src/lib/experiment/quantize.ts',
    search: 'cfg.aSign, cfg.aObserver, cfg.placement]);',
    replace: 'cfg.aSign, cfg.placement]);',
    description: 'uncorrected-model key ignores the activation observer',
    tests: ['experiment-quantize', 'experiment-pipeline'],
  },
  {
    id: 'first-last-8bit',
    file: 'src/lib/experiment/quantize.ts',
    search: 'cfg.firstLast8bit && (point.isFirst || point.isLast) ? Math.max(8, cfg.wBits)',
    replace: 'cfg.firstLast8bit && point.isFirst ? Math.max(8, cfg.wBits)',
    description: 'first/last layer at 8 bits forgets the last layer',
    tests: ['experiment-quantize', 'quant-presets', 'experiment-pipeline', 'onnx-placement'],
  },
  {
    id: 'hash-ignores-field',
    file: 'src/lib/config/hash.ts',
    search: 'const keys = Object.keys(x as object).sort();',
    replace: "const keys = Object.keys(x as object).sort().filter((k) => k !== 'seed');",
    description: 'config hash ignores one field (seed)',
    tests: ['config-schema'],
  },
  {
    id: 'chroma-upsampling-rounding',
    file: ['src/lib/data/decode.ts', 'src/lib/data/decode-jpegjs.ts'],
    search: 'wide[2 * x] = x === 0 ? (t * 4 + 8) >> 4 : (t * 3 + l + 8) >> 4;',
    replace: 'wide[2 * x] = x === 0 ? (t * 4 + 8) >> 4 : (t * 3 + l + 7) >> 4;',
    description: 'chroma upsampling: h2v2 rounding bias 7 instead of 8 on even columns',
    tests: ['data-decode'],
  },
  {
    id: 'bn-reestimate-clamp',
    file: 'src/lib/analysis/fixes.ts',
    search: 's = Math.min(maxScale, Math.max(1 / maxScale, s));',
    replace: 's = Math.min(maxScale * 10, Math.max(1 / (maxScale * 10), s));',
    description: 'BN re-estimation clamp loosened tenfold',
    tests: ['analysis-fixes-edges', 'analysis-graph'],
  },
  {
    id: 'bias-correction-sign',
    file: 'src/lib/analysis/fixes.ts',
    search: 'f.C[c] -= b.mean[c] - a.mean[c];',
    replace: 'f.C[c] += b.mean[c] - a.mean[c];',
    description: 'bias correction adds the shift instead of subtracting it',
    tests: ['analysis-graph', 'analysis-fixes-edges'],
  },
  {
    id: 'tensor-view-offset',
    file: 'src/lib/onnx/model.ts',
    search: 'return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);',
    replace: 'return new Uint8Array(a.buffer, 0, a.byteLength);',
    description: 'serializing a tensor view writes from the start of its buffer',
    tests: ['onnx-model', 'onnx-model-views'],
  },
  {
    id: 'normalize-order',
    file: 'src/lib/data/preprocess.ts',
    search: 'for (let x = 0; x < 256; x++) lut[c * 256 + x] = f(f(f(x / 255) - m) / s);',
    replace: 'for (let x = 0; x < 256; x++) lut[c * 256 + x] = f(f(f(x / 255) / s) - m);',
    description: 'normalization divides by std before subtracting the mean',
    tests: ['data-preprocess'],
  },
  {
    id: 'clipstd-clips',
    file: 'src/lib/quant/observers.ts',
    search: 'return [Math.min(mean - o.stdNum * std, gmin), Math.max(mean + o.stdNum * std, gmax)];',
    replace: 'return [Math.max(mean - o.stdNum * std, gmin), Math.min(mean + o.stdNum * std, gmax)];',
    description: 'ClipStd clips at mean ± kσ instead of widening min/max as MQBench does',
    tests: Q,
  },
  {
    id: 'qdq-narrow-clip-dropped',
    file: 'src/lib/onnx/fq-qdq.ts',
    search: 'needClip = !nonNegative(g, prod.get(t));',
    replace: 'needClip = false;',
    description: 'Q/DQ evaluation form: the narrow range loses its lower Clip (code −128 becomes reachable)',
    tests: ['fq-qdq'],
  },
  {
    id: 'tengine-fused-name-missing',
    file: 'src/lib/export/ranges.ts',
    search: 'if (fused) lines.push(`${fused}${line}`);',
    replace: '',
    description: 'Tengine table without the Conv output names of fused Conv+ReLU pairs',
    tests: ['export-qdq'],
  },
];

/** What gets copied into the scratch repository (node_modules is linked, never copied). */
const SKIP = new Set(['node_modules', '.git', 'dist', 'coverage', 'test-results']);

function countOccurrences(text: string, search: string): number {
  let n = 0;
  for (let i = text.indexOf(search); i >= 0; i = text.indexOf(search, i + search.length)) n++;
  return n;
}

/** Checks every mutant against the code; returns sentences naming the ones out of sync. */
/** The file of `m` that holds its search text (checkMutants has made sure there is exactly one). */
export function mutantFile(root: string, m: Mutant): string {
  const files = Array.isArray(m.file) ? m.file : [m.file];
  return files.find((f) => existsSync(join(root, f)) && readFileSync(join(root, f), 'utf8').includes(m.search))!;
}

export function checkMutants(root: string, mutants: readonly Mutant[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const m of mutants) {
    if (ids.has(m.id)) problems.push(`Mutant id "${m.id}" is used twice; give each mutant its own id.`);
    ids.add(m.id);
    const files = (Array.isArray(m.file) ? m.file : [m.file]).filter((f) => existsSync(join(root, f)));
    if (files.length === 0) {
      problems.push(`Mutant "${m.id}": ${String(m.file)} does not exist; update its file in scripts/mutants.ts.`);
      continue;
    }
    const n = files.reduce((k, f) => k + countOccurrences(readFileSync(join(root, f), 'utf8'), m.search), 0);
    if (n !== 1)
      problems.push(
        `Mutant "${m.id}": its search text occurs ${n} times in ${files.join(' and ')} (it must occur exactly once); update it in scripts/mutants.ts to follow the code.`,
      );
    for (const t of m.tests) {
      if (!existsSync(join(root, 'tests/unit', `${t}.test.ts`)))
        problems.push(`Mutant "${m.id}": test file tests/unit/${t}.test.ts does not exist.`);
    }
  }
  return problems;
}

function runTests(
  dir: string,
  tests: readonly string[],
  timeoutS: number,
): { ok: boolean; seconds: number; tail: string } {
  const t0 = performance.now();
  const r = spawnSync(
    join(dir, 'node_modules/.bin/vitest'),
    ['run', '--project', 'core', ...tests.map((t) => `tests/unit/${t}.test.ts`)],
    {
      cwd: dir,
      encoding: 'utf8',
      timeout: timeoutS * 1000,
      env: { ...process.env, CI: '1', FORCE_COLOR: '0' },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return {
    ok: r.status === 0,
    seconds: (performance.now() - t0) / 1000,
    tail: out
      .split('\n')
      .filter((l) => /Tests|FAIL|Error/.test(l))
      .slice(-4)
      .join(' | '),
  };
}

async function main(): Promise<void> {
  const root = resolve(import.meta.dirname, '..');
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const keep = args.includes('--keep');
  const problems = checkMutants(root, MUTANTS);
  if (problems.length) {
    for (const p of problems) console.error(p);
    process.exit(2);
  }
  const wanted = only?.split(',').filter(Boolean) ?? [];
  const chosen = MUTANTS.filter(
    (m) => wanted.length === 0 || wanted.some((w) => m.id.includes(w) || m.description.includes(w)),
  );
  if (chosen.length === 0) {
    console.error(`No mutant's id or description contains "${only}"; run without --only to see them all.`);
    process.exit(2);
  }

  const dir = mkdtempSync(join(tmpdir(), 'qp-mutants-'));
  cpSync(root, dir, { recursive: true, filter: (src) => !SKIP.has(src.slice(root.length + 1).split('/')[0]) });
  symlinkSync(resolve(root, 'node_modules'), join(dir, 'node_modules'));
  console.log(`Scratch copy: ${dir}`);
  try {
    const allTests = [...new Set(chosen.flatMap((m) => m.tests))].sort();
    const base = runTests(dir, allTests, 1800);
    if (!base.ok) {
      console.error(
        `The unmutated unit tests fail in the scratch copy (${base.tail}); fix them before measuring mutants.`,
      );
      process.exit(3);
    }
    console.log(`Baseline: ${allTests.length} test files pass (${base.seconds.toFixed(0)} s).`);
    const rows: { m: Mutant; killed: boolean; seconds: number }[] = [];
    for (const m of chosen) {
      const file = mutantFile(dir, m);
      const path = join(dir, file);
      const original = readFileSync(path, 'utf8');
      writeFileSync(
        path,
        original.replace(m.search, () => m.replace),
      );
      try {
        const r = runTests(dir, m.tests, 900);
        rows.push({ m, killed: !r.ok, seconds: r.seconds });
        console.log(
          `${r.ok ? 'SURVIVED' : 'killed  '}  ${m.id.padEnd(28)} ${m.description} (${r.seconds.toFixed(0)} s)`,
        );
      } finally {
        writeFileSync(path, original);
      }
    }
    const killed = rows.filter((r) => r.killed).length;
    const survivors = rows.filter((r) => !r.killed);
    console.log(`\nMutation score: ${killed}/${rows.length} killed (${((100 * killed) / rows.length).toFixed(1)}%).`);
    if (survivors.length) {
      console.log(`Survivors (bugs no unit test catches):`);
      for (const r of survivors) console.log(`  ${r.m.id}: ${r.m.description} [${mutantFile(root, r.m)}]`);
      process.exitCode = 1;
    }
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
