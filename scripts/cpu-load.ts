/**
 * Ordinary load for the benchmarks (`bench:perf --load N`): N other CPU-bound processes (a
 * busy loop each, like a student's browser tab or build running beside the playground),
 * started before the measurement and stopped after it — also when the benchmark exits
 * early. Only the processes started here are stopped, by their own ids.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CpuLoad {
  processes: number;
  /** process ids of the busy loops */
  pids: number[];
  /** stops them (SIGKILL); resolves when they have exited */
  stop(): Promise<void>;
}

/** Starts `n` busy-loop processes (none for n = 0). */
export function startCpuLoad(n: number): CpuLoad {
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  }
  const kill = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', kill);
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      kill();
      process.exit(130);
    });
  const stop = async () => {
    const exited = children.map((c) =>
      c.exitCode !== null || c.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => c.once('exit', () => r())),
    );
    kill();
    await Promise.all(exited);
    process.off('exit', kill);
  };
  return { processes: n, pids: children.map((c) => c.pid!), stop };
}

/** The median of per-round ratios a[i] / b[i] (each round's measurement over its own baseline), with the range. */
export function roundRatios(a: number[], b: number[]): { median: number; min: number; max: number; rounds: number[] } {
  if (a.length !== b.length || a.length === 0) throw new Error('roundRatios needs as many measurements as baselines.');
  const rounds = a.map((x, i) => x / b[i]);
  const sorted = [...rounds].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], rounds };
}
