/**
 * State of an imported quantized model (src/lib/imported, reached through the quantization
 * worker): the quantized file opened last and its per-layer quantization, kept when its
 * float parent is opened after it; its evaluation as it is; its comparison with the parent;
 * and the re-simulation, which sets the config's imported scheme on the parent and runs it
 * as any config (the result shows and is stored like any other).
 *
 * A rune class of its own next to AppState, which it reads and drives through `ImportedHost`;
 * AppState calls `noteModel` when a model is loaded. Evaluation and comparison report
 * progress and stop at `cancel()` (the worker's cancel).
 * Must not: import components or compute anything itself (the worker does).
 */
import type { Remote } from 'comlink';
import type { ErrorInfo } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { EnginePref, LoadedModel, QuantApi } from '../protocol/api.ts';
import type { Progress } from '../protocol/results.ts';
import type { AsIsResult, ImportedComparison, QuantizedInfo } from '../protocol/imported.ts';
import { callback } from '../clients/quant.ts';
import { comparisonRows, importedBits, importedLayerRows, quantizedSummary } from './imported-view.ts';

export type { ImportedLayerRow, ComparisonRow } from './imported-view.ts';

/** What ImportedState reads and drives of the app (AppState has all of it). */
export interface ImportedHost {
  readonly model: { readonly value: LoadedModel | undefined };
  readonly enginePref: EnginePref;
  readonly analysisImages: number;
  readonly exp: { config: ExperimentConfig; snapshot(): ExperimentConfig };
  loadModelFile(file: File): Promise<boolean>;
  run(): Promise<void>;
}

export type ImportedBusy = 'idle' | 'evaluating' | 'comparing';

export class ImportedState {
  /** the quantized file opened last (its quantization), kept while its parent is loaded */
  file = $state.raw<{ sha256: string; name: string; quantized: QuantizedInfo } | undefined>(undefined);
  asIs = $state.raw<AsIsResult | undefined>(undefined);
  comparison = $state.raw<ImportedComparison | undefined>(undefined);
  busy = $state<ImportedBusy>('idle');
  progress = $state.raw<Progress | undefined>(undefined);
  cancelling = $state(false);
  error = $state.raw<ErrorInfo | undefined>(undefined);

  constructor(
    private readonly host: ImportedHost,
    private readonly api: () => Remote<Pick<QuantApi, 'evaluateImported' | 'compareWithParent' | 'cancel'>>,
  ) {}

  /** A model was loaded: a quantized one becomes the file shown (what was measured of another is dropped). */
  noteModel(m: LoadedModel | undefined): void {
    if (!m?.quantized || this.file?.sha256 === m.sha256) return;
    this.file = { sha256: m.sha256, name: m.name, quantized: m.quantized };
    this.asIs = undefined;
    this.comparison = undefined;
    this.error = undefined;
  }

  /** The quantized file is the loaded model ("Evaluate as it is" applies). */
  get isLoaded(): boolean {
    return !!this.file && this.host.model.value?.sha256 === this.file.sha256;
  }

  /** A float model is loaded after the quantized one: the candidate parent. */
  get parent(): LoadedModel | undefined {
    const m = this.host.model.value;
    return this.file && m && !m.quantized ? m : undefined;
  }

  get summary(): string {
    return this.file ? quantizedSummary(this.file.quantized) : '';
  }

  get layerRows() {
    return this.file ? importedLayerRows(this.file.quantized.layers) : [];
  }

  get comparisonRows() {
    return this.comparison ? comparisonRows(this.comparison) : [];
  }

  /** imported weight bits by node name (the file's names and, once compared, the parent's) */
  get bits(): ReadonlyMap<string, number> {
    return importedBits(this.file?.quantized.layers ?? [], this.comparison);
  }

  /** Evaluate the loaded quantized file as it is on the current images. */
  async evaluate(): Promise<void> {
    if (!this.isLoaded || this.busy !== 'idle') return;
    const r = await this.work('evaluating', (p) =>
      this.api().evaluateImported(this.host.exp.snapshot(), this.host.enginePref, p),
    );
    if (r) this.asIs = r;
  }

  /** Open the float parent (it becomes the loaded model), then compare. */
  async openParent(file: File): Promise<void> {
    if (this.busy !== 'idle') return;
    if (!(await this.host.loadModelFile(file))) return;
    if (this.host.model.value?.quantized) {
      this.error = {
        code: 'ARG_INVALID',
        userError: true,
        message: `"${file.name}" is quantized too, so it is now the quantized model shown. A float parent is the FP32 .onnx the quantized file was made from; open that one.`,
      };
      return;
    }
    await this.compare();
  }

  /** Compare the quantized file with the loaded float model on the current images. */
  async compare(): Promise<void> {
    if (!this.parent || this.busy !== 'idle') return;
    const r = await this.work('comparing', (p) =>
      this.api().compareWithParent(this.host.exp.snapshot(), this.host.enginePref, p, {
        images: this.host.analysisImages,
      }),
    );
    if (r) {
      this.comparison = r;
      this.asIs = r.asIs;
    }
  }

  /** Stop the evaluation or comparison at its next batch. */
  async cancel(): Promise<void> {
    if (this.busy === 'idle') return;
    this.cancelling = true;
    await this.api().cancel();
  }

  /** The config that re-simulates the imported scheme on the parent: the current one with the scheme's fields. */
  resimulationConfig(): ExperimentConfig | undefined {
    const c = this.comparison;
    if (!c || this.host.model.value?.sha256 !== c.parent.sha256) return undefined;
    const cfg = this.host.exp.snapshot();
    return { ...cfg, ...c.fields, placement: { ...cfg.placement, ...c.fields.placement } };
  }

  /** Set the re-simulation config and run it on the parent (then change one setting and run again). */
  async resimulate(): Promise<void> {
    const cfg = this.resimulationConfig();
    if (!cfg) return;
    this.host.exp.config = cfg;
    await this.host.run();
  }

  private async work<T>(
    busy: Exclude<ImportedBusy, 'idle'>,
    call: (onProgress: (p: Progress) => void) => Promise<{ ok: true; value: T } | { ok: false; error: ErrorInfo }>,
  ): Promise<T | undefined> {
    this.busy = busy;
    this.error = undefined;
    this.progress = undefined;
    try {
      const r = await call(callback((p: Progress) => void (this.progress = p)));
      if (r.ok) return r.value;
      this.error = r.error;
      return undefined;
    } finally {
      this.busy = 'idle';
      this.cancelling = false;
      this.progress = undefined;
    }
  }
}
