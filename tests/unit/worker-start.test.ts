/**
 * The quantization worker's start check (workers/api.ts `startWorkers`): image decoders
 * that did not start in time are a stall, named, for the page to replace the worker; each
 * step is told to the page, which listens for silence (clients/checked-start.ts).
 */
import { describe, expect, it } from 'vitest';
import { createQuantApi } from '../../workers/api.ts';

const noCrop = { concurrency: 1, crop: async () => new Uint8Array(0) };

function api(decodersUp: boolean | undefined) {
  const waited: number[] = [];
  const a = createQuantApi({
    storage: {} as never,
    cropper: () =>
      decodersUp === undefined
        ? noCrop
        : {
            ...noCrop,
            started: async (ms: number) => {
              waited.push(ms);
              return decodersUp;
            },
          },
  });
  return { a, waited };
}

describe('worker: startWorkers', () => {
  it('decoders up: no stall, each step told in order, the decoders given their 15 s', async () => {
    const { a, waited } = api(true);
    const told: string[] = [];
    expect(await a.startWorkers((w) => void told.push(w))).toEqual({ ok: true, value: {} });
    expect(told).toEqual(['image decoders starting', 'image decoders started']);
    expect(waited).toEqual([15_000]);
  });

  it('decoders that did not start are a stall, named', async () => {
    const { a } = api(false);
    const told: string[] = [];
    expect(await a.startWorkers((w) => void told.push(w))).toEqual({
      ok: true,
      value: { stalled: 'the image decoding workers did not start within 15 s' },
    });
    expect(told).toEqual(['image decoders starting']);
  });

  it('a worker that decodes in place (no pool) has nothing to wait for', async () => {
    const { a } = api(undefined);
    expect(await a.startWorkers()).toEqual({ ok: true, value: {} });
  });
});
