/**
 * Records the progress reports of real pipeline runs (wasm engine in Node, the same core
 * and the same reports as the browser worker) with their times, for the unit test of the
 * run's overall progress and time estimate (src/lib/state/run-progress.ts).
 *
 *   npx tsx scripts/record-progress.ts OUT.json [name ...]
 *
 * Names: plain, analyze, fixes, adaround, gptq (default: all). Needs ../shared/data.
 * Reports closer together than 50 ms with the same message form are thinned (a new stage,
 * a new kind of message — Gram reading vs a layer's solve — and each stage's last report
 * are always kept), so a trace stays a small file. Each run is written as soon as it ends.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createNodeEngine } from '../src/lib/engine/node.ts';
import { DiskCropStore, loadImageFolder } from '../src/lib/data/dataset.node.ts';
import { resolveConfig } from '../src/lib/config/resolve.ts';
import { runPipeline } from '../src/lib/pipeline/run.ts';
import { getModelEntry } from '../src/lib/models/registry.ts';
import type { ExperimentConfig } from '../src/lib/config/types.ts';
import type { Progress } from '../src/lib/experiment/types.ts';

const SHARED = resolve(import.meta.dirname, '../../shared/data');
const [out, ...names] = process.argv.slice(2);
if (!out) throw new Error('usage: npx tsx scripts/record-progress.ts OUT.json [plain|analyze|fixes|adaround|gptq ...]');

const small = { calib: 16, eval: 48 };
const RUNS: Record<string, { config: Partial<ExperimentConfig>; analyze?: { images: number } }> = {
  plain: { config: { backend: 'tensorrt', ...small } },
  analyze: { config: { backend: 'tensorrt', ...small }, analyze: { images: 16 } },
  fixes: { config: { backend: 'tensorrt', wBits: 4, biasCorrection: true, ...small } },
  adaround: { config: { backend: 'academic', wBits: 4, ptq: 'adaround', ptqIters: 50, ...small } },
  gptq: { config: { backend: 'academic', wBits: 4, ptq: 'gptq', ...small } },
};

const entry = getModelEntry('mobilenet-v2');
const modelBytes = new Uint8Array(await readFile(resolve(SHARED, 'models/mobilenetv2-7-fp32.onnx')));
const dataset = await loadImageFolder(resolve(SHARED, 'imagenet-sample'));
const engine = await createNodeEngine('wasm', 2);
const traces: Record<string, unknown> = {};
for (const name of names.length ? names : Object.keys(RUNS)) {
  const run = RUNS[name];
  const config = resolveConfig({ ...run.config, model: entry.id } as Partial<ExperimentConfig>);
  const events: (Progress & { t: number })[] = [];
  const t0 = performance.now();
  let last: { kind: string; t: number } | undefined;
  await runPipeline(
    [config],
    {
      engine,
      modelBytes,
      model: { id: entry.id, label: entry.label, preprocess: entry.preprocess, classes: 1000 },
      dataset,
      // a fresh cache folder: the first run decodes every image, as a first visit does
      cropStore: new DiskCropStore(resolve('/tmp', `qp-progress-${process.pid}-${name}`)),
    },
    {
      analyze: run.analyze,
      evalBatch: 16,
      onProgress: (p) => {
        const t = (performance.now() - t0) / 1000;
        const end = p.done >= p.total;
        const kind = `${p.stage}:${p.message.replace(/[\d/.]+/g, '#').slice(0, 30)}`;
        if (last && last.kind === kind && t - last.t < 0.05 && !end) return;
        last = { kind, t };
        const { etaSeconds: _eta, ...rest } = p;
        void _eta;
        events.push({ ...rest, t: Math.round(t * 1000) / 1000 });
      },
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  traces[name] = { config, analyze: run.analyze, seconds: Math.round(seconds * 1000) / 1000, events };
  process.stderr.write(`${name}: ${seconds.toFixed(1)} s, ${events.length} reports\n`);
  const doc = { engine: engine.description, recorded: new Date().toISOString().slice(0, 10), traces };
  await writeFile(out, `${JSON.stringify(doc)}\n`);
}
