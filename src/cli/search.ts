/**
 * `npm run bench -- --max-drop X` and `--pareto`: the searches of src/lib/search on each
 * config, with the pipeline's evaluator (every configuration a run of the one loop). Prints
 * the layers kept, the weight size and the top-1 (`--max-drop`), and the size-versus-top-1
 * front with a share link per point (`--pareto`); returns the JSON records. Printing only.
 */
import type { ExperimentConfig } from '../lib/config/types.ts';
import { configHash } from '../lib/config/hash.ts';
import type { ProgressFn, RunInputs } from '../lib/experiment/types.ts';
import type { SchemeSource } from '../lib/pipeline/prepare.ts';
import { accuracyControl } from '../lib/search/accuracy-control.ts';
import { pipelineEvaluator } from '../lib/search/evaluator.ts';
import { paretoFront } from '../lib/search/pareto.ts';
import { configLabel } from '../lib/experiment/report.ts';
import { cliExtras, cliLink, type CliLinkInputs } from './links.ts';

export interface SearchBench {
  configs: ExperimentConfig[];
  inputs: RunInputs;
  /** --max-drop in points */
  maxDrop?: number;
  /** the re-quantizing pass of --max-drop (false: --no-prune) */
  prune?: boolean;
  pareto: boolean;
  rankImages: number;
  paretoPoints: number;
  scheme?: SchemeSource;
  link: CliLinkInputs;
  write: (text: string) => void;
  /** progress lines (stderr) */
  note: ProgressFn;
}

const mib = (bits: number) =>
  bits >= 8 * 2 ** 20 ? `${(bits / 8 / 2 ** 20).toFixed(3)} MiB` : `${(bits / 8 / 2 ** 10).toFixed(2)} KiB`;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The line the front's drops are read against: FP32 and every layer at the preset's bits. */
export function paretoReference(fp32Top1: number, uniform: { top1: number; sizeBits: number }): string {
  return `  reference: FP32 top-1 ${pct(fp32Top1)}; every layer at the preset's bits: top-1 ${pct(uniform.top1)} (drop ${(100 * (fp32Top1 - uniform.top1)).toFixed(2)} points), weights ${mib(uniform.sizeBits)}`;
}

/** Runs the searches asked for on every config (see module header). */
export async function benchSearch(s: SearchBench): Promise<Record<string, unknown>[]> {
  const records: Record<string, unknown>[] = [];
  for (const base of s.configs) {
    const t0 = performance.now();
    const label = configLabel({ config: base });
    const ev = await pipelineEvaluator(s.inputs, base, { rankImages: s.rankImages, scheme: s.scheme });
    const ref = ev.reference.validate;
    const record: Record<string, unknown> = {
      config: base,
      configHash: await configHash(base),
      url: cliLink(base, s.link),
      fp32: { top1: ref.top1, images: ref.preds.length },
      rankImages: ev.reference.rank.preds.length,
    };
    const progress = (message: string, done: number, total: number) =>
      s.note({ stage: 'evaluate', done, total, message: `${message} (${done}/${total})` });
    if (s.maxDrop !== undefined) {
      const r = await accuracyControl({
        base,
        layers: ev.layers,
        reference: ev.reference,
        maxDrop: s.maxDrop / 100,
        evaluate: ev.evaluate,
        prune: s.prune,
        onProgress: progress,
      });
      const seconds = (performance.now() - t0) / 1000;
      s.write(
        [
          '',
          `Accuracy-aware search, ${label}, largest top-1 drop ${s.maxDrop} point(s) (FP32 ${pct(ref.top1)} on ${ref.preds.length} images; layers ranked on ${ev.reference.rank.preds.length}):`,
          `  every layer at the preset's bits: top-1 ${pct(r.steps[0].top1)}, weights ${mib(r.baseSizeBits)}`,
          `  ${r.met ? 'budget met' : 'budget NOT met (even with every layer kept)'}: ${r.kept.length} layer(s) kept at ${r.highBits} bits${r.kept.length ? ` (${r.kept.join(', ')})` : ''}`,
          `  top-1 ${pct(r.top1)} (drop ${(100 * r.drop).toFixed(2)} points), weights ${mib(r.sizeBits)} (${((100 * r.sizeBits) / r.baseSizeBits).toFixed(1)}% of the preset's)`,
          `  ${r.evaluations} evaluation(s), ${seconds.toFixed(0)} s${
            r.ranking.length
              ? `; most costly layers (top-1 points gained kept alone): ${r.ranking
                  .slice(0, 8)
                  .map((l) => `${l.layer} +${(100 * l.gain).toFixed(1)}`)
                  .join(', ')}`
              : ''
          }`,
          `  link: ${cliLink(r.config, s.link)}`,
          '',
        ].join('\n'),
      );
      record.maxDrop = {
        points: s.maxDrop,
        met: r.met,
        kept: r.kept,
        highBits: r.highBits,
        top1: r.top1,
        drop: r.drop,
        sizeBits: r.sizeBits,
        baseSizeBits: r.baseSizeBits,
        config: r.config,
        url: cliLink(r.config, s.link),
        ranking: r.ranking.map((l) => ({ layer: l.layer, gain: l.gain, agreementGain: l.agreementGain })),
        steps: r.steps,
        evaluations: r.evaluations,
        seconds,
      };
    }
    if (s.pareto) {
      const t1 = performance.now();
      const p = await paretoFront({
        base,
        layers: ev.layers,
        evaluate: ev.evaluate,
        points: s.paretoPoints,
        link: cliExtras(s.link),
        onProgress: progress,
      });
      const seconds = (performance.now() - t1) / 1000;
      const rows = p.evaluated.map((q) => {
        const onFront = p.front.includes(q);
        return `  ${onFront ? '*' : ' '} ${mib(q.sizeBits).padStart(11)}  top-1 ${pct(q.top1).padStart(7)}  predicted cost ${(100 * q.predictedCost).toFixed(1).padStart(5)}%  #${q.url}`;
      });
      s.write(
        [
          '',
          `Size versus top-1, ${label}, per-layer weight bits 2–8 (cost of each choice on ${ev.reference.rank.preds.length} ranking images; top-1 on ${ref.preds.length}; * = on the front; ${p.evaluations} evaluations, ${seconds.toFixed(0)} s):`,
          paretoReference(ref.top1, p.uniform),
          ...rows,
          '',
        ].join('\n'),
      );
      record.pareto = {
        reference: { fp32: { top1: ref.top1 }, uniform: { ...p.uniform, url: cliLink(base, s.link) } },
        evaluated: p.evaluated.map((q) => ({ ...q, url: `#${q.url}`, front: p.front.includes(q) })),
        costs: p.costs,
        evaluations: p.evaluations,
        seconds,
      };
    }
    records.push(record);
  }
  return records;
}
