/**
 * The runs stored in this browser (IndexedDB, through the worker) and the ones the user
 * picked to compare side by side (up to MAX_COMPARE; the overlay of analysed runs uses the
 * first two).
 */
import type { Remote } from 'comlink';
import type { ErrorInfo } from '../util/errors.ts';
import type { QuantApi } from '../protocol/api.ts';
import type { ExperimentResult } from '../experiment/types.ts';

/** Runs compared at once: a lesson compares three observers; more no longer fit a phone's table. */
export const MAX_COMPARE = 4;

export class HistoryState {
  /** stored runs without their per-layer rows, oldest first */
  runs = $state.raw<ExperimentResult[]>([]);
  /** config hashes of the runs compared (oldest pick first), at most MAX_COMPARE */
  compare = $state<string[]>([]);
  error = $state<ErrorInfo | undefined>(undefined);

  constructor(private readonly api: () => Remote<QuantApi>) {}

  async refresh(): Promise<void> {
    const r = await this.api().listRuns();
    if (r.ok) this.runs = r.value;
    else this.error = r.error;
  }

  async remove(hash: string): Promise<void> {
    await this.api().deleteRun(hash);
    this.compare = this.compare.filter((h) => h !== hash);
    await this.refresh();
  }

  toggleCompare(hash: string): void {
    if (this.compare.includes(hash)) this.compare = this.compare.filter((h) => h !== hash);
    else this.compare = [...this.compare, hash].slice(-MAX_COMPARE);
  }
}
