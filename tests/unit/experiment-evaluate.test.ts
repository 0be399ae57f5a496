/**
 * evaluate() counts through AccuracyCounter, the one top-1/top-5 counter: batches of a
 * fake session whose logits are chosen per image give the hand-counted hits and the
 * predictions in input order, whatever the batch size.
 */
import { describe, expect, it } from 'vitest';
import { TORCHVISION_SPEC } from '../../src/lib/data/preprocess.ts';
import type { EngineSession, FloatTensor } from '../../src/lib/engine/types.ts';
import { evaluate, toAccuracy } from '../../src/lib/experiment/evaluate.ts';

const CLASSES = 7;
const spec = { ...TORCHVISION_SPEC, crop: 2, resizeShorter: 2 };

/** A session whose logits for image i rank the classes of `rankings[i]` first (best first). */
function fakeSession(rankings: number[][]): EngineSession {
  let next = 0;
  return {
    inputNames: ['x'],
    outputNames: ['y'],
    async run(feeds: Record<string, FloatTensor>) {
      const rows = feeds.x.dims[0];
      const data = new Float32Array(rows * CLASSES);
      for (let r = 0; r < rows; r++) {
        const rank = rankings[next++];
        rank.forEach((c, j) => (data[r * CLASSES + c] = 100 - j));
      }
      return { y: { data, dims: [rows, CLASSES] } };
    },
    async release() {},
  };
}

describe('evaluate', () => {
  // image → classes best first; labels chosen so hits are known by hand
  const rankings = [
    [3, 1, 2, 0, 4], // label 3: top-1
    [0, 1, 2, 4, 5], // label 5: top-5 only
    [6, 5, 4, 3, 2], // label 0: neither
    [2, 6], //          label 2: top-1
    [1, 2, 3, 4, 5], // label 1: top-1
  ];
  const labels = [3, 5, 0, 2, 1];
  const crops = rankings.map(() => new Uint8Array(2 * 2 * 3));

  for (const batchSize of [1, 2, 32]) {
    it(`counts hits and keeps predictions in order (batch ${batchSize})`, async () => {
      const o = await evaluate(fakeSession(rankings), crops, labels, spec, { batchSize });
      expect([o.n, o.top1Hits, o.top5Hits]).toEqual([5, 3, 4]);
      expect(Array.from(o.preds)).toEqual([3, 0, 6, 2, 1]);
      const acc = toAccuracy(o);
      expect([acc.top1, acc.top5]).toEqual([0.6, 0.8]);
    });
  }

  it('returns an empty outcome for no images', async () => {
    const o = await evaluate(fakeSession([]), [], [], spec, { batchSize: 4 });
    expect([o.n, o.top1Hits, o.top5Hits, o.preds.length]).toEqual([0, 0, 0, 0]);
  });
});
