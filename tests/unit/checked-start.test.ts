/**
 * The page keeps a worker only once its own workers started (clients/checked-start.ts):
 * stalled ones are ended and replaced; a worker that goes quiet is a stall however it
 * got stuck; one that keeps reporting progress is waited for, but calls are not held
 * past the patience; after the allowed attempts one worker is kept unchecked.
 * Timers are faked: verdicts depend on the limits, not on this machine's speed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startChecked, type CheckedStart } from '../../src/lib/clients/checked-start.ts';

const LIMITS = { attempts: 3, silenceMs: 1_000, patienceMs: 10_000 };

type Script = string | undefined | 'quiet' | 'chatty' | 'throws';

/**
 * Workers numbered from 1; `verdicts[n - 1]` is worker n's check: a reason (stalled),
 * undefined (started), 'quiet' (never answers, says nothing), 'chatty' (never answers,
 * reports progress every 500 ms), 'throws' (the check itself fails).
 */
function scripted(verdicts: Script[]) {
  let started = 0;
  const discarded: number[] = [];
  const stalls: [string, number][] = [];
  const s: CheckedStart<number> = {
    start: () => ++started,
    check: (w, heard) => {
      const v = verdicts[w - 1];
      if (v === 'quiet') return new Promise(() => undefined);
      if (v === 'chatty') {
        setInterval(() => heard('bytes'), 500);
        return new Promise(() => undefined);
      }
      if (v === 'throws') return Promise.reject(new Error('comlink gave up'));
      return Promise.resolve(v);
    },
    discard: (w) => void discarded.push(w),
    onStall: (why, attempt) => void stalls.push([why, attempt]),
  };
  return { s, discarded, stalls, started: () => started };
}

describe('startChecked', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('keeps the first worker that started, ending the stalled ones before it', async () => {
    const t = scripted(['threads stalled', undefined]);
    await expect(startChecked(t.s, LIMITS)).resolves.toBe(2);
    expect(t.discarded).toEqual([1]);
    expect(t.stalls).toEqual([['threads stalled', 1]]);
    expect(t.started()).toBe(2);
  });

  it('keeps a worker that started at once, checking it once', async () => {
    const t = scripted([undefined]);
    await expect(startChecked(t.s, LIMITS)).resolves.toBe(1);
    expect(t.discarded).toEqual([]);
    expect(t.started()).toBe(1);
  });

  it('after every allowed attempt stalled, keeps one more worker unchecked', async () => {
    const t = scripted(['a', 'b', 'c', 'quiet']);
    await expect(startChecked(t.s, LIMITS)).resolves.toBe(4);
    expect(t.discarded).toEqual([1, 2, 3]);
    expect(t.stalls.map(([, n]) => n)).toEqual([1, 2, 3]);
  });

  it('a worker that goes quiet is a stall after the silence limit, and is replaced', async () => {
    const t = scripted(['quiet', undefined]);
    const kept = startChecked(t.s, LIMITS);
    await vi.advanceTimersByTimeAsync(999);
    expect(t.started()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(kept).resolves.toBe(2);
    expect(t.stalls).toEqual([['nothing was heard from it for 1 s after: started', 1]]);
    expect(t.discarded).toEqual([1]);
  });

  it('a worker that keeps reporting progress is no stall; past the patience it is kept and calls go through', async () => {
    const t = scripted(['chatty']);
    const kept = startChecked(t.s, LIMITS);
    let done = false;
    void kept.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(done).toBe(false);
    expect(t.stalls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await expect(kept).resolves.toBe(1);
    expect(t.discarded).toEqual([]);
  });

  it('a check that fails (the worker died) keeps the worker: the call that follows reports why', async () => {
    const t = scripted(['throws']);
    await expect(startChecked(t.s, LIMITS)).resolves.toBe(1);
    expect(t.discarded).toEqual([]);
  });
});
