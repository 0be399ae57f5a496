/**
 * Which guided lesson is open. The open lesson lives in AppState (`lessonId`) so the page's
 * link carries it (`lesson=<id>`) and a link opens it again. Opening one loads its share link
 * into the experiment (the same path as opening a link), so the lesson's settings and hidden
 * controls are exactly what its link says; closing it shows every control again.
 * Rune class; no DOM.
 */
import { findLesson, type Lesson } from '../../lessons/index.ts';
import type { AppState } from './app.svelte.ts';

export class LessonsState {
  constructor(private readonly app: AppState) {}

  get current(): Lesson | undefined {
    return this.app.lessonId ? findLesson(this.app.lessonId) : undefined;
  }

  open(lesson: Lesson): void {
    const { app } = this;
    app.exp.loadHash(lesson.link);
    app.lessonId = lesson.id;
    void app.restoreFromConfig();
  }

  /** Close the lesson: its settings stay, every control it hid is shown again. */
  close(): void {
    this.app.lessonId = undefined;
    // ExperimentState.hidden is replaced, never mutated: a plain Set is reactive enough
    // eslint-disable-next-line svelte/prefer-svelte-reactivity
    if (this.app.exp.hidden.size) this.app.exp.hidden = new Set();
  }
}
