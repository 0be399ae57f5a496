/**
 * Which guided lesson is open, and what each lesson downloads on a first visit. Opening one
 * loads its share link into the experiment (the same path as opening a link), so the
 * lesson's settings, hidden controls and URL are exactly what its link says, then loads the
 * model and images it names (from this browser, the dev server or the registry) so the
 * student only presses Run. Rune class; no DOM.
 */
import type { Lesson } from '../../lessons/types.ts';
import { parse } from '../config/url.ts';
import type { AppState } from './app.svelte.ts';
import { downloadCost, type DownloadCost } from './download-cost.ts';

export class LessonsState {
  current = $state.raw<Lesson | undefined>(undefined);
  /** per lesson id: model and image bytes a first visit downloads (registry files only) */
  costs = $state.raw<Readonly<Record<string, DownloadCost>>>({});

  /** Work out what each lesson downloads (from the embedded image manifest). */
  async measure(lessons: readonly Lesson[]): Promise<void> {
    const out: Record<string, DownloadCost> = {};
    for (const l of lessons) {
      const c = await downloadCost(parse(l.link).config);
      if (c) out[l.id] = c;
    }
    this.costs = out;
  }

  open(lesson: Lesson, app: AppState): void {
    this.current = lesson;
    app.exp.loadHash(lesson.link);
    void app.ensureInputs();
  }

  close(): void {
    this.current = undefined;
  }
}
