/**
 * `--export DIR` for the bench CLI: writes each config's export bundle (src/lib/export)
 * into its own sub-folder and checks the exported model.qdq.onnx against the simulation
 * on the same evaluation images. Everything is written into a hidden temporary folder
 * inside DIR and moved into place only when the whole run succeeded, so a failed run
 * leaves nothing half-written.
 */
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../lib/engine/types.ts';
import { configHash } from '../lib/config/hash.ts';
import type { QuantizedRun } from '../lib/experiment/types.ts';
import { exportRun } from '../lib/export/bundle.ts';
import { simulatedTop1, verifyExport } from '../lib/export/verify.ts';
import { QpError, type ErrorInfo } from '../lib/util/errors.ts';

export interface ExportCheck {
  folder: string;
  /** top-1 of the exported model, of the simulation, and their top-1 agreement (fractions) */
  deployedTop1?: number;
  simulatedTop1: number;
  agreement?: number;
  /** the same file run as written (onnxruntime's QDQ transforms off), see export/verify.ts */
  asWritten?: { deployedTop1: number; agreement: number };
  qdqError?: ErrorInfo;
}

export class ExportWriter {
  readonly checks: ExportCheck[] = [];
  private tmp?: string;
  private created = false;
  constructor(
    private dir: string,
    private engine: Engine,
  ) {}

  private async tempDir(): Promise<string> {
    if (this.tmp) return this.tmp;
    try {
      await readdir(this.dir);
    } catch {
      try {
        await mkdir(this.dir, { recursive: true });
        this.created = true;
      } catch (e) {
        throw new QpError(
          'FILE_NOT_FOUND',
          `The export folder "${this.dir}" could not be created (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Give a writable folder.`,
        );
      }
    }
    this.tmp = await mkdtemp(join(this.dir, '.export-partial-'));
    return this.tmp;
  }

  /** The pipeline's onQuantized hook: export, write to the temporary folder, check. */
  readonly add = async (run: QuantizedRun): Promise<void> => {
    const bundle = exportRun(run, await configHash(run.config));
    const dir = join(await this.tempDir(), bundle.folder);
    await mkdir(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(bundle.files)) await writeFile(join(dir, name), bytes);
    const model = bundle.files['model.qdq.onnx'];
    const check: ExportCheck = { folder: bundle.folder, simulatedTop1: simulatedTop1(run), qdqError: bundle.qdqError };
    if (model) {
      const optimization = bundle.qdqOptimization;
      Object.assign(check, await verifyExport(this.engine, run, model, { optimization }));
      const w = await verifyExport(this.engine, run, model, { fusions: false, optimization });
      check.asWritten = { deployedTop1: w.deployedTop1, agreement: w.agreement };
    }
    this.checks.push(check);
  };

  /** Move every finished sub-folder into DIR (replacing an older export of the same config). */
  async commit(): Promise<void> {
    if (!this.tmp) return;
    for (const c of this.checks) {
      const target = join(this.dir, c.folder);
      await rm(target, { recursive: true, force: true });
      await rename(join(this.tmp, c.folder), target);
    }
    await rm(this.tmp, { recursive: true, force: true });
    this.tmp = undefined;
  }

  /** Remove everything this run wrote. */
  async abort(): Promise<void> {
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
    if (this.created) await rmdir(this.dir).catch(() => undefined);
    this.tmp = undefined;
  }
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** One line per exported config for stdout. */
export function exportSummary(dir: string, checks: ExportCheck[]): string {
  return checks
    .map((c) => {
      const where = join(dir, c.folder);
      if (c.deployedTop1 === undefined)
        return `export ${where}: ranges only (model.qdq.onnx not written: ${c.qdqError?.message ?? 'unknown reason'})`;
      const w = c.asWritten
        ? `; run as written (QDQ fusions off): top-1 ${pct(c.asWritten.deployedTop1)}, agreement ${pct(c.asWritten.agreement)}`
        : '';
      return `export ${where}: deployed top-1 ${pct(c.deployedTop1)} (simulated ${pct(c.simulatedTop1)}, Δ ${((c.deployedTop1 - c.simulatedTop1) * 100).toFixed(2)} points), top-1 agreement with the simulation ${pct(c.agreement!)}${w}`;
    })
    .join('\n');
}
