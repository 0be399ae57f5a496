// Text colours of src/app.css against the backgrounds they are drawn on: WCAG AA (4.5:1) for small text.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';

const css = readFileSync(new URL('../../src/app.css', import.meta.url), 'utf8');
const long = (h: string) => (h.length === 4 ? `#${[...h.slice(1)].map((c) => c + c).join('')}` : h);
const vars = new Map(
  [...css.matchAll(/--([a-z-]+):\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b/g)].map((m) => [m[1], long(m[2])]),
);
const color = (c: string) => (c.startsWith('--') ? vars.get(c.slice(2))! : c);

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5]
    .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((x) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

describe('text contrast', () => {
  it('measures the known case: the old warning colour #c27c0e on white is about 3.4:1', () => {
    expect(contrast('#c27c0e', '#ffffff')).toBeCloseTo(3.4, 1);
  });

  const pairs: [string, string][] = [
    ['--fg', '--panel'],
    ['--fg', '--bg'],
    ['--muted', '--panel'],
    ['--muted', '--bg'],
    ['--muted', '#eef1f5'],
    ['--muted', '#eef4ff'],
    ['--warn', '--panel'],
    ['--warn', '--bg'],
    ['--warn', '--warn-bg'],
    ['--bad', '--panel'],
    ['--bad', '--bad-bg'],
    ['--ok', '--panel'],
    ['--ok', '#e6f4ea'],
    ['--accent', '--panel'],
    ['--accent', '#eef4ff'],
    ['#ffffff', '--accent'],
    ['#8a5a00', '#fff1d6'],
  ];
  it.each(pairs)('%s on %s is at least 4.5:1', (fg, bg) => {
    expect(vars.size).toBeGreaterThan(5);
    expect(contrast(color(fg), color(bg))).toBeGreaterThanOrEqual(4.5);
  });
});
