/**
 * The WebGPU→wasm fallback: a run must continue on wasm when WebGPU cannot create a
 * session or fails mid-run, say why, and afterwards use wasm for every session.
 * Fake engines stand in for the two backends: what is tested is the switching logic.
 */
import { describe, expect, it } from 'vitest';
import { FallbackEngine } from '../../src/lib/engine/fallback.ts';
import type { Engine, EngineKind, EngineSession, FloatTensor } from '../../src/lib/engine/types.ts';

/** An engine whose outputs say which backend computed them (value = id). */
function fakeEngine(kind: EngineKind, id: number, fail: { create?: boolean; runAfter?: number } = {}) {
  const log = { created: 0, runs: 0, released: 0 };
  const engine: Engine = {
    kind,
    description: `${kind} fake`,
    async createSession(): Promise<EngineSession> {
      if (fail.create) throw new Error(`${kind}: no device`);
      log.created++;
      return {
        inputNames: ['x'],
        outputNames: ['y'],
        async run(): Promise<Record<string, FloatTensor>> {
          if (fail.runAfter !== undefined && log.runs >= fail.runAfter) throw new Error(`${kind}: device lost`);
          log.runs++;
          return { y: { data: Float32Array.of(id), dims: [1] } };
        },
        async release() {
          log.released++;
        },
      };
    },
  };
  return { engine, log };
}

const feeds = { x: { data: Float32Array.of(0), dims: [1] } };

describe('FallbackEngine', () => {
  it('uses WebGPU while it works', async () => {
    const gpu = fakeEngine('webgpu', 1);
    const wasm = fakeEngine('wasm', 2);
    const reasons: string[] = [];
    const e = new FallbackEngine(gpu.engine, wasm.engine, (r) => reasons.push(r));
    const s = await e.createSession(new Uint8Array());
    expect((await s.run(feeds)).y.data[0]).toBe(1);
    expect(e.kind).toBe('webgpu');
    expect(reasons).toEqual([]);
    expect(wasm.log.created).toBe(0);
  });

  it('falls back to wasm when WebGPU cannot create a session, and says why', async () => {
    const wasm = fakeEngine('wasm', 2);
    const reasons: string[] = [];
    const e = new FallbackEngine(fakeEngine('webgpu', 1, { create: true }).engine, wasm.engine, (r) => reasons.push(r));
    const s = await e.createSession(new Uint8Array());
    expect((await s.run(feeds)).y.data[0]).toBe(2);
    expect(e.kind).toBe('wasm');
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/WebGPU failed.*wasm.*no device/);
    expect(e.description).toMatch(/fell back to wasm/);
  });

  it('re-creates a failing session on wasm mid-run and answers that run from wasm', async () => {
    const gpu = fakeEngine('webgpu', 1, { runAfter: 2 });
    const wasm = fakeEngine('wasm', 2);
    const reasons: string[] = [];
    const e = new FallbackEngine(gpu.engine, wasm.engine, (r) => reasons.push(r));
    const a = await e.createSession(new Uint8Array());
    const b = await e.createSession(new Uint8Array());
    expect((await a.run(feeds)).y.data[0]).toBe(1);
    expect((await b.run(feeds)).y.data[0]).toBe(1);
    // the third WebGPU run fails: the run is answered by wasm, not lost
    expect((await a.run(feeds)).y.data[0]).toBe(2);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/device lost/);
    // the other session follows instead of using WebGPU again
    expect((await b.run(feeds)).y.data[0]).toBe(2);
    // new sessions go straight to wasm
    const c = await e.createSession(new Uint8Array());
    expect((await c.run(feeds)).y.data[0]).toBe(2);
    expect(gpu.log.released).toBe(2);
    expect(wasm.log.created).toBe(3);
  });

  it('does not hide a wasm failure after the switch', async () => {
    const wasm = fakeEngine('wasm', 2, { runAfter: 0 });
    const e = new FallbackEngine(fakeEngine('webgpu', 1, { runAfter: 0 }).engine, wasm.engine, () => undefined);
    const s = await e.createSession(new Uint8Array());
    await expect(s.run(feeds)).rejects.toThrow(/wasm: device lost/);
  });
});
