/**
 * Start a worker and keep it only once it says its own workers came up; else end it and
 * start another. Why: the quantization worker starts workers of its own, and on a page its
 * service worker controls Firefox ESR sometimes leaves one of them, or the worker itself,
 * waiting forever (docs/hosting.md). The check runs before anything is loaded into the
 * worker, so ending it loses nothing.
 * Pure orchestration: what a worker is and how it is checked are passed in.
 */
export interface CheckedStart<W> {
  start(): W;
  /**
   * Resolves with why `w` stalled, or undefined when it started (or could not say). Calls
   * `heard(what)` whenever the worker shows it is getting on (a step done, bytes downloaded).
   */
  check(w: W, heard: (what: string) => void): Promise<string | undefined>;
  /** end a worker that stalled (not a crash: nobody is told) */
  discard(w: W): void;
  /** told of each stall, with the attempt's number */
  onStall?(why: string, attempt: number): void;
}

export interface CheckLimits {
  /** how many workers are checked before one is kept unchecked */
  attempts: number;
  /**
   * Silence that makes a stall: nothing heard for this long. A worker whose thread is
   * blocked cannot time itself out; only the page can notice that it has gone quiet.
   */
  silenceMs: number;
  /**
   * A check still going after this long, with the worker still heard from, counts as
   * passed: calls should not wait on a slow start for ever.
   */
  patienceMs: number;
}

/**
 * Up to `attempts` checked starts. After `attempts` stalls one more worker is started and
 * kept unchecked: the page works as it did before the check, and a stall, should it come,
 * shows in a run.
 */
export async function startChecked<W>(s: CheckedStart<W>, limits: CheckLimits): Promise<W> {
  for (let attempt = 1; attempt <= limits.attempts; attempt++) {
    const w = s.start();
    let silence: ReturnType<typeof setTimeout> | undefined;
    let patience: ReturnType<typeof setTimeout> | undefined;
    let over = false;
    const stalled = await new Promise<string | undefined>((resolve) => {
      const heard = (what: string) => {
        if (over) return;
        clearTimeout(silence);
        silence = setTimeout(
          () => resolve(`nothing was heard from it for ${limits.silenceMs / 1000} s after: ${what}`),
          limits.silenceMs,
        );
      };
      heard('started');
      patience = setTimeout(() => resolve(undefined), limits.patienceMs);
      s.check(w, heard).then(resolve, () => resolve(undefined));
    });
    over = true;
    clearTimeout(silence);
    clearTimeout(patience);
    if (stalled === undefined) return w;
    s.onStall?.(stalled, attempt);
    s.discard(w);
  }
  return s.start();
}
