/**
 * "Check on integer kernels" and the gap table per preset: asks the worker to run configs
 * and their integer export on onnxruntime's integer kernels (QuantApi.checkDeployed), keeps
 * the checks of this session by config hash, and turns them into the rows the result view
 * shows. Worker answers are data here, never thrown. The numbers come from the worker; this
 * module only chooses the configs and formats.
 */
import type { Remote } from 'comlink';
import { callback } from '../clients/quant.ts';
import { resolveConfig } from '../config/resolve.ts';
import type { BackendName } from '../config/names.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { QuantApi } from '../protocol/api.ts';
import type { DeployCheck, DeployProgress } from '../protocol/deploy.ts';
import type { ErrorInfo } from '../util/errors.ts';

export type { DeployCheck, DeployProgress } from '../protocol/deploy.ts';

/** The presets whose 8-bit schemes onnxruntime's integer kernels can run (per-tensor activations, 8-bit codes). */
export const DEPLOYABLE_PRESETS: readonly BackendName[] = ['tensorrt', 'fbgemm', 'snpe', 'academic'];

/**
 * The gap table's configs: each deployable preset at `base`'s bits, on `base`'s model, images,
 * split and preprocessing (the preset's own observers, granularity and placement; no fixes,
 * no reconstruction, so the rows compare presets and nothing else).
 */
export function presetConfigs(base: ExperimentConfig): ExperimentConfig[] {
  const { model, dataset, calib, eval: evalCount, seed, wBits, aBits, preprocess, inputSize } = base;
  return DEPLOYABLE_PRESETS.map((backend) =>
    resolveConfig({ backend, model, dataset, calib, eval: evalCount, seed, wBits, aBits, preprocess, inputSize }),
  );
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** One check as the view shows it (pure). */
export interface DeployCheckRow {
  label: string;
  simulated: string;
  deployed: string;
  /** deployed − simulated, in points, signed */
  gap: string;
  agreement: string;
  /** the first layer off by more than one step, with its first reason, or 'none' */
  firstDivergence: string;
  /** e.g. "0.62× FP32 time (3.1 vs 5.0 ms/image)" */
  speed: string;
  /** why the config could not be deployed */
  error?: string;
}

export function deployCheckRow(c: DeployCheck): DeployCheckRow {
  const label = `${c.config.backend} W${c.config.wBits}A${c.config.aBits}`;
  const d = c.deployed;
  if (!d)
    return {
      label,
      simulated: pct(c.simulated.top1),
      deployed: '-',
      gap: '-',
      agreement: '-',
      firstDivergence: '-',
      speed: '-',
      error: c.error?.message ?? 'The deployment did not run.',
    };
  const points = 100 * (d.top1 - c.simulated.top1);
  const f = d.firstDivergence;
  return {
    label,
    simulated: pct(c.simulated.top1),
    deployed: pct(d.top1),
    gap: `${points > 0 ? '+' : points < 0 ? '−' : '±'}${Math.abs(points).toFixed(1)}`,
    agreement: pct(d.agreement),
    firstDivergence: f
      ? `${f.label}: ${f.maxSteps} steps on ${(100 * f.share).toFixed(2)}% of its values — ${f.reasons[0] ?? 'reason not told'}`
      : 'none',
    speed: d.speed
      ? `${d.speed.ratio.toFixed(2)}× FP32 time (${d.speed.deployedMsPerImage.toFixed(1)} vs ${d.speed.fp32MsPerImage.toFixed(1)} ms/image)`
      : '-',
  };
}

export class DeployCheckState {
  /** what is running: one result's check, or the preset table */
  running = $state<'result' | 'presets' | undefined>(undefined);
  progress = $state.raw<DeployProgress | undefined>(undefined);
  error = $state<ErrorInfo | undefined>(undefined);
  /** checks of this session by config hash */
  checks = $state.raw<Record<string, DeployCheck>>({});
  /** the last preset table, and the result (config hash) it was made for */
  presets = $state.raw<{ forHash: string; checks: DeployCheck[] } | undefined>(undefined);

  constructor(private readonly api: () => Remote<QuantApi>) {}

  /** The check of a config hash, if one ran this session. */
  of(hash: string): DeployCheck | undefined {
    return this.checks[hash];
  }

  /** Checks one result's config (runs it again on wasm, then its integer export). */
  async check(config: ExperimentConfig): Promise<void> {
    await this.start([config], 'result');
  }

  /** Checks every deployable preset at the bits of the result `forHash` with config `base`. */
  async checkPresets(base: ExperimentConfig, forHash: string): Promise<void> {
    const checks = await this.start(presetConfigs(base), 'presets');
    if (checks) this.presets = { forHash, checks };
  }

  cancel(): void {
    if (this.running) void this.api().cancel();
  }

  private async start(configs: ExperimentConfig[], kind: 'result' | 'presets'): Promise<DeployCheck[] | undefined> {
    if (this.running) return undefined;
    this.running = kind;
    this.error = undefined;
    this.progress = { done: 0, total: configs.length, message: 'Starting' };
    try {
      const r = await this.api().checkDeployed(
        configs,
        callback((p: DeployProgress) => {
          this.progress = p;
        }),
      );
      if (!r.ok) {
        this.error = r.error;
        return undefined;
      }
      const next = { ...this.checks };
      for (const c of r.value) next[c.configHash] = c;
      this.checks = next;
      return r.value;
    } finally {
      this.running = undefined;
      this.progress = undefined;
    }
  }
}
