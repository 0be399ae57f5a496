/**
 * The deployment check of the bench CLI (and of `npm run bench:deploy`): from one simulated
 * run, the integer export run on onnxruntime's integer kernels, on the run's evaluation
 * images — `deployed: {top1, top5, agreement, firstDivergence}` for the record — and the
 * table of simulated versus deployed per configuration. Optionally the deploy-exact
 * simulation's top-1 and agreement with the deployment, the deployed speed against FP32 on
 * the same engine, and (onnxruntime-node) the kernels the optimized session really runs.
 * Node only (a temporary file for the optimized graph).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../lib/engine/types.ts';
import type { QuantizedRun } from '../lib/experiment/types.ts';
import { type DeployOptions, type DeployedRecord, deployRecord } from '../lib/export/deploy-record.ts';
import { simulatedTop1 } from '../lib/export/verify.ts';
import { configHash } from '../lib/config/hash.ts';
import { toErrorInfo } from '../lib/util/errors.ts';
import { parseModel } from '../lib/onnx/model.ts';

export type { DeployedRecord, FirstDivergence } from '../lib/export/deploy-record.ts';

/** The optimized graph onnxruntime-node builds for a model (written to a temporary file and read back). */
export async function optimizedGraph(engine: Engine, model: Uint8Array) {
  const dir = await mkdtemp(join(tmpdir(), 'qp-optimized-'));
  try {
    const path = join(dir, 'optimized.onnx');
    const s = await engine.createSession(model, { optimizedModelPath: path });
    await s.release();
    return parseModel(new Uint8Array(await readFile(path)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The deployment check of one run (src/lib/export/deploy-record.ts); with `fusionCheck` on
 * onnxruntime-node, also the kernels its optimized session runs. Throws QpError
 * EXPORT_UNSUPPORTED when the run has quantizers other than 8 bits.
 */
export function cliDeployRecord(
  engine: Engine,
  run: QuantizedRun,
  opts: Omit<DeployOptions, 'optimizedGraph'> & { fusionCheck?: boolean } = {},
): Promise<DeployedRecord> {
  const { fusionCheck, ...rest } = opts;
  return deployRecord(engine, run, {
    ...rest,
    ...(fusionCheck && engine.kind === 'node' ? { optimizedGraph: (m: Uint8Array) => optimizedGraph(engine, m) } : {}),
  });
}

const pct = (x: number | undefined, digits = 1) => (x === undefined ? '-' : `${(100 * x).toFixed(digits)}%`);

export interface DeployRow {
  label: string;
  simulatedTop1: number;
  deployed: DeployedRecord;
}

/** One row per configuration: simulated vs deployed, the deploy-exact simulation, the first divergence. */
export function deployTable(rows: readonly DeployRow[]): string {
  const head = [
    'configuration',
    'sim top-1',
    'deployed',
    'agree sim',
    'exact top-1',
    'agree exact',
    'speed vs FP32',
    'int/float ops',
    'first divergence (default mode)',
  ];
  const body = rows.map((r) => {
    const d = r.deployed;
    const fd = d.firstDivergence;
    return [
      r.label,
      pct(r.simulatedTop1),
      pct(d.top1),
      pct(d.agreement),
      pct(d.exact?.top1),
      pct(d.exact?.agreement),
      d.speed ? `${d.speed.ratio.toFixed(2)}×` : '-',
      `${d.integerOps}/${d.floatOps.length}`,
      fd ? `${fd.label}: ${fd.maxSteps} steps on ${pct(fd.share, 2)} — ${fd.reasons[0] ?? ''}` : 'none',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

/** The row of one run (label from its config). */
export function deployRow(run: QuantizedRun, deployed: DeployedRecord): DeployRow {
  const c = run.config;
  return { label: `${c.backend} W${c.wBits}A${c.aBits}`, simulatedTop1: simulatedTop1(run), deployed };
}

/** `deployed` of a bench record: the check, or why it could not run (e.g. 4-bit weights). */
export type DeployedField = DeployedRecord | { error: string };

/**
 * `npm run bench -- --deploy`: the deployment check of each config as its run finishes
 * (the pipeline's onQuantized), kept by config hash for the record and the table.
 * A config that cannot be deployed (not 8 bits) gets `{ error }` and does not stop the sweep.
 */
export class DeployCollector {
  readonly byHash = new Map<string, { row?: DeployRow; field: DeployedField }>();
  constructor(
    private readonly engine: Engine,
    private readonly opts: { divergenceImages?: number; note?: (line: string) => void } = {},
  ) {}

  readonly add = async (run: QuantizedRun): Promise<void> => {
    const hash = await configHash(run.config);
    const t0 = performance.now();
    try {
      const record = await cliDeployRecord(this.engine, run, { divergenceImages: this.opts.divergenceImages });
      this.byHash.set(hash, { row: deployRow(run, record), field: record });
      this.opts.note?.(
        `[deploy] ${deployRow(run, record).label}: deployed top-1 ${pct(record.top1)}, agreement ${pct(record.agreement)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    } catch (e) {
      const info = toErrorInfo(e);
      if (info.code === 'CANCELLED') throw e;
      this.byHash.set(hash, { field: { error: info.message } });
      this.opts.note?.(
        `[deploy] ${run.config.backend} W${run.config.wBits}A${run.config.aBits}: not deployed: ${info.message}`,
      );
    }
  };

  /** The rows of the configs that were deployed, in the order given. */
  rows(hashes: readonly string[]): DeployRow[] {
    return hashes.flatMap((h) => {
      const row = this.byHash.get(h)?.row;
      return row ? [row] : [];
    });
  }
}
