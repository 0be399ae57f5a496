/**
 * Measures each phase's work in image units from recorded progress traces (written by
 * scripts/record-progress.ts), to set PHASE_COST in src/lib/state/run-progress.ts.
 *
 *   npx tsx scripts/fit-progress-costs.ts [tests/fixtures/progress/traces.json]
 *
 * The unit is the run's own FP32 forward of one image, taken between the FP32 evaluation's
 * first and last batch (the session and its first batch's warm-up are the phase's fixed
 * part), so every run is measured against its own machine load. A phase ends at its last
 * report when that report says it is complete, else at the next phase's first report; it
 * starts where the previous phase ended. Prints one row per trace; the chosen costs and the
 * table are in docs/ui.md. Reads only the traces: no engine, no data.
 */
import { readFileSync } from 'node:fs';
import { phaseOf, type Phase } from '../src/lib/state/run-progress.ts';
import type { Progress } from '../src/lib/protocol/results.ts';

interface Trace {
  config: { calib: number; eval: number; ptq: string; ptqIters: number };
  analyze?: { images: number };
  seconds: number;
  events: (Progress & { t: number })[];
}

const file = process.argv[2] ?? 'tests/fixtures/progress/traces.json';
const { traces } = JSON.parse(readFileSync(file, 'utf8')) as { traces: Record<string, Trace> };

/** [start, end] seconds of each phase that reported, in the order they ran. */
function spans(tr: Trace): Map<Phase, { from: number; to: number; events: (Progress & { t: number })[] }> {
  const groups: { phase: Phase; events: (Progress & { t: number })[] }[] = [];
  for (const e of tr.events) {
    const phase = phaseOf(e);
    if (groups.at(-1)?.phase !== phase) groups.push({ phase, events: [] });
    groups.at(-1)!.events.push(e);
  }
  const out = new Map<Phase, { from: number; to: number; events: (Progress & { t: number })[] }>();
  let from = 0;
  groups.forEach((g, i) => {
    const last = g.events.at(-1)!;
    const to = last.done >= last.total ? last.t : (groups[i + 1]?.events[0].t ?? tr.seconds);
    out.set(g.phase, { from, to, events: g.events });
    from = to;
  });
  return out;
}

/** Seconds per image between a phase's first and last report that counted images. */
function perImage(events: (Progress & { t: number })[]): number | undefined {
  const counted = events.filter((e) => e.done > 0 && /\d+\/\d+/.test(e.message));
  const a = counted[0];
  const b = counted.at(-1);
  if (!a || !b || b.done <= a.done) return undefined;
  return (b.t - a.t) / (b.done - a.done);
}

const f = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1));
const rows: string[] = [];
for (const [name, tr] of Object.entries(traces)) {
  const s = spans(tr);
  const fp32 = s.get('fp32');
  const u = fp32 ? perImage(fp32.events) : undefined;
  if (!fp32 || !u) continue;
  const units = (p: Phase) => {
    const x = s.get(p);
    return x ? (x.to - x.from) / u : undefined;
  };
  const c = tr.config;
  const ev = s.get('evaluate');
  const evPer = ev ? perImage(ev.events.filter((e) => !e.message.startsWith('Evaluation before'))) : undefined;
  const an = s.get('analyze');
  const perLayer = an?.events.filter((e) => e.message.startsWith('Per-layer')).at(-1);
  rows.push(
    [
      name,
      u.toFixed(3),
      f(units('decode')! / (c.calib + c.eval)),
      f(units('fp32')! - c.eval),
      f(units('calibrate')),
      f(units('weights')),
      f(units('fixes')),
      f(evPer! / u),
      f(units('evaluate')! - (evPer! / u) * c.eval),
      f(units('before')),
      f(perLayer && tr.analyze ? (perLayer.t - an!.from) / u / tr.analyze.images : undefined),
      f(perLayer ? (an!.to - perLayer.t) / u / 2 : undefined),
      tr.seconds.toFixed(1),
    ].join(' | '),
  );
}
process.stdout.write(
  `| trace | s per unit | decode per image | FP32 fixed | calibrate | weights | fixes | evaluate per image | evaluate fixed | before fixes | analysis per image | analysis evaluation | run s |\n|${' --- |'.repeat(13)}\n`,
);
for (const r of rows) process.stdout.write(`| ${r} |\n`);
