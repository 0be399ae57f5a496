/**
 * The runs stored in this browser (IndexedDB, through the worker) and the two the user
 * picked to compare side by side.
 */
import type { Remote } from 'comlink';
import type { ErrorInfo } from '../util/errors.ts';
import type { QuantApi } from '../protocol/api.ts';
import type { ExperimentResult } from '../experiment/types.ts';

export class HistoryState {
  /** stored runs without their per-layer rows, oldest first */
  runs = $state.raw<ExperimentResult[]>([]);
  /** config hashes of the runs compared, at most two */
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
    else this.compare = [...this.compare, hash].slice(-2);
  }
}
