// The glossary has the terms the result and analysis views link to, each defined once.
import { describe, expect, it } from 'vitest';
import { GLOSSARY, glossaryEntry } from '../../src/lib/help/glossary.ts';

describe('glossary', () => {
  it('defines each term once, in a sentence or two', () => {
    const ids = GLOSSARY.map((g) => g.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const g of GLOSSARY) {
      expect(g.text.split(/\s+/).length).toBeLessThan(70);
      expect(g.text.trim()).toMatch(/[.)]$/);
    }
  });

  it('covers the metrics and settings the issue names', () => {
    for (const id of [
      'agreement',
      'sqnr',
      'top1',
      'interval',
      'w8a8',
      'observer',
      'narrow-range',
      'power-of-two',
      'activation-sign',
      'placement',
      'bn-folding',
      'per-channel',
    ]) {
      expect(glossaryEntry(id).term.length).toBeGreaterThan(2);
    }
    expect(() => glossaryEntry('nope')).toThrow(/no entry "nope"/);
  });
});
