import { describe, expect, it } from 'vitest';
import { StageTimer } from '../../src/lib/experiment/stage-timer.ts';

describe('StageTimer', () => {
  it('gives the time between events to the later stage, and to the earlier one when the later opens a stage', () => {
    let now = 0;
    const t = new StageTimer(() => now);
    const at = (
      ms: number,
      stage: 'decode' | 'fp32' | 'calibrate' | 'quantize' | 'evaluate',
      done: number,
      message = '',
    ) => {
      now = ms;
      t.observe({ stage, done, message });
    };
    at(1000, 'decode', 5);
    at(3000, 'fp32', 10);
    at(4000, 'calibrate', 32);
    at(4500, 'quantize', 0); // tail of calibration
    at(4700, 'evaluate', 0); // quantizing took 0.2 s
    at(6700, 'evaluate', 64);
    at(7000, 'quantize', 3, 'Fixes: bias correction');
    now = 7500;
    expect(t.finish()).toBeCloseTo(7.5);
    expect(Object.fromEntries(t.seconds)).toEqual({
      decode: 1,
      fp32: 2,
      calibrate: 1.5,
      quantize: 0.2,
      evaluate: 2,
      fixes: 0.8,
    });
    expect(t.summary()).toBe('decode 1.0 s, fp32 2.0 s, calibrate 1.5 s, quantize 0.2 s, evaluate 2.0 s, fixes 0.8 s');
  });
});
