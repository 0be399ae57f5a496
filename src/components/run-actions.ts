/**
 * Run and Cancel as the buttons call them, with focus where a keyboard user needs it next
 * (Run and Cancel are disabled in turn, and a disabled button drops focus to <body>):
 * - Run: focus moves to Cancel of the same bar; when the run is done, to the result's
 *   heading; when it failed, to the Run panel (its error is there).
 * - Cancel: focus moves to Run of the same bar, as soon as Run is enabled again (after a
 *   cancel that ended the worker, when the model is back).
 * Focus moves only while it is still where this put it (the student did not go elsewhere).
 */
import { tick } from 'svelte';
import type { AppState } from '../lib/state/app.svelte.ts';

type Where = 'panel' | 'bar';
const ids = (w: Where) =>
  w === 'panel' ? { run: 'run-button', cancel: 'cancel-button' } : { run: 'runbar-run', cancel: 'runbar-cancel' };

/** focus is where we left it, or nowhere (a disabled button dropped it) */
function untouched(expected: string | undefined): boolean {
  const a = document.activeElement;
  return !a || a === document.body || (!!expected && a.id === expected) || a.id === 'run-panel';
}

function focus(id: string, scroll = false): void {
  const el = document.getElementById(id);
  if (!el) return;
  if (scroll) el.scrollIntoView({ block: 'nearest' });
  el.focus({ preventScroll: !scroll });
}

export async function startRun(app: AppState, where: Where): Promise<void> {
  const { run, cancel } = ids(where);
  const done = app.run();
  await tick();
  if (untouched(run)) focus(cancel);
  await done;
  await tick();
  if (!untouched(cancel)) return;
  if (app.runner.state === 'done') focus('res-h', true);
  else if (app.runner.state === 'error') focus('run-panel', true);
  else if (app.runner.state === 'cancelled') await focusRunWhenReady(app, where);
}

export async function cancelRun(app: AppState, where: Where): Promise<void> {
  await app.cancel();
  // startRun moves focus once the run has answered; a cancel from the other bar lands here too
  await tick();
  if (!app.runner.running) await focusRunWhenReady(app, where);
}

/** Run, once it is enabled again (at most 30 s: a reload that fails shows its error instead). */
async function focusRunWhenReady(app: AppState, where: Where): Promise<void> {
  const { run, cancel } = ids(where);
  for (let waited = 0; waited < 30_000; waited += 50) {
    if (!untouched(cancel) && !untouched(run)) return;
    const el = document.getElementById(run) as HTMLButtonElement | null;
    if (el && !el.disabled) {
      el.focus();
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
