/**
 * Which guided lesson is open, and what each lesson downloads on a first visit. The open
 * lesson lives in AppState (`lessonId`) so the page's link carries it (`lesson=<id>`) and a
 * link opens it again. Opening one loads its share link into the experiment (the same path
 * as opening a link), so the lesson's settings and hidden controls are exactly what its link
 * says, then loads the model and images it names (from this browser, the dev server or the
 * registry) so the student only presses Run; closing it shows every control again.
 * Rune class; no DOM.
 */
import { findLesson, type Lesson } from '../../lessons/index.ts';
import { parse } from '../config/url.ts';
import type { AppState } from './app.svelte.ts';
import { downloadCost, type DownloadCost } from './download-cost.ts';

export class LessonsState {
  /** per lesson id: model and image bytes a first visit downloads (registry files only) */
  costs = $state.raw<Readonly<Record<string, DownloadCost>>>({});

  constructor(private readonly app: AppState) {}

  /** Work out what each lesson downloads (from the embedded image manifest). */
  async measure(lessons: readonly Lesson[]): Promise<void> {
    const out: Record<string, DownloadCost> = {};
    for (const l of lessons) {
      const c = await downloadCost(parse(l.link).config);
      if (c) out[l.id] = c;
    }
    this.costs = out;
  }

  get current(): Lesson | undefined {
    return this.app.lessonId ? findLesson(this.app.lessonId) : undefined;
  }

  open(lesson: Lesson): void {
    const { app } = this;
    app.exp.loadHash(lesson.link);
    app.lessonId = lesson.id;
    void app.ensureInputs();
  }

  /** Close the lesson: its settings stay, every control it hid is shown again. */
  close(): void {
    this.app.lessonId = undefined;
    // ExperimentState.hidden is replaced, never mutated: a plain Set is reactive enough
    // eslint-disable-next-line svelte/prefer-svelte-reactivity
    if (this.app.exp.hidden.size) this.app.exp.hidden = new Set();
  }
}
