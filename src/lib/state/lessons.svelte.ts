/**
 * Which guided lesson is open. Opening one loads its share link into the experiment
 * (the same path as opening a link), so the lesson's settings, hidden controls and URL
 * are exactly what its link says. Rune class; no DOM.
 */
import type { Lesson } from '../../lessons/types.ts';
import type { AppState } from './app.svelte.ts';

export class LessonsState {
  current = $state.raw<Lesson | undefined>(undefined);

  open(lesson: Lesson, app: AppState): void {
    this.current = lesson;
    app.exp.loadHash(lesson.link);
    void app.restoreFromConfig();
  }

  close(): void {
    this.current = undefined;
  }
}
