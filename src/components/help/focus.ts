/**
 * Moves the reader to a section of the page: scrolls it into view and moves keyboard
 * focus to it. Used instead of `#anchor` links, because the location hash holds the
 * experiment settings (src/lib/config/url.ts) and must not be overwritten. A section in a
 * tab below the workbench (state/views.ts) is shown first.
 */
import { tick } from 'svelte';
import type { AppState } from '../../lib/state/app.svelte.ts';
import type { View } from '../../lib/state/views.ts';

export function focusSection(id: string): void {
  const el = document.getElementById(id);
  if (!el) return;
  if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
  el.scrollIntoView({ behavior: 'smooth', block: 'start' });
  el.focus({ preventScroll: true });
}

/** Show a tab's section, then move to the element `id` inside it. */
export async function showSection(app: AppState, view: View, id: string): Promise<void> {
  app.view = view;
  await tick();
  focusSection(id);
}
