/**
 * The page's sections below the workbench, in tab order, with their labels. The ids are the
 * link's `view=` values (config/link.ts LINK_VIEWS); the first is the default. Pure data.
 */
import { LINK_VIEWS, type LinkView } from '../config/link.ts';

export type View = LinkView;

const LABELS: Record<View, string> = {
  learn: 'Learn',
  analysis: 'Why accuracy drops',
  graph: 'Weights & graph',
  history: 'History',
};

export const VIEWS: readonly { id: View; label: string }[] = LINK_VIEWS.map((id) => ({ id, label: LABELS[id] }));

/** The section that holds an element id the page jumps to (help links, "Why accuracy drops ↓"). */
export function viewOf(id: string): View | undefined {
  if (id === 'why-h') return 'analysis';
  if (id === 'lessons-h') return 'learn';
  if (id === 'graph-h' || id === 'weights-h') return 'graph';
  if (id === 'hist-h') return 'history';
  return undefined;
}
