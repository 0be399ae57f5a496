/**
 * Moves the reader to a section of the page: scrolls it into view and moves keyboard
 * focus to it. Used instead of `#anchor` links, because the location hash holds the
 * experiment settings (src/lib/config/url.ts) and must not be overwritten.
 */
export function focusSection(id: string): void {
  const el = document.getElementById(id);
  if (!el) return;
  if (!el.hasAttribute('tabindex')) el.setAttribute('tabindex', '-1');
  el.scrollIntoView({ behavior: 'smooth', block: 'start' });
  el.focus({ preventScroll: true });
}
