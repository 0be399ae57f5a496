/**
 * Wall time per pipeline stage, read off the progress events the pipeline already emits,
 * so `npm run bench` can say where a sweep's minutes go without the pipeline keeping
 * clocks of its own. The time between two events belongs to the later event's stage,
 * except when the later event opens a stage (done 0): then it is the earlier stage's tail.
 * Fixes report as 'quantize' with a "Fixes:" message and are counted apart.
 */
import type { Progress } from './types.ts';

export const TIMED_STAGES = [
  'load',
  'download',
  'decode',
  'fp32',
  'calibrate',
  'quantize',
  'evaluate',
  'fixes',
  'analyze',
  'finish',
] as const;
export type TimedStage = (typeof TIMED_STAGES)[number];

export function timedStageOf(p: Pick<Progress, 'stage' | 'message'>): TimedStage {
  return p.stage === 'quantize' && p.message.startsWith('Fixes:') ? 'fixes' : p.stage;
}

export class StageTimer {
  readonly seconds = new Map<TimedStage, number>();
  private last: number;
  private lastStage: TimedStage | undefined;
  private readonly start: number;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.start = this.last = now();
  }

  /** Feed every progress event, in order. */
  observe(p: Pick<Progress, 'stage' | 'message' | 'done'>): void {
    const stage = timedStageOf(p);
    const owner = p.done === 0 && this.lastStage ? this.lastStage : stage;
    this.add(owner);
    this.lastStage = stage;
  }

  /** Close the last stage now; returns the total wall seconds since the timer started. */
  finish(): number {
    if (this.lastStage) this.add(this.lastStage);
    return (this.last - this.start) / 1000;
  }

  private add(stage: TimedStage): void {
    const t = this.now();
    this.seconds.set(stage, (this.seconds.get(stage) ?? 0) + (t - this.last) / 1000);
    this.last = t;
  }

  /** "decode 12.0 s, fp32 30.1 s, …" in pipeline order, stages that took no time left out. */
  summary(): string {
    return TIMED_STAGES.filter((s) => this.seconds.has(s))
      .map((s) => `${s} ${this.seconds.get(s)!.toFixed(1)} s`)
      .join(', ');
  }
}
