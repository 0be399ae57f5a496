/**
 * The run in progress as a rune class: its state, progress, error and outcome, and the
 * cancel that is acknowledged at once and stops the worker at its next batch boundary —
 * or, when the worker does not get there within CANCEL_GRACE_MS (a step without batch
 * boundaries), ends the worker so the app stays usable either way.
 */
import type { Remote } from 'comlink';
import type { ErrorInfo, Result } from '../util/errors.ts';
import type { ExperimentConfig } from '../config/types.ts';
import type { EnginePref, QuantApi, RunOutcome } from '../protocol/api.ts';
import type { ExperimentResult, Progress } from '../experiment/types.ts';
import { callback } from '../clients/quant.ts';
import { RunProgress, type RunProgressView } from './run-progress.ts';

/** How long a cancelled run may take to reach a batch boundary before its worker is ended (ms). */
export const CANCEL_GRACE_MS = 500;

export type RunState = 'idle' | 'loading' | 'running' | 'done' | 'error' | 'cancelled';

export interface RunRequest {
  config: ExperimentConfig;
  engine: EnginePref;
  /** analyse why accuracy drops, on this many evaluation images */
  analyze?: { images: number };
  /** images the loaded data set holds (the plan of the progress bar caps the splits at it) */
  available?: number;
}

export class RunController {
  state = $state<RunState>('idle');
  /** Cancel was pressed and the run has not stopped yet ("Cancelling…") */
  cancelling = $state(false);
  /** how the last cancelled run ended: at a batch boundary, or its worker was ended */
  cancelEnd = $state<'boundary' | 'stopped' | undefined>(undefined);
  /** the last report of the stage under way */
  progress = $state<Progress | undefined>(undefined);
  /** the whole run: one fraction, the stage's name, one counter, the time left (run-progress.ts) */
  overall = $state<RunProgressView | undefined>(undefined);
  error = $state<ErrorInfo | undefined>(undefined);
  outcome = $state.raw<Omit<RunOutcome, 'results'> | undefined>(undefined);
  /** the run in progress was asked to analyse */
  analyzing = $state(false);
  private seq = 0;

  constructor(
    private readonly api: () => Remote<QuantApi>,
    /** ends a worker that ignores a cancel; true when it did (tests pass a fake) */
    private readonly stop: () => boolean,
    /** the worker was ended: what it had loaded is gone */
    private readonly onWorkerStopped: () => void,
  ) {}

  get running(): boolean {
    return this.state === 'running';
  }

  /**
   * Runs one config. `onResult` is awaited before the run shows as done (so the history
   * lists it by then). Resolves with the result, or undefined when the run failed or was
   * cancelled (then `state`, `error` and `cancelEnd` say which).
   */
  async run(req: RunRequest, onResult: (r: ExperimentResult) => Promise<void>): Promise<ExperimentResult | undefined> {
    if (this.running) return undefined;
    const run = ++this.seq;
    this.cancelling = false;
    this.cancelEnd = undefined;
    this.state = 'running';
    this.error = undefined;
    this.outcome = undefined;
    this.progress = { stage: 'load', done: 0, total: 1, message: 'Starting the engine' };
    const tracker = new RunProgress({
      config: req.config,
      analyzeImages: req.analyze?.images,
      available: req.available,
      saves: true,
    });
    this.overall = tracker.update(this.progress, performance.now() / 1000);
    // between reports (a long layer solve) the time left follows the clock
    const ticker = setInterval(() => {
      if (this.seq === run && this.running && this.progress)
        this.overall = tracker.update(this.progress, performance.now() / 1000);
    }, 1000);
    this.analyzing = !!req.analyze;
    let r: Result<RunOutcome>;
    try {
      r = await this.api().run(
        [req.config],
        req.engine,
        callback((p: Progress) => {
          // a report that comes in after the run has answered (comlink does not wait) is dropped
          if (this.seq !== run || !this.running) return;
          this.progress = p;
          this.overall = tracker.update(p, performance.now() / 1000);
        }),
        req.analyze ? { analyze: req.analyze } : undefined,
      );
    } finally {
      clearInterval(ticker);
    }
    this.analyzing = false;
    let result: ExperimentResult | undefined;
    if (r.ok) {
      const { results, ...rest } = r.value;
      this.outcome = rest;
      result = results[0];
      await onResult(result);
      this.state = 'done';
    } else if (r.error.code === 'CANCELLED') {
      this.cancelEnd ??= 'boundary';
      this.state = 'cancelled';
    } else {
      this.error = r.error;
      this.state = 'error';
    }
    this.cancelling = false;
    return result;
  }

  /** A failure outside a run (the worker crashed while idle) shown where the run's errors are. */
  failIdle(e: ErrorInfo): void {
    if (this.running) return;
    this.error = e;
    this.state = 'error';
  }

  /**
   * Cancel the run: acknowledged at once (`cancelling`), the worker stops at its next
   * batch boundary. If it has not stopped after CANCEL_GRACE_MS, the worker is ended and
   * the run answers CANCELLED.
   */
  async cancel(): Promise<void> {
    if (!this.running || this.cancelling) return;
    this.cancelling = true;
    const run = this.seq;
    setTimeout(() => {
      if (this.seq !== run || !this.running) return;
      if (this.stop()) {
        this.cancelEnd = 'stopped';
        this.onWorkerStopped();
      }
    }, CANCEL_GRACE_MS);
    await this.api().cancel();
  }
}
