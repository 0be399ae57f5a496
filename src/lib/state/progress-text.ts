/**
 * The run's status line from a Progress report, as one readable sentence part: the stage
 * name, then "done / total (pct%)" for whole counts or only the percentage for stages
 * that report fractions (analysis steps), then the message's own detail — without
 * repeating the stage name or the counts already shown ("Decoding images · 8 / 96 (8%)",
 * not "… Decoding images 8/96" again). Pure, so it is unit-tested.
 */
import type { Progress } from '../experiment/types.ts';

export const STAGE_NAMES: Readonly<Record<string, string>> = {
  load: 'Loading',
  download: 'Downloading images',
  decode: 'Decoding images',
  fp32: 'FP32 evaluation',
  calibrate: 'Calibrating',
  quantize: 'Quantizing',
  evaluate: 'Quantized evaluation',
  analyze: 'Analyzing',
  fixes: 'Applying fixes',
  ptq: 'Optimizing rounding',
};

export interface StatusText {
  stage: string;
  /** "8 / 96 (8%)" or "4%" */
  count: string;
  /** what the message adds; empty when it only repeated stage and counts */
  detail: string;
  percent: number;
}

export function statusText(p: Progress): StatusText {
  const stage = STAGE_NAMES[p.stage] ?? p.stage;
  const frac = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 0;
  const percent = Math.round(100 * frac);
  const whole = Number.isInteger(p.done) && Number.isInteger(p.total) && p.total > 1;
  const count = whole ? `${p.done} / ${p.total} (${percent}%)` : `${percent}%`;
  let detail = p.message.trim();
  // drop the counts the message repeats ("8/96", "8 / 96", "(8%)")
  detail = detail.replace(new RegExp(`\\s*\\(?${p.done}\\s*/\\s*${p.total}\\)?`), '').replace(/\s*\(\d+%\)/, '');
  if (detail.toLowerCase().startsWith(stage.toLowerCase())) detail = detail.slice(stage.length);
  detail = detail.replace(/^[\s·:,.-]+/, '').replace(/[\s·:,]+$/, '');
  if (detail) detail = detail[0].toUpperCase() + detail.slice(1);
  return { stage, count, detail, percent };
}
