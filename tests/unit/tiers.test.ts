// The unit tier stays fast and self-contained: no test in it reads ../shared/data (the
// engine is kept out by vitest.config.ts, which resolves onnxruntime to a refusing stub).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const DIR = new URL('./', import.meta.url);

describe('the unit tier', () => {
  it('reads no real data: such tests belong in tests/integration', () => {
    const offenders = readdirSync(DIR)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) =>
        /shared\/data|support\/shared-data/.test(readFileSync(new URL(f, DIR), 'utf8').replace(/\/\/.*$/gm, '')),
      );
    expect(offenders).toEqual([]);
  });
});
