import { describe, expect, it } from 'vitest';
import { statusText } from '../../src/lib/state/progress-text.ts';

describe('statusText', () => {
  it('does not repeat the stage name and counts the message already carries', () => {
    const s = statusText({ stage: 'decode', done: 8, total: 96, message: 'Decoding images 8/96' });
    expect(s).toMatchObject({ stage: 'Decoding images', count: '8 / 96 (8%)', detail: '' });
  });

  it('shows only a percentage for fractional progress (analysis steps)', () => {
    const s = statusText({ stage: 'analyze', done: 0.125, total: 3, message: 'Per-layer error' });
    expect(s.count).toBe('4%');
    expect(s.count).not.toContain('0.125');
    expect(s.detail).toBe('Per-layer error');
  });

  it('keeps a message that adds information', () => {
    const s = statusText({ stage: 'quantize', done: 0, total: 1, message: 'Quantizing weights for tensorrt W8A8' });
    expect(s.detail).toBe('Weights for tensorrt W8A8');
    expect(s.count).toBe('0%');
  });
});
