/**
 * After `npm run test:fast` (vitest --coverage, vitest.config.ts): lists the source files
 * that no unit test executes at all, from coverage/coverage-summary.json, so a new file
 * without tests shows next to the summary. Most of them are engine-bound or browser-only
 * and tested by the integration and e2e tiers; the list says which files those are, not
 * that they are untested. Prints nothing but a note when the summary is missing. Exit 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

interface Summary {
  [file: string]: { lines: { total: number; covered: number; pct: number } };
}

const root = resolve(import.meta.dirname, '..');
const file = resolve(root, 'coverage/coverage-summary.json');
if (!existsSync(file)) {
  console.log('No coverage/coverage-summary.json: run the unit tier with --coverage (npm run test:fast).');
} else {
  const summary = JSON.parse(readFileSync(file, 'utf8')) as Summary;
  const untouched = Object.entries(summary)
    .filter(([f, s]) => f !== 'total' && s.lines.total > 0 && s.lines.covered === 0)
    .map(([f]) => relative(root, f))
    .sort();
  console.log(
    `Files no unit test executes (${untouched.length}; the integration and e2e tiers cover the engine- and browser-bound ones):`,
  );
  for (const f of untouched) console.log(`  ${f}`);
  console.log(`Coverage report: ${relative(root, resolve(root, 'coverage/html/index.html'))}`);
}
