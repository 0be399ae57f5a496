/**
 * Stage timing of a run in the built app, for the browser benchmarks: polls the run
 * panel's progress element (data-stage) every 20 ms inside the page and turns the
 * stage changes into seconds per stage. The app keeps no timers for this itself.
 */
import type { Page } from 'playwright-core';

/** Start recording stage changes (forgets any earlier recording). */
export async function startStagePoll(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __stageLog: [string, number][]; __stagePoll: number };
    clearInterval(w.__stagePoll);
    w.__stageLog = [];
    w.__stagePoll = window.setInterval(() => {
      const s =
        (document.querySelector('[data-testid=run-panel] [data-stage]') as HTMLElement | null)?.dataset.stage ?? '';
      const log = w.__stageLog;
      if (log.length ? log[log.length - 1][0] !== s : s) log.push([s, performance.now()]); // '' = no stage shown
    }, 20);
  });
}

/** The stage now shown (polled), or '' when none. */
export async function currentStage(page: Page): Promise<string> {
  return page.evaluate(() => {
    const log = (window as unknown as { __stageLog?: [string, number][] }).__stageLog ?? [];
    return log.length ? log[log.length - 1][0] : '';
  });
}

/** Stop recording; seconds per stage (a stage still shown runs until now). */
export async function stopStagePoll(page: Page): Promise<Record<string, number>> {
  const [log, end] = await page.evaluate(() => {
    const w = window as unknown as { __stageLog: [string, number][]; __stagePoll: number };
    clearInterval(w.__stagePoll);
    return [w.__stageLog ?? [], performance.now()] as const;
  });
  const stages: Record<string, number> = {};
  log.forEach(([s, t], i) => {
    if (!s) return;
    stages[s] = (stages[s] ?? 0) + ((i + 1 < log.length ? log[i + 1][1] : end) - t) / 1000;
  });
  return stages;
}
